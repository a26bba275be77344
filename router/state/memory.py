"""The in-process :class:`~router.state.base.StateStore`: the default, nothing to start.

The router does not call it per request (the per-deployment breaker and limiter objects are the
in-memory state); it holds budgets' spend, serves as the fallback of the Redis store, and is the
reference implementation: ``tests/router/state`` runs the same contract over both stores, so the
Lua scripts in :mod:`router.state.redis` are checked against this plain Python.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from router.clock import SYSTEM_CLOCK, Clock
from router.headers import RateLimitSnapshot
from router.state.base import Admission, BreakerSpec, BreakerView, BucketSpec, Lease

__all__ = ["MemoryStore"]

EPS = 1e-9  # as in router.ratelimit: waiting exactly the returned time always succeeds


@dataclass(slots=True)
class _Bucket:
    req: float
    tok: float
    last: float
    blocked: float = 0.0

    def refill(self, limits: BucketSpec, now: float) -> None:
        dt = now - self.last
        if dt > 0:
            self.last = now
            if limits.rpm is not None:
                self.req = min(float(limits.rpm), self.req + dt * limits.rpm / 60.0)
            if limits.tpm is not None:
                self.tok = min(float(limits.tpm), self.tok + dt * limits.tpm / 60.0)

    def acquire(self, limits: BucketSpec, tokens: int, now: float) -> float:
        wait = 0.0
        if self.blocked:
            wait = self.blocked - now
            if wait <= EPS:
                self.blocked = wait = 0.0
        self.refill(limits, now)
        if limits.rpm is not None:
            short = 1.0 - self.req
            if short > EPS:
                wait = max(wait, short / (limits.rpm / 60.0))
        if limits.tpm is not None and tokens > 0:
            short = min(float(tokens), float(limits.tpm)) - self.tok
            if short > EPS:
                wait = max(wait, short / (limits.tpm / 60.0))
        if wait > 0.0:
            return wait
        if limits.rpm is not None:
            self.req -= 1.0
        if limits.tpm is not None:
            self.tok -= tokens
        return 0.0


@dataclass(slots=True)
class _Breaker:
    until: float | None = None
    cooldown: float | None = None
    failures: list[float] = field(default_factory=list)  # newest last, at most `threshold`


class MemorySpend:
    """Budgets' spend in this process only: the default spend store of :mod:`router.budget`,
    and the spend part of :class:`MemoryStore`."""

    def __init__(self) -> None:
        self._spend: dict[tuple[str, int], float] = {}

    async def add_spend(self, key: str, amount: float, period_start: int) -> float:
        total = self._spend.get((key, period_start), 0.0) + amount
        self._spend[key, period_start] = total
        return total

    async def get_spend(self, key: str, period_start: int) -> float:
        return self._spend.get((key, period_start), 0.0)


class MemoryStore(MemorySpend):
    """Every primitive of :class:`~router.state.base.StateStore` on plain dicts (one event loop)."""

    name = "memory"

    def __init__(self, clock: Clock = SYSTEM_CLOCK) -> None:
        super().__init__()
        self.clock = clock  # wall time for probe leases, which the protocol gives only a ttl
        self._buckets: dict[str, _Bucket] = {}
        self._breakers: dict[str, _Breaker] = {}
        self._probes: dict[str, tuple[str, float]] = {}  # key: (owner, expires at)

    def _bucket(self, key: str, limits: BucketSpec, now: float) -> _Bucket:
        b = self._buckets.get(key)
        if b is None:
            b = self._buckets[key] = _Bucket(float(limits.rpm or 0), float(limits.tpm or 0), now)
        return b

    # --- buckets ---------------------------------------------------------------------------------

    async def admit(
        self,
        key: str,
        limits: BucketSpec,
        breaker: BreakerSpec,
        tokens: int,
        now: float,
        probe_ttl: float,
        owner: str,
    ) -> Admission:
        br = self._breakers.get(key)
        probe = False
        if br is not None and br.until is not None:
            if now < br.until:
                return Admission("open", until=br.until)
            if not self._take_probe(key, owner, probe_ttl):
                return Admission("probing", until=self._probes[key][1])
            probe = True
        wait = self._bucket(key, limits, now).acquire(limits, tokens, now)
        if wait > 0.0:
            if probe:
                del self._probes[key]
            return Admission("wait", wait=wait)
        return Admission("ok", probe=probe)

    async def lease(self, key: str, limits: BucketSpec, requests: int, tokens: int, now: float) -> Lease:
        br = self._breakers.get(key)
        if br is not None and br.until is not None:
            return Lease("open", until=br.until) if now < br.until else Lease("half")
        b = self._bucket(key, limits, now)
        b.refill(limits, now)
        if b.blocked > now:
            return Lease("hold", until=b.blocked)
        got_r = requests if limits.rpm is None else max(0, min(requests, math.floor(b.req + EPS)))
        got_t = tokens if limits.tpm is None else max(0, min(tokens, math.floor(b.tok + EPS)))
        if got_r <= 0 or (limits.tpm is not None and tokens > 0 and got_t <= 0):
            return Lease("ok")  # the buckets are empty: nothing taken
        if limits.rpm is not None:
            b.req -= got_r
        if limits.tpm is not None:
            b.tok -= got_t
        return Lease("ok", got_r, got_t)

    async def acquire(self, key: str, limits: BucketSpec, tokens: int, now: float) -> float:
        return self._bucket(key, limits, now).acquire(limits, tokens, now)

    async def refund(self, key: str, limits: BucketSpec, tokens: int, requests: int, now: float) -> None:
        b = self._bucket(key, limits, now)
        b.refill(limits, now)
        if limits.tpm is not None and tokens:
            b.tok = min(float(limits.tpm), b.tok + tokens)
        if limits.rpm is not None and requests:
            b.req = min(float(limits.rpm), b.req + requests)

    async def observe_headroom(
        self, key: str, limits: BucketSpec, snapshot: RateLimitSnapshot, now: float
    ) -> None:
        b = self._bucket(key, limits, now)
        b.refill(limits, now)
        rr, rt = snapshot.remaining_requests, snapshot.remaining_tokens
        if rr is not None:
            if limits.rpm is not None and rr < b.req:
                b.req = float(rr)
            if rr <= 0 and snapshot.reset_requests_s:
                b.blocked = max(b.blocked, now + snapshot.reset_requests_s)
        if rt is not None:
            if limits.tpm is not None and rt < b.tok:
                b.tok = float(rt)
            if rt <= 0 and snapshot.reset_tokens_s:
                b.blocked = max(b.blocked, now + snapshot.reset_tokens_s)

    # --- breaker ---------------------------------------------------------------------------------

    def _open(self, key: str, br: _Breaker, until: float, cooldown: float) -> float:
        br.until = until if br.until is None else max(br.until, until)
        br.cooldown = cooldown
        br.failures.clear()
        self._probes.pop(key, None)
        return br.until

    async def record_failure(self, key: str, breaker: BreakerSpec, now: float) -> float | None:
        br = self._breakers.setdefault(key, _Breaker())
        if br.until is not None:
            if now < br.until:
                return None  # open: failures of requests sent before it opened add nothing
            cooldown = min((br.cooldown or breaker.cooldown) * breaker.backoff, breaker.max_cooldown)
            return self._open(key, br, now + cooldown, cooldown)  # half-open: re-open, longer
        # As the local breaker: only the last `failures` times matter; open when the oldest of
        # them is still inside the window.
        fails = br.failures
        fails.append(now)
        del fails[: -breaker.failures]
        if len(fails) == breaker.failures and fails[0] > now - breaker.window:
            return self._open(key, br, now + breaker.cooldown, breaker.cooldown)
        return None

    async def trip(self, key: str, until: float, breaker: BreakerSpec, now: float) -> float:
        br = self._breakers.setdefault(key, _Breaker())
        if until <= now:
            return br.until if br.until is not None else until
        if br.until is not None and br.until >= until:
            return br.until
        if br.until is not None and now < br.until:
            br.until = until  # open: extend only
            return until
        return self._open(key, br, until, br.cooldown or breaker.cooldown)

    async def read_breaker(self, key: str, now: float) -> BreakerView:
        br = self._breakers.get(key)
        if br is None or br.until is None:
            return BreakerView("closed")
        return BreakerView("open" if now < br.until else "half_open", br.until)

    def _take_probe(self, key: str, owner: str, ttl: float) -> bool:
        now = self.clock.wall()
        held = self._probes.get(key)
        if held is not None and held[1] > now:
            return False
        self._probes[key] = (owner, now + ttl)
        return True

    async def try_probe(self, key: str, owner: str, ttl: float) -> bool:
        return self._take_probe(key, owner, ttl)

    async def release_probe(self, key: str, owner: str) -> None:
        held = self._probes.get(key)
        if held is not None and held[0] == owner:
            del self._probes[key]

    async def record_success(self, key: str, now: float) -> None:
        br = self._breakers.get(key)
        if br is not None and br.until is not None and now >= br.until:
            del self._breakers[key]
            self._probes.pop(key, None)

    # --- budgets ---------------------------------------------------------------------------------

    async def ping(self) -> None:
        return None

    async def aclose(self) -> None:
        return None

    def __repr__(self) -> str:
        return "MemoryStore()"
