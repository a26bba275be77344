"""A request's total time budget, and the per-attempt timeouts that live inside it."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

from router.clock import SYSTEM_CLOCK, Clock
from turnout.durations import parse_duration

__all__ = ["Deadline", "Timeouts"]


class Deadline:
    """The time left of a budget of ``total`` seconds that started when this was made.

    ``total=None`` means no budget: ``remaining()`` is ``None`` and nothing expires.
    """

    __slots__ = ("_end", "clock", "started_at", "total")

    def __init__(self, total: float | None, clock: Clock = SYSTEM_CLOCK) -> None:
        if total is not None and not total >= 0:  # also rejects NaN
            raise ValueError(f"a deadline's total must be >= 0 seconds, not {total!r}")
        self.total = total
        self.clock = clock
        self.started_at = clock.now()
        self._end = math.inf if total is None else self.started_at + total

    @property
    def at(self) -> float | None:
        """The clock time the budget runs out, or ``None``."""
        return None if self.total is None else self._end

    def elapsed(self) -> float:
        return self.clock.now() - self.started_at

    def remaining(self) -> float | None:
        """Seconds left (never negative), or ``None`` without a budget."""
        if self.total is None:
            return None
        return max(0.0, self._end - self.clock.now())

    def expired(self) -> bool:
        return self.clock.now() >= self._end

    def cap(self, timeout: float | None) -> float | None:
        """The smaller of a per-attempt ``timeout`` and the time left; ``None`` if both are."""
        if self.total is None:
            return timeout
        left = max(0.0, self._end - self.clock.now())
        return left if timeout is None or timeout > left else timeout

    def __repr__(self) -> str:
        return f"Deadline(total={self.total!r}, remaining={self.remaining()!r})"


@dataclass(slots=True, frozen=True)
class Timeouts:
    """Time limits in seconds; ``None`` means no limit.

    ``total``: the whole request, retries and fallbacks included. ``connect``: opening a
    connection. ``read``: between bytes of a non-streamed answer. ``first_token``: from sending
    to the first streamed content. ``idle``: between streamed chunks once content has begun.
    """

    total: float | None = None
    connect: float | None = None
    read: float | None = None
    first_token: float | None = None
    idle: float | None = None

    def __post_init__(self) -> None:
        for name in ("total", "connect", "read", "first_token", "idle"):
            v = getattr(self, name)
            if v is not None and not (isinstance(v, int | float) and math.isfinite(v) and v >= 0):
                raise ValueError(f"timeouts.{name}: must be a finite number >= 0 seconds or None, not {v!r}")

    @classmethod
    def from_config(cls, values: Mapping[str, str | float | int | None]) -> Timeouts:
        """Build from a config mapping such as ``{total: 60s, connect: 3s}``; unknown keys and
        bad values raise :class:`ValueError` naming the key."""
        known = ("total", "connect", "read", "first_token", "idle")
        unknown = sorted(set(values) - set(known))
        if unknown:
            raise ValueError(
                f"timeouts: unknown key(s) {', '.join(map(repr, unknown))}; known: {', '.join(known)}"
            )
        parsed: dict[str, float | None] = {}
        for key, raw in values.items():
            try:
                parsed[key] = None if raw is None else parse_duration(raw)
            except ValueError as e:
                raise ValueError(f"timeouts.{key}: {e}") from None
        return cls(**parsed)
