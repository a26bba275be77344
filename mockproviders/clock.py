"""Clocks for the mock: the real one, and a fake one for tests that must never sleep for real."""

from __future__ import annotations

import asyncio
import time


class SystemClock:
    """Wall-clock time and real ``asyncio.sleep``."""

    def now(self) -> float:
        return time.time()

    async def sleep(self, seconds: float) -> None:
        if seconds > 0:
            await asyncio.sleep(seconds)


class FakeClock:
    """Virtual time: ``sleep`` advances ``now`` at once instead of waiting.

    Every sleep is recorded in :attr:`sleeps`, so a test can assert on the latency the mock asked
    for (time to first token, inter-token gaps) without any real waiting.
    """

    def __init__(self, start: float = 1_700_000_000.0) -> None:
        self._now = start
        self.sleeps: list[float] = []

    def now(self) -> float:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += seconds

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        if seconds > 0:
            self._now += seconds
        await asyncio.sleep(0)  # still yield, as a real sleep would
