"""Per-API-key rate-limit windows and the headers each provider reports them in.

Each (provider, API key) has a fixed window: the first request opens it, it resets ``window``
seconds later. Requests count down on arrival; tokens (prompt + completion) once answered.
Header names: OpenAI ``x-ratelimit-*`` (resets as durations like ``6m0s``), Anthropic
``anthropic-ratelimit-*`` (resets as RFC 3339 times), Mistral ``x-ratelimit-*-minute`` style
(``x-ratelimit-limit-req-minute`` … ``x-ratelimitbysize-remaining-minute``; not documented in
WIRE.md, taken from what Mistral's API sends).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime

from mockproviders.config import RateLimit
from mockproviders.types import Provider

_DEFAULT = RateLimit()


@dataclass(slots=True)
class Window:
    """The state of one key's current window."""

    limit: RateLimit
    opened_at: float
    requests: int = 0
    tokens: int = 0

    def resets_in(self, now: float) -> float:
        return max(0.0, self.opened_at + self.limit.window - now)

    @property
    def remaining_requests(self) -> int:
        return max(0, self.limit.requests - self.requests)

    @property
    def remaining_tokens(self) -> int:
        return max(0, self.limit.tokens - self.tokens)


def _duration(seconds: float) -> str:
    """OpenAI's reset format: ``6ms``, ``1s``, ``1.5s``, ``6m0s``."""
    if seconds < 1:
        return f"{max(0, math.ceil(seconds * 1000))}ms"
    if seconds < 60:
        return f"{seconds:.3g}s"
    minutes, secs = divmod(round(seconds), 60)
    return f"{minutes}m{secs}s"


def _rfc3339(ts: float) -> str:
    return datetime.fromtimestamp(math.ceil(ts), UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class RateLimiter:
    """Counts requests and tokens per (provider, key) against the configured limits."""

    def __init__(self, limits: dict[str, RateLimit]) -> None:
        self._limits = limits
        self._windows: dict[tuple[str, str], Window] = {}

    def reset(self) -> None:
        self._windows.clear()

    def window(self, provider: str, key: str, now: float) -> Window:
        w = self._windows.get((provider, key))
        if w is None or now >= w.opened_at + w.limit.window:
            w = Window(self._limits.get(provider, _DEFAULT), now)
            self._windows[(provider, key)] = w
        return w

    def admit(self, provider: str, key: str, now: float) -> tuple[Window, bool]:
        """Count one request; False when the window has no requests or tokens left."""
        w = self.window(provider, key, now)
        if w.requests >= w.limit.requests or w.tokens >= w.limit.tokens:
            return w, False
        w.requests += 1
        return w, True


def headers(provider: Provider, w: Window, now: float) -> dict[str, str]:
    """The rate-limit headers ``provider`` sends for the state of ``w``."""
    reset = w.resets_in(now)
    if provider == "openai":
        return {
            "x-ratelimit-limit-requests": str(w.limit.requests),
            "x-ratelimit-limit-tokens": str(w.limit.tokens),
            "x-ratelimit-remaining-requests": str(w.remaining_requests),
            "x-ratelimit-remaining-tokens": str(w.remaining_tokens),
            "x-ratelimit-reset-requests": _duration(reset),
            "x-ratelimit-reset-tokens": _duration(reset),
        }
    if provider == "anthropic":
        at = _rfc3339(now + reset)
        out: dict[str, str] = {
            "anthropic-ratelimit-requests-limit": str(w.limit.requests),
            "anthropic-ratelimit-requests-remaining": str(w.remaining_requests),
            "anthropic-ratelimit-requests-reset": at,
        }
        for name in ("tokens", "input-tokens", "output-tokens"):
            out[f"anthropic-ratelimit-{name}-limit"] = str(w.limit.tokens)
            out[f"anthropic-ratelimit-{name}-remaining"] = str(w.remaining_tokens)
            out[f"anthropic-ratelimit-{name}-reset"] = at
        return out
    return {
        "x-ratelimit-limit-req-minute": str(w.limit.requests),
        "x-ratelimit-remaining-req-minute": str(w.remaining_requests),
        "x-ratelimitbysize-limit-minute": str(w.limit.tokens),
        "x-ratelimitbysize-remaining-minute": str(w.remaining_tokens),
        "x-ratelimit-reset": str(math.ceil(reset)),
    }


def retry_after(provider: Provider, w: Window, now: float) -> dict[str, str]:
    """``retry-after`` (seconds, at least 1), plus OpenAI's ``retry-after-ms``."""
    reset = w.resets_in(now)
    out = {"retry-after": str(max(1, math.ceil(reset)))}
    if provider == "openai":
        out["retry-after-ms"] = str(max(1, math.ceil(reset * 1000)))
    return out
