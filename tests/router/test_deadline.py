"""Deadlines on the fake clock, per-attempt caps, and duration values in configs."""

from __future__ import annotations

import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.clock import FakeClock
from router.deadline import Deadline, Timeouts


def test_deadline_counts_down_and_expires() -> None:
    clock = FakeClock(start=100.0)
    d = Deadline(10.0, clock)
    assert d.started_at == 100.0
    assert d.at == 110.0
    assert d.remaining() == 10.0
    assert not d.expired()
    clock.advance(4.0)
    assert d.remaining() == 6.0
    assert d.elapsed() == 4.0
    clock.advance(6.0)
    assert d.expired()
    assert d.remaining() == 0.0
    clock.advance(5.0)
    assert d.remaining() == 0.0  # never negative


def test_no_budget_never_expires() -> None:
    clock = FakeClock()
    d = Deadline(None, clock)
    clock.advance(1e9)
    assert d.remaining() is None
    assert d.at is None
    assert not d.expired()
    assert d.cap(3.0) == 3.0
    assert d.cap(None) is None


def test_cap_takes_the_smaller() -> None:
    clock = FakeClock()
    d = Deadline(5.0, clock)
    assert d.cap(3.0) == 3.0
    assert d.cap(None) == 5.0
    clock.advance(4.0)
    assert d.cap(3.0) == 1.0
    clock.advance(2.0)
    assert d.cap(3.0) == 0.0


def test_zero_budget_is_expired_at_once() -> None:
    d = Deadline(0.0, FakeClock())
    assert d.expired()
    assert d.cap(1.0) == 0.0


@pytest.mark.parametrize("total", [-1.0, math.nan])
def test_bad_totals_are_refused(total: float) -> None:
    with pytest.raises(ValueError, match="deadline"):
        Deadline(total, FakeClock())


@given(
    st.one_of(st.none(), st.floats(0, 1e6)),
    st.one_of(st.none(), st.floats(0, 1e6)),
    st.floats(0, 2e6),
)
def test_cap_never_exceeds_either_limit(total: float | None, timeout: float | None, elapsed: float) -> None:
    clock = FakeClock()
    d = Deadline(total, clock)
    clock.advance(elapsed)
    capped = d.cap(timeout)
    remaining = d.remaining()
    if timeout is None and remaining is None:
        assert capped is None
        return
    assert capped is not None and capped >= 0
    if timeout is not None:
        assert capped <= timeout
    if remaining is not None:
        assert capped <= remaining


# --- duration values -----------------------------------------------------------------------------


# --- timeouts ------------------------------------------------------------------------------------


def test_timeouts_from_config() -> None:
    t = Timeouts.from_config(
        {"total": "60s", "connect": "3s", "first_token": 10, "idle": "15s", "read": None}
    )
    assert t == Timeouts(total=60.0, connect=3.0, read=None, first_token=10.0, idle=15.0)
    assert Timeouts() == Timeouts.from_config({})


def test_timeouts_name_the_bad_key() -> None:
    with pytest.raises(ValueError, match=r"timeouts\.connect: invalid duration 'fast'"):
        Timeouts.from_config({"connect": "fast"})
    with pytest.raises(ValueError, match=r"unknown key.*'totl'"):
        Timeouts.from_config({"totl": "60s"})
    with pytest.raises(ValueError, match=r"timeouts\.idle"):
        Timeouts(idle=-1.0)


def test_timeouts_are_frozen() -> None:
    t = Timeouts(total=1.0)
    with pytest.raises(AttributeError):
        t.total = 2.0  # type: ignore[misc]
