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


def succeed(breaker: CircuitBreaker, n: int) -> None:
    for _ in range(n):
        assert breaker.allow()
        breaker.on_success()


def test_a_run_of_consecutive_failures_ejects() -> None:
    clock = FakeClock()
    b, changes = make(clock, failures=3, window=10.0, cooldown=5.0, max_cooldown=5.0)
    fail(b, 2)
    assert b.state == "closed" and b.allow()
    fail(b, 1)
    assert b.state == "open"
    assert b.retry_at == 5.0
    assert not b.allow()
    assert changes == [("closed", "open")]
    assert b.snapshot()["opened_because"] == "3 consecutive failures"


def test_a_success_breaks_the_run() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=3, min_calls=1000)
    for _ in range(50):  # failures and successes alternating in pairs: never three in a row
        fail(b, 2)
        succeed(b, 1)
    assert b.state == "closed"


def test_random_failures_at_ten_percent_never_eject_at_high_or_low_traffic() -> None:
    import random

    for rate in (5_000.0, 5.0):  # attempts per second
        clock = FakeClock()
        b, changes = make(clock)  # the defaults
        rng = random.Random(7)
        for _ in range(100_000 if rate > 100 else 2_000):
            clock.advance(1.0 / rate)
            assert b.allow()
            if rng.random() < 0.1:
                b.on_failure(ErrorKind.SERVER)
            else:
                b.on_success()
        assert changes == [], rate


def test_a_dead_provider_is_ejected_within_about_a_second_at_low_traffic() -> None:
    clock = FakeClock()
    b, _ = make(clock)  # the defaults: 10 in a row, or 3+ in a row lasting 1 s
    succeed(b, 100)
    for _ in range(9):  # 5 failing calls a second, starting at 0.2 s
        clock.advance(0.2)
        assert b.allow()
        b.on_failure(ErrorKind.CONNECT)
        if b.state == "open":
            break
    assert b.state == "open" and clock.now() - 0.2 <= 1.0 + 1e-9
    assert "in a row for" in b.snapshot()["opened_because"]


def test_a_failure_rate_over_the_window_ejects_a_brownout() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=100, failure_rate=0.5, min_calls=20, window=10.0)
    for i in range(40):  # 60 % of calls fail, never more than 2 in a row
        clock.advance(0.1)
        assert b.allow()
        if i % 5 in (0, 1, 3):
            b.on_failure(ErrorKind.SERVER)
        else:
            b.on_success()
        if b.state == "open":
            break
    assert b.state == "open"
    calls_at_ejection = i + 1
    assert calls_at_ejection >= 20  # not before the window holds min_calls
    assert "calls failed in 10s" in b.snapshot()["opened_because"]


def test_the_rate_window_forgets_old_calls() -> None:
    clock = FakeClock()
    b, _ = make(clock, failures=100, min_calls=10, window=10.0, failure_rate=0.9)
    for _ in range(9):
        fail(b, 1)
        succeed(b, 1)
    assert b.window_counts() == (18, 9)
    clock.advance(11.0)
    assert b.window_counts() == (0, 0)
    fail(b, 1)  # 1 of 1: under min_calls
    assert b.state == "closed"


def test_recovery_after_cooldown_with_one_probe() -> None:
    clock = FakeClock()
    b, changes = make(clock, failures=1, cooldown=5.0, max_cooldown=5.0)
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


def test_recovery_is_bounded_however_long_the_outage() -> None:
    clock = FakeClock()
    b, _ = make(clock)  # the defaults: 2 s, doubling, at most 4 s
    fail(b, 10)
    recovered_at = 600.0  # a ten-minute outage: every probe until then fails
    while True:
        clock.advance(b.retry_at - clock.now())  # type: ignore[operator]
        assert b.allow()
        if clock.now() >= recovered_at:
            b.on_success()
            break
        b.on_failure(ErrorKind.SERVER)
    assert b.state == "closed" and clock.now() - recovered_at <= 4.0


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
    b, _ = make(clock, cooldown=5.0, max_cooldown=5.0)
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
    b, _ = make(clock, failures=1, cooldown=5.0, max_cooldown=5.0)
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
    b, _ = make(clock, failures=1, cooldown=5.0, max_cooldown=5.0)
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
    b, _ = make(clock, failures=2, cooldown=5.0, max_cooldown=5.0)
    fail(b, 2)
    clock.advance(1.0)
    snap = b.snapshot()
    json.dumps(snap)
    assert snap["state"] == "open"
    assert snap["retry_in_s"] == 4.0 and snap["next_probe_in_s"] == 4.0
    clock.advance(10.0)  # past due: still "open" until the next request, which is the probe
    assert b.snapshot()["next_probe_in_s"] == 0.0
    assert snap["last_failure_kind"] == "server"
    assert snap["opened"] == 1
    b.reset()
    assert b.snapshot()["state"] == "closed" and b.snapshot()["retry_at"] is None


@pytest.mark.parametrize(
    "kw",
    [
        {"failures": 0},
        {"window": 0.0},
        {"cooldown": -1.0},
        {"cooldown": 500.0},
        {"backoff": 0.5},
        {"failure_rate": 0.0},
        {"failure_rate": 1.5},
        {"min_calls": 0},
        {"failing_for": -1.0},
    ],
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
            assert self.breaker.snapshot()["consecutive_failures"] < 3


BreakerMachine.TestCase.settings = settings(max_examples=150, stateful_step_count=40, deadline=None)
TestBreakerMachine = BreakerMachine.TestCase
