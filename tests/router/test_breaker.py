"""The circuit breaker: transitions, the single half-open probe, cooldowns that only move later."""

from __future__ import annotations

import json

import pytest
from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule

from router.breaker import CircuitBreaker
from router.clock import FakeClock
from router.errors import ErrorKind


def make(clock: FakeClock, **kw: float) -> tuple[CircuitBreaker, list[tuple[str, str]]]:
    changes: list[tuple[str, str]] = []
    breaker = CircuitBreaker(clock=clock, on_change=lambda old, new: changes.append((old, new)), **kw)  # type: ignore[arg-type]
    return breaker, changes


def fail(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        assert breaker.allow()
        breaker.on_failure(ErrorKind.SERVER)


def test_opens_after_threshold_failures_within_the_window() -> None:
    clock = FakeClock()
    b, changes = make(clock, failures=3, window=10.0, cooldown=5.0)
    fail(b, 2)
    assert b.state == "closed" and b.allow()
    fail(b, 1)
    assert b.state == "open"
    assert b.retry_at == 5.0
    assert not b.allow()
    assert changes == [("closed", "open")]


def test_failures_outside_the_window_do_not_count() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=3, window=10.0)
    fail(b, 2)
    clock.advance(10.0)
    fail(b, 2)
    assert b.state == "closed"
    assert b.recent_failures() == 2
    clock.advance(5.0)
    fail(b, 1)
    assert b.state == "open"


def test_recovery_after_cooldown_with_one_probe() -> None:
    clock = FakeClock()
    b, changes = make(clock, failures=1, cooldown=5.0)
    fail(b, 1)
    clock.advance(4.999)
    assert not b.allow()
    clock.advance(0.001)
    assert b.allow()  # the probe
    assert b.state == "half_open"
    assert not b.allow()  # only one probe at a time
    b.on_success()
    assert b.state == "closed" and b.allow()
    assert b.retry_at is None
    assert changes == [("closed", "open"), ("open", "half_open"), ("half_open", "closed")]


def test_failed_probe_reopens_with_a_longer_cooldown_up_to_the_max() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=1, cooldown=10.0, backoff=3.0, max_cooldown=50.0)
    fail(b, 1)
    expected_cooldowns = [30.0, 50.0, 50.0]
    for cooldown in expected_cooldowns:
        clock.advance(b.retry_at - clock.now())  # type: ignore[operator]
        assert b.allow()
        b.on_failure(ErrorKind.TIMEOUT)
        assert b.state == "open"
        assert b.retry_at == clock.now() + cooldown
    clock.advance(50.0)
    assert b.allow()
    b.on_success()
    assert b.cooldown == 10.0  # reset on recovery


def test_released_probe_lets_another_through() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=1, cooldown=1.0)
    fail(b, 1)
    clock.advance(1.0)
    assert b.allow()
    assert not b.allow()
    b.release_probe()  # the hedge that carried the probe was cancelled
    assert b.state == "half_open"
    assert b.allow()
    assert not b.allow()
    b.release_probe()
    b.release_probe()  # twice is harmless
    assert b.allow()


def test_release_probe_outside_half_open_is_a_no_op() -> None:
    b, changes = make(FakeClock())
    b.release_probe()
    assert b.state == "closed" and changes == []


def test_trip_opens_until_the_given_time_and_never_shortens() -> None:
    clock = FakeClock()
    b, _ = make(clock, cooldown=5.0)
    b.trip(30.0)
    assert b.state == "open" and b.retry_at == 30.0
    b.trip(10.0)  # earlier: ignored
    assert b.retry_at == 30.0
    b.trip(40.0)
    assert b.retry_at == 40.0
    clock.advance(39.0)
    assert not b.allow()
    clock.advance(1.0)
    assert b.allow()


def test_failure_opening_never_ends_before_a_trip() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=1, cooldown=5.0)
    b.trip(100.0)
    b.on_failure()  # a straggler while open: nothing changes
    assert b.retry_at == 100.0


def test_trip_in_the_past_changes_nothing() -> None:
    clock = FakeClock(start=10.0)
    b, changes = make(clock)
    b.trip(5.0)
    assert b.state == "closed" and changes == []


def test_trip_during_the_probe_holds_even_if_the_probe_then_succeeds() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=1, cooldown=5.0)
    fail(b, 1)
    clock.advance(5.0)
    assert b.allow()
    b.trip(clock.now() + 20.0)  # the probe's answer was a 429 with retry-after: 20
    b.on_success()  # the engine reports it anyway: the trip holds
    assert b.state == "open" and b.retry_at == 25.0


