"""The clocks: the fake one moves only when told, and records every sleep."""

from __future__ import annotations

import asyncio
import time

import pytest

from router.clock import SYSTEM_CLOCK, Clock, FakeClock, SystemClock


def test_fake_clock_starts_where_told_and_advances() -> None:
    clock = FakeClock(start=10.0)
    assert clock.now() == 10.0
    clock.advance(2.5)
    assert clock.now() == 12.5
    assert clock.wall() == clock.epoch + 12.5


def test_fake_clock_refuses_to_go_backward() -> None:
    clock = FakeClock()
    with pytest.raises(ValueError, match="backward"):
        clock.advance(-1)
    assert clock.now() == 0.0


async def test_fake_sleep_advances_at_once_and_records() -> None:
    clock = FakeClock()
    await clock.sleep(3.0)
    await clock.sleep(0.5)
    await clock.sleep(-1.0)  # like asyncio.sleep: a negative wait is no wait
    assert clock.now() == 3.5
    assert clock.sleeps == [3.0, 0.5, 0.0]


async def test_fake_sleep_yields_to_the_loop() -> None:
    clock = FakeClock()
    order: list[str] = []

    async def other() -> None:
        order.append("other")

    task = asyncio.create_task(other())
    await clock.sleep(1.0)
    order.append("after sleep")
    await task
    assert order == ["other", "after sleep"]


async def test_system_clock_is_monotonic_and_wall_is_epoch() -> None:
    clock = SystemClock()
    a = clock.now()
    await clock.sleep(0)
    await clock.sleep(-5)  # must not raise or wait
    assert clock.now() >= a
    assert abs(clock.wall() - time.time()) < 60  # same epoch, not a timing assertion
    assert SYSTEM_CLOCK.now() >= a


def test_both_clocks_satisfy_the_protocol() -> None:
    clocks: list[Clock] = [SYSTEM_CLOCK, FakeClock()]
    assert all(isinstance(c.now(), float) for c in clocks)
    assert repr(FakeClock(1.0)) == "FakeClock(now=1.0)"
    assert repr(SYSTEM_CLOCK) == "SystemClock()"
