"""The router's one source of time: a monotonic clock, a wall clock and an async sleep.

Every policy (retry, breaker, rate limit, deadline) reads time only through a :class:`Clock`, so
tests drive them with :class:`FakeClock` and never sleep for real.
"""

from __future__ import annotations

import asyncio
import time
from typing import Protocol

__all__ = ["SYSTEM_CLOCK", "Clock", "FakeClock", "SystemClock"]


class Clock(Protocol):
    """Monotonic time, wall time and sleep, injectable."""

    def now(self) -> float:
        """Monotonic seconds: only differences mean anything."""
        ...

    def wall(self) -> float:
        """Epoch seconds, for audit records and for headers that carry dates."""
        ...

    async def sleep(self, seconds: float) -> None:
        """Wait ``seconds`` (a negative or zero wait only yields to the loop)."""
        ...


class SystemClock:
    """The real clock: :func:`time.monotonic`, :func:`time.time` and :func:`asyncio.sleep`."""

    __slots__ = ()

    def now(self) -> float:
        return time.monotonic()

    def wall(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        await asyncio.sleep(max(0.0, seconds))

    def __repr__(self) -> str:
        return "SystemClock()"


SYSTEM_CLOCK = SystemClock()


class FakeClock:
    """A virtual clock for tests: time moves only when told to, or when something sleeps.

    ``sleep`` advances virtual time at once and yields to the loop once, so code that waits
    runs in order without real waiting; every sleep is recorded in ``sleeps``.
    """

    __slots__ = ("_now", "epoch", "sleeps")

    def __init__(self, start: float = 0.0, epoch: float = 1_700_000_000.0) -> None:
        self._now = float(start)
        self.epoch = float(epoch)  # wall() is epoch + now, so both clocks move together
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def wall(self) -> float:
        return self.epoch + self._now

    def advance(self, seconds: float) -> None:
        """Move virtual time forward by ``seconds`` (never backward: monotonic means monotonic)."""
        if seconds < 0:
            raise ValueError(f"a clock cannot go backward (advance({seconds!r}))")
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        seconds = max(0.0, seconds)
        self.sleeps.append(seconds)
        self._now += seconds
        await asyncio.sleep(0)

    def __repr__(self) -> str:
        return f"FakeClock(now={self._now!r})"
