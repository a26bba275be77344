"""Client-side request and token limits per deployment, so the router backs off before a 429.

Each limit is a token bucket that refills continuously: ``rpm`` requests (``tpm`` tokens) of
capacity, refilled at ``rpm / 60`` per second. Why a token bucket: it is O(1) in time and memory
(two floats per limit, no log of past requests), it has no fixed-window edge where twice the
limit gets through around the minute boundary, and it is the algorithm providers document for
their own limits (Anthropic: "capacity is continuously replenished up to your maximum"), so a
bucket sized like the provider's admits what the provider would. Its contract is: never more
than the capacity at once, and over any interval of ``T`` seconds at most
``capacity + rate * T`` (a full bucket plus what refilled). It is not a sliding 60 s window: a
burst of ``rpm`` after a quiet minute, then the steady refill, can reach up to twice ``rpm`` in
the 60 s that follow, as the provider's own bucket would allow.

The provider's headers (:class:`router.headers.RateLimitSnapshot`) only ever tighten the local
view: fewer remaining than the bucket holds lowers the bucket, and "0 remaining until reset in
2 s" holds every request for those 2 s, even without configured limits.
"""

from __future__ import annotations

from typing import Any

from router.clock import SYSTEM_CLOCK, Clock
from router.headers import RateLimitSnapshot

__all__ = ["RateLimiter", "estimate_tokens"]

_EPS = 1e-9  # float slack, so that waiting exactly the returned time always succeeds
CHARS_PER_TOKEN = 4


def estimate_tokens(text_chars: int, max_tokens: int | None) -> int:
    """Tokens a request will count against a token limit, before the real usage is known.

    About 4 characters per token for English text and code (OpenAI's rule of thumb; other
    scripts use more tokens per character, so correct with :meth:`RateLimiter.commit` once the
    usage is known), plus ``max_tokens``, which providers count against the limit up front.
    """
    chars = max(0, text_chars)
    return (chars + CHARS_PER_TOKEN - 1) // CHARS_PER_TOKEN + max(0, max_tokens or 0)


