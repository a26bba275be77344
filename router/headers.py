"""Pure parsing of the headers providers use to say when to retry and how much quota is left.

Called on every response, so each function does a handful of dictionary lookups and nothing
when the headers are absent. Lookups are case-insensitive for any ``Mapping``: aiohttp's
``CIMultiDictProxy`` and httpx's ``Headers`` already are; a plain ``dict`` is lower-cased once.
Malformed values never raise: they read as ``None`` (absent).

Which headers a provider sends is a fact about that provider: each module of
:mod:`router.adapters` declares its :class:`RateLimitDialect`; this module holds what they share.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

# Go's time.Duration strings (OpenAI's resets: "6ms", "6m0s"), read by the grammar every package shares.
from turnout.durations import read_duration as parse_duration

__all__ = [
    "MAX_RETRY_AFTER",
    "RateLimitDialect",
    "RateLimitSnapshot",
    "parse_duration",
    "parse_retry_after",
    "parse_should_retry",
    "rfc3339_in",
    "snapshot",
]

# Types known to look names up case-insensitively; anything else is lower-cased once per call.
_CASE_INSENSITIVE = frozenset({"CIMultiDictProxy", "CIMultiDict", "Headers", "MutableHeaders"})


def _ci(headers: Mapping[str, str]) -> Mapping[str, str]:
    if type(headers).__name__ in _CASE_INSENSITIVE:
        return headers
    return {k.lower(): v for k, v in headers.items()}


def _float(value: str | None) -> float | None:
    if value is None:
        return None
    try:
        f = float(value)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) and f >= 0 else None


def _int(value: str | None) -> int | None:
    if value is None:
        return None
    try:
        return max(0, int(value))
    except (TypeError, ValueError):
        f = _float(value)  # some proxies send "10.0"
        return int(f) if f is not None else None


def parse_retry_after(headers: Mapping[str, str], now_epoch: float | None = None) -> float | None:
    """Seconds the provider asks to wait: ``retry-after-ms``, else ``retry-after`` (seconds or an
    HTTP date, measured from ``now_epoch``); ``None`` when absent, negative or malformed.

    A date in the past reads as ``0.0`` (retry now); an absurd ask (``1e308``, a date in year
    9999) reads as :data:`MAX_RETRY_AFTER`, so nothing downstream computes with it.
    """
    h = _ci(headers)
    ms = _float(h.get("retry-after-ms"))
    if ms is not None:
        return min(ms / 1000.0, MAX_RETRY_AFTER)
    value = h.get("retry-after")
    if value is None:
        return None
    seconds = _float(value)
    if seconds is not None:
        return min(seconds, MAX_RETRY_AFTER)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError, OverflowError):
        return None
    if when is None:  # older Pythons returned None for garbage
        return None  # pragma: no cover
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    now = time.time() if now_epoch is None else now_epoch
    try:
        return min(max(0.0, when.timestamp() - now), MAX_RETRY_AFTER)
    except (OverflowError, ValueError, OSError):  # pragma: no cover - dates beyond the platform's range
        return None


def parse_should_retry(headers: Mapping[str, str]) -> bool | None:
    """``x-should-retry: true|false`` as a bool; ``None`` when absent or anything else."""
    value = _ci(headers).get("x-should-retry")
    if value is None:
        return None
    value = value.strip().lower()
    if value == "true":
        return True
    if value == "false":
        return False
    return None


@dataclass(slots=True)
class RateLimitSnapshot:
    """What a provider said about its limits on one response; ``None`` means not reported.

    Resets are seconds from the response, whatever the provider's format. Treat it as read-only
    (not frozen only because a frozen dataclass costs several times more to build, per response).
    """

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    limit_requests: int | None = None
    limit_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None


# The longest wait any provider header is taken to ask for (a day); longer asks are clamped.
MAX_RETRY_AFTER = 86400.0


def rfc3339_in(value: str | None, now_epoch: float) -> float | None:
    """Seconds from ``now_epoch`` until an RFC 3339 time (``None`` when absent or malformed)."""
    if value is None:
        return None
    try:
        when = datetime.fromisoformat(value.strip())
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    try:
        return min(max(0.0, when.timestamp() - now_epoch), MAX_RETRY_AFTER)
    except (OverflowError, ValueError, OSError):  # pragma: no cover
        return None


def snapshot(
    rr: str | None,
    rt: str | None,
    lr: str | None,
    lt: str | None,
    reset_r: float | None,
    reset_t: float | None,
) -> RateLimitSnapshot | None:
    """A snapshot from raw remaining/limit values and parsed resets; ``None`` when all are absent."""
    r_req, r_tok, l_req, l_tok = _int(rr), _int(rt), _int(lr), _int(lt)
    if (
        r_req is None
        and r_tok is None
        and l_req is None
        and l_tok is None
        and reset_r is None
        and reset_t is None
    ):
        return None
    return RateLimitSnapshot(r_req, r_tok, l_req, l_tok, reset_r, reset_t)


# A dialect's parser: case-insensitive headers and the wall clock (epoch seconds, ``None``: now).
DialectParser = Callable[[Mapping[str, str], float | None], RateLimitSnapshot | None]


@dataclass(frozen=True, slots=True)
class RateLimitDialect:
    """How one provider kind reports its rate limits in response headers.

    Each provider module in :mod:`router.adapters` declares its own (``openai.RATE_LIMITS``,
    ``anthropic.RATE_LIMITS``, ...): a parser, and the names of every header it may read as a
    "remaining" count, so :meth:`exhausted` can answer with a few lookups and no parsing.
    """

    parser: DialectParser
    remaining: tuple[str, ...]

    def parse(self, headers: Mapping[str, str], now_epoch: float | None = None) -> RateLimitSnapshot | None:
        """The provider's rate-limit headers as a :class:`RateLimitSnapshot`; ``None`` when it sent none."""
        return self.parser(_ci(headers), now_epoch)

    def exhausted(self, headers: Mapping[str, str]) -> bool:
        """Whether any of the dialect's "remaining" headers reads 0 (or less).

        The cheap test that tells whether :meth:`parse` can matter to a deployment without limits
        of its own. It reads every header the parser may read as "remaining", so it never says
        False when the parsed snapshot would have a remaining count of 0.
        """
        h = _ci(headers)
        for name in self.remaining:
            value = h.get(name)
            if value is not None and _int(value) == 0:
                return True
        return False