def test_late_success_while_open_does_not_close() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=1)
    fail(b, 1)
    b.on_success()
    assert b.state == "open"


def test_snapshot_is_json() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=2, cooldown=5.0)
    fail(b, 2)
    clock.advance(1.0)
    snap = b.snapshot()
    json.dumps(snap)
    assert snap["state"] == "open"
    assert snap["retry_in_s"] == 4.0
    assert snap["last_failure_kind"] == "server"
    assert snap["opened"] == 1
    b.reset()
    assert b.snapshot()["state"] == "closed" and b.snapshot()["retry_at"] is None


@pytest.mark.parametrize(
    "kw",
    [{"failures": 0}, {"window": 0.0}, {"cooldown": -1.0}, {"cooldown": 500.0}, {"backoff": 0.5}],
)
def test_bad_settings_are_refused(kw: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="breaker"):
        CircuitBreaker(**kw)  # type: ignore[arg-type]


# --- the state machine, checked by Hypothesis ----------------------------------------------------

ALLOWED = {
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
}


class BreakerMachine(RuleBasedStateMachine):
    """Random calls against one breaker, with a simple model of what must hold."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = FakeClock()
        self.changes: list[tuple[str, str]] = []
        self.breaker = CircuitBreaker(
            failures=3,
            window=10.0,
            cooldown=5.0,
            clock=self.clock,
            max_cooldown=40.0,
            backoff=2.0,
            on_change=lambda old, new: self.changes.append((old, new)),
        )
        self.probes_in_flight = 0  # probes granted and not yet answered or released
        self.last_retry_at: float | None = None
        self.tripped_until = 0.0

    @rule(seconds=st.floats(0, 20))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule()
    def allow(self) -> None:
        before = self.breaker.state
        retry_at = self.breaker.retry_at
        allowed = self.breaker.allow()
        if before == "closed":
            assert allowed
        elif before == "open":
            assert retry_at is not None
            assert allowed == (self.clock.now() >= retry_at)  # recovered providers get traffic back
            assert allowed == (self.breaker.state == "half_open")
            assert self.clock.now() >= self.tripped_until or not allowed
        else:
            assert allowed == (self.probes_in_flight == 0)
        if allowed and self.breaker.state == "half_open":
            self.probes_in_flight += 1

    @rule()
    def success(self) -> None:
        was = self.breaker.state
        self.breaker.on_success()
        if was == "half_open":
            assert self.breaker.state == "closed"
        else:
            assert self.breaker.state == was
        self.probes_in_flight = 0 if self.breaker.state != "half_open" else self.probes_in_flight

    @rule(kind=st.sampled_from([None, ErrorKind.SERVER, ErrorKind.TIMEOUT]))
    def failure(self, kind: ErrorKind | None) -> None:
        was = self.breaker.state
        self.breaker.on_failure(kind)
        if was in ("half_open", "open"):
            assert self.breaker.state == "open"
        if self.breaker.state != "half_open":
            self.probes_in_flight = 0

    @precondition(lambda self: self.breaker.state == "half_open")
    @rule()
    def release(self) -> None:
        self.breaker.release_probe()
        self.probes_in_flight = 0

    @rule(ahead=st.floats(-5, 60))
    def trip(self, ahead: float) -> None:
        until = self.clock.now() + ahead
        self.breaker.trip(until)
        if until > self.clock.now():
            assert self.breaker.state == "open"
            assert self.breaker.retry_at is not None and self.breaker.retry_at >= until
            self.tripped_until = max(self.tripped_until, until)
            self.probes_in_flight = 0

    @invariant()
    def transitions_follow_the_machine(self) -> None:
        assert all(change in ALLOWED for change in self.changes)
        for (_, new), (old, _) in zip(self.changes, self.changes[1:], strict=False):
            assert new == old

    @invariant()
    def at_most_one_probe(self) -> None:
        assert self.probes_in_flight <= 1

    @invariant()
    def cooldown_deadlines_never_move_earlier(self) -> None:
        retry_at = self.breaker.retry_at
        if retry_at is not None:
            if self.last_retry_at is not None:
                assert retry_at >= self.last_retry_at
            self.last_retry_at = retry_at

    @invariant()
    def open_means_a_deadline_and_bounded_cooldown(self) -> None:
        assert (self.breaker.state == "open") == (self.breaker.retry_at is not None)
        assert 5.0 <= self.breaker.cooldown <= 40.0
        if self.breaker.state == "closed":
            assert self.breaker.recent_failures() < 3


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerMachine = BreakerMachine.TestCase