class RateLimiter:
    """Request and token buckets for one deployment; ``None`` limits are not enforced."""

    __slots__ = (
        "_blocked_until",
        "_last",
        "_req",
        "_req_rate",
        "_tok",
        "_tok_rate",
        "_unlimited",
        "clock",
        "max_hold",
        "rpm",
        "tpm",
    )

    def __init__(self, rpm: int | None, tpm: int | None, clock: Clock = SYSTEM_CLOCK) -> None:
        for name, value in (("rpm", rpm), ("tpm", tpm)):
            if value is not None and (isinstance(value, bool) or value <= 0):
                raise ValueError(f"{name} must be a positive number or None, not {value!r}")
        self.rpm = rpm
        self.tpm = tpm
        self.clock = clock
        self._unlimited = rpm is None and tpm is None
        self._req = float(rpm or 0)  # buckets start full
        self._tok = float(tpm or 0)
        self._req_rate = (rpm or 0) / 60.0
        self._tok_rate = (tpm or 0) / 60.0
        self._last = clock.now()
        self._blocked_until = 0.0  # 0.0: not blocked by the provider (keeps the fast path to one test)
        self.max_hold = 60.0  # seconds: no hold the provider asks for lasts longer (retry_after_cap)

    def _refill(self, now: float) -> None:
        dt = now - self._last
        if dt > 0:
            self._last = now
            if self.rpm is not None:
                self._req = min(float(self.rpm), self._req + dt * self._req_rate)
            if self.tpm is not None:
                self._tok = min(float(self.tpm), self._tok + dt * self._tok_rate)

    def try_acquire(self, tokens: int = 0) -> float:
        """Take one request and ``tokens`` tokens and return 0.0; or, when that is not allowed
        yet, take nothing and return the seconds until it would be (if nobody else takes first).

        A request larger than the whole token capacity waits for a full bucket, then goes,
        leaving the bucket in debt, so the long-run rate still holds.
        """
        if self._unlimited and self._blocked_until == 0.0:
            return 0.0
        now = self.clock.now()
        wait = 0.0
        if self._blocked_until:
            wait = self._blocked_until - now
            if wait <= _EPS:
                self._blocked_until = wait = 0.0
        self._refill(now)
        if self.rpm is not None:
            short = 1.0 - self._req
            if short > _EPS:
                wait = max(wait, short / self._req_rate)
        if self.tpm is not None and tokens > 0:
            short = min(float(tokens), float(self.tpm)) - self._tok
            if short > _EPS:
                wait = max(wait, short / self._tok_rate)
        if wait > 0.0:
            return wait
        if self.rpm is not None:
            self._req -= 1.0
        if self.tpm is not None:
            self._tok -= tokens
        return 0.0

    async def acquire(self, tokens: int = 0, max_wait: float | None = None) -> float | None:
        """Wait on the clock until :meth:`try_acquire` succeeds; the seconds waited, or ``None``
        (having taken nothing) if that would take longer than ``max_wait``."""
        waited = 0.0
        while True:
            wait = self.try_acquire(tokens)
            if wait == 0.0:
                return waited
            if max_wait is not None and waited + wait > max_wait:
                return None
            await self.clock.sleep(wait)
            waited += wait

    def refund(self, tokens: int, requests: int = 0) -> None:
        """Give back ``tokens`` (and ``requests``) that were taken but not used; a negative
        number takes more (the estimate was too low)."""
        if self._unlimited:
            return
        self._refill(self.clock.now())
        if self.tpm is not None and tokens:
            self._tok = min(float(self.tpm), self._tok + tokens)
        if self.rpm is not None and requests:
            self._req = min(float(self.rpm), self._req + requests)

    def commit(self, estimated: int, actual: int) -> None:
        """Correct a request's token estimate with its real usage."""
        if estimated != actual:
            self.refund(estimated - actual)

    def observe(self, snapshot: RateLimitSnapshot) -> None:
        """Tighten from what the provider reported: never above the configured limits."""
        now = self.clock.now()
        self._refill(now)
        rr, rt = snapshot.remaining_requests, snapshot.remaining_tokens
        if rr is not None:
            if self.rpm is not None and rr < self._req:
                self._req = float(rr)
            if rr <= 0 and snapshot.reset_requests_s:
                self._block(now + snapshot.reset_requests_s)
        if rt is not None:
            if self.tpm is not None and rt < self._tok:
                self._tok = float(rt)
            if rt <= 0 and snapshot.reset_tokens_s:
                self._block(now + snapshot.reset_tokens_s)

    def _block(self, until: float) -> None:
        until = min(until, self.clock.now() + self.max_hold)
        if until > self._blocked_until:
            self._blocked_until = until

    def blocked_for(self) -> float:
        """Seconds the provider's "0 remaining" (or a 429's retry-after) still holds; 0.0 if none."""
        return max(0.0, self._blocked_until - self.clock.now()) if self._blocked_until else 0.0

    def headroom(self) -> float:
        """The fraction of capacity available now, 0..1, of the tighter limit (1.0 if none)."""
        now = self.clock.now()
        if self._blocked_until > now:
            return 0.0
        if self._unlimited:
            return 1.0
        self._refill(now)
        room = 1.0
        if self.rpm is not None:
            room = min(room, self._req / self.rpm)
        if self.tpm is not None:
            room = min(room, self._tok / self.tpm)
        return max(0.0, room)

    def snapshot(self) -> dict[str, Any]:
        """Levels and headroom as JSON-able data, for the state endpoint and metrics."""
        now = self.clock.now()
        self._refill(now)
        return {
            "rpm": self.rpm,
            "tpm": self.tpm,
            "requests_available": None if self.rpm is None else round(self._req, 3),
            "tokens_available": None if self.tpm is None else round(self._tok, 3),
            "blocked_for_s": max(0.0, self._blocked_until - now),
            "headroom": self.headroom(),
        }

    def __repr__(self) -> str:
        return f"RateLimiter(rpm={self.rpm!r}, tpm={self.tpm!r})"
