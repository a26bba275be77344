"""Retry decisions: what is retried, how long to wait, and the limits no wait may cross."""

from __future__ import annotations

import random
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from router.clock import FakeClock
from router.errors import (
    AttemptTimeout,
    AuthError,
    BadRequest,
    ConnectFailed,
    ContentPolicy,
    ContextLengthExceeded,
    DeadlineExceeded,
    ErrorKind,
    MalformedResponse,
    NotFound,
    Overloaded,
    QuotaExceeded,
    RateLimited,
    RouterError,
    ServerError,
    StreamCut,
    StreamInterrupted,
    Unavailable,
)
from router.retry import (
    AttemptState,
    RetryPolicy,
    stop_after_attempt,
    stop_after_delay,
    stop_after_total_attempts,
    stop_never,
    wait_exponential,
    wait_fixed,
)

NO_JITTER = RetryPolicy(jitter=(1.0, 1.0))
RETRYABLE = [RateLimited, ServerError, Overloaded, ConnectFailed, AttemptTimeout, MalformedResponse]
NEVER = [BadRequest, ContextLengthExceeded, ContentPolicy, AuthError, NotFound, QuotaExceeded]


def state(
    error: RouterError | None,
    attempt: int = 1,
    *,
    remaining: float | None = None,
    started_at: float = 0.0,
    now: float = 0.0,
    total: int = 1,
) -> AttemptState:
    return AttemptState(
        attempt=attempt,
        error=error,
        started_at=started_at,
        now=now,
        deadline_remaining=remaining,
        total_attempts=total,
    )


# --- what is retried -----------------------------------------------------------------------------


@pytest.mark.parametrize("cls", RETRYABLE)
def test_retryable_errors_are_retried(cls: type[RouterError]) -> None:
    decision = NO_JITTER.decide(state(cls("boom")))
    assert decision.retry
    assert (decision.wait, decision.source) == (0.5, "backoff")


@pytest.mark.parametrize("cls", NEVER)
def test_client_errors_are_never_retried(cls: type[RouterError]) -> None:
    decision = RetryPolicy().decide(state(cls("no")))
    assert not decision.retry
    assert decision.source == "none"
    assert "not retryable" in decision.reason


@pytest.mark.parametrize("cls", NEVER)
def test_x_should_retry_true_does_not_override_the_kind(cls: type[RouterError]) -> None:
    assert not RetryPolicy().decide(state(cls("no", should_retry=True))).retry


def test_x_should_retry_false_stops_a_server_error() -> None:
    assert not RetryPolicy().decide(state(ServerError("503", should_retry=False))).retry


def test_stream_interrupted_and_unavailable_are_not_retried_here() -> None:
    assert not RetryPolicy().decide(state(StreamInterrupted("cut", partial="hel"))).retry
    assert not RetryPolicy().decide(state(Unavailable("breaker open"))).retry  # try elsewhere


def test_a_stream_cut_before_output_is_retried() -> None:
    # StreamCut shares ErrorKind.STREAM_CUT with StreamInterrupted; only the flag tells them apart.
    assert StreamCut.kind is StreamInterrupted.kind is ErrorKind.STREAM_CUT
    assert RetryPolicy().decide(state(StreamCut("eof before [DONE]"))).retry


def test_no_error_no_retry() -> None:
    decision = RetryPolicy().decide(state(None))
    assert not decision.retry and decision.reason == "no error"


# --- how long ------------------------------------------------------------------------------------


def test_exponential_backoff_is_capped() -> None:
    policy = RetryPolicy(stop=stop_after_attempt(11), jitter=(1.0, 1.0))
    waits = [policy.decide(state(ServerError("x"), n)).wait for n in range(1, 8)]
    assert waits == [0.5, 1.0, 2.0, 4.0, 8.0, 8.0, 8.0]
    huge = policy.decide(state(ServerError("x"), 10**9))  # the exponent is clamped: no overflow
    assert huge.retry is False and "10 retries used" in huge.reason
    assert RetryPolicy(stop=stop_never, jitter=(1.0, 1.0)).backoff(state(None, 10**9)) == 8.0


def test_jitter_is_multiplicative_and_seedable() -> None:
    a = RetryPolicy(rng=random.Random(7))
    b = RetryPolicy(rng=random.Random(7))
    waits_a = [a.decide(state(ServerError("x"), 2)).wait for _ in range(50)]
    waits_b = [b.decide(state(ServerError("x"), 2)).wait for _ in range(50)]
    assert waits_a == waits_b
    assert all(0.75 <= w <= 1.0 for w in waits_a)
    assert len(set(waits_a)) > 1


def test_retry_after_is_honoured_up_to_the_cap() -> None:
    decision = RetryPolicy().decide(state(RateLimited("429", retry_after=20.0)))
    assert decision.retry
    assert (decision.wait, decision.source) == (20.0, "retry-after")
    at_cap = RetryPolicy().decide(state(RateLimited("429", retry_after=60.0)))
    assert at_cap.retry and at_cap.wait == 60.0


def test_retry_after_above_the_cap_falls_back_instead_of_blocking() -> None:
    decision = RetryPolicy().decide(state(RateLimited("429", retry_after=300.0)))
    assert not decision.retry
    assert "300s" in decision.reason and "cap" in decision.reason and "falling back" in decision.reason


def test_zero_retry_after_means_backoff() -> None:
    decision = NO_JITTER.decide(state(RateLimited("429", retry_after=0.0)))
    assert (decision.retry, decision.wait, decision.source) == (True, 0.5, "backoff")


def test_retries_run_out() -> None:
    policy = RetryPolicy()  # 3 tries: 2 retries
    assert policy.decide(state(ServerError("x"), 2)).reason.startswith("server: retry 2/2 after")
    decision = policy.decide(state(ServerError("x"), 3))
    assert not decision.retry and "2 retries used" in decision.reason
    assert not RetryPolicy(stop=stop_after_attempt(1)).decide(state(ServerError("x"), 1)).retry


def test_a_configs_fields_are_the_same_stop_and_wait() -> None:
    """`retries`, `backoff_base`, `backoff_max` (what users write in YAML) map onto the one API."""
    policy = RetryPolicy.from_config(retries=2, backoff_base=0.25, backoff_max=1.0)
    assert repr(policy.stop) == "stop_after_attempt(3)" and repr(policy.wait) == "wait_exponential(0.25, 1.0)"
    silent = RetryPolicy.from_config(
        retries=4, backoff_base=0.5, backoff_max=8.0, also_stop=stop_after_delay(9)
    )
    assert repr(silent.stop) == "stop_after_attempt(5) | stop_after_delay(9)"
    assert silent.decide(state(ServerError("x"), 4)).reason.startswith("server: retry 4/4 after")
    assert "4 retries used" in silent.decide(state(ServerError("x"), 5)).reason
    stopped = silent.decide(state(ServerError("x"), 1, started_at=0.0, now=9.0))
    assert not stopped.retry and "stopped by stop_after_attempt(5) | stop_after_delay(9)" in stopped.reason
    with pytest.raises(ValueError, match="retries must be a whole number >= 0, not -1"):
        RetryPolicy.from_config(retries=-1, backoff_base=0.5, backoff_max=8.0)
    with pytest.raises(ValueError, match=r"0 <= base <= max, not 2\.0, 1\.0"):
        RetryPolicy.from_config(retries=1, backoff_base=2.0, backoff_max=1.0)


def test_the_old_two_way_keywords_are_refused_by_name() -> None:
    """One API: `max_retries`/`backoff_*` beside `stop`/`wait` is gone, not silently ignored."""
    for old in ("max_retries", "backoff_base", "backoff_max"):
        with pytest.raises(TypeError, match=old):
            RetryPolicy(**{old: 1})  # type: ignore[arg-type]


def test_no_wait_past_the_deadline() -> None:
    decision = NO_JITTER.decide(state(ServerError("x"), remaining=0.4))
    assert not decision.retry and "deadline" in decision.reason
    assert NO_JITTER.decide(state(ServerError("x"), remaining=0.6)).retry
    ra = RetryPolicy().decide(state(RateLimited("429", retry_after=5.0), remaining=4.0))
    assert not ra.retry and "deadline" in ra.reason


# --- composable pieces ---------------------------------------------------------------------------


def test_stop_conditions_compose() -> None:
    either = stop_after_attempt(3) | stop_after_delay(10.0)
    assert not either(state(None, 2, now=5.0))
    assert either(state(None, 3, now=5.0))
    assert either(state(None, 1, now=10.0))
    both = stop_after_attempt(3) & stop_after_delay(10.0)
    assert not both(state(None, 3, now=5.0))
    assert both(state(None, 3, now=10.0))
    assert not stop_never(state(None, 99, now=1e9))
    assert repr(either) == "stop_after_attempt(3) | stop_after_delay(10.0)"


def test_extra_stop_in_the_policy() -> None:
    policy = RetryPolicy(stop=stop_after_attempt(6) | stop_after_total_attempts(4) | stop_after_delay(30.0))
    assert policy.decide(state(ServerError("x"), 1, total=3)).retry
    stopped = policy.decide(state(ServerError("x"), 1, total=4))
    assert not stopped.retry and "stop_after_total_attempts(4)" in stopped.reason
    assert not policy.decide(state(ServerError("x"), 1, started_at=0.0, now=30.0)).retry


def test_waits_compose() -> None:
    w = wait_fixed(1.0) + wait_exponential(0.5, 4.0)
    assert [w(state(None, n)) for n in (1, 2, 3, 4, 5)] == [1.5, 2.0, 3.0, 5.0, 5.0]
    policy = RetryPolicy(stop=stop_after_attempt(4), jitter=(1.0, 1.0), wait=w)
    assert policy.decide(state(ServerError("x"), 2)).wait == 2.0
    assert repr(w) == "wait_fixed(1.0) + wait_exponential(0.5, 4.0)"


@pytest.mark.parametrize(
    "kwargs",
    [
        {"jitter": (1.0, 0.5)},
        {"jitter": (-0.1, 1.0)},
        {"retry_after_cap": -1.0},
    ],
)
def test_bad_settings_are_refused(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda: stop_after_attempt(0), "tries >= 1, not 0"),
        (lambda: wait_exponential(2.0, 1.0), "0 <= base <= max"),
        (lambda: wait_exponential(-1.0, 1.0), "0 <= base <= max"),
    ],
)
def test_bad_pieces_are_refused_with_their_reason(make: Any, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        make()


async def test_a_retry_loop_on_the_fake_clock_never_sleeps_for_real() -> None:
    """How the engine drives the policy: decide, sleep on the clock, try again."""
    clock = FakeClock()
    policy = RetryPolicy(stop=stop_after_attempt(4), jitter=(1.0, 1.0))
    errors: list[RouterError] = [ServerError("1"), RateLimited("2", retry_after=3.0), ConnectFailed("3")]
    started = clock.now()
    for attempt, err in enumerate(errors, start=1):
        decision = policy.decide(
            state(err, attempt, started_at=started, now=clock.now(), remaining=60 - clock.now())
        )
        assert decision.retry
        await clock.sleep(decision.wait)
    assert clock.sleeps == [0.5, 3.0, 2.0]
    assert clock.now() == 5.5


# --- invariants ----------------------------------------------------------------------------------

errors = st.builds(
    lambda cls, ra, sr: cls("e", retry_after=ra, should_retry=sr),
    st.sampled_from([*RETRYABLE, *NEVER, StreamInterrupted, Unavailable, DeadlineExceeded]),
    st.one_of(st.none(), st.floats(-10, 1000, allow_nan=False)),
    st.one_of(st.none(), st.booleans()),
)
settings_ = st.fixed_dictionaries(
    {
        "retries": st.integers(0, 6),
        "backoff_base": st.floats(0, 2),
        "backoff_max": st.floats(2, 30),
        "retry_after_cap": st.floats(0, 120),
        "rng": st.integers(0, 2**32).map(random.Random),
    }
)


class Configured:
    """A policy built from a config's fields, with those fields at hand for the assertions."""

    def __init__(self, fields: dict[str, Any]) -> None:
        self.policy = RetryPolicy.from_config(**fields)
        self.max_retries: int = fields["retries"]
        self.backoff_max: float = fields["backoff_max"]
        self.retry_after_cap: float = fields["retry_after_cap"]

    def decide(self, s: AttemptState) -> Any:
        return self.policy.decide(s)


policies = settings_.map(Configured)
remaining = st.one_of(st.none(), st.floats(0, 100))


@given(policies, errors, st.integers(1, 10), remaining)
def test_invariants_of_every_decision(
    policy: Configured, err: RouterError, attempt: int, left: float | None
) -> None:
    decision = policy.decide(state(err, attempt, remaining=left))
    if not decision.retry:
        assert decision.wait == 0.0 and decision.source == "none"
        return
    assert err.retryable and err.kind not in {k.kind for k in NEVER}
    assert attempt <= policy.max_retries
    assert decision.wait >= 0
    if left is not None:
        assert decision.wait < left
    if decision.source == "retry-after":
        assert decision.wait == err.retry_after and 0 < decision.wait <= policy.retry_after_cap
    else:
        assert decision.source == "backoff"
        assert decision.wait <= policy.backoff_max * policy.policy.jitter[1]


@given(policies, st.floats(0.001, 1000))
def test_retry_after_is_honoured_exactly_up_to_the_cap(policy: Configured, ra: float) -> None:
    decision = policy.decide(state(RateLimited("429", retry_after=ra)))
    if policy.max_retries == 0:
        assert not decision.retry
    elif ra <= policy.retry_after_cap:
        assert (decision.retry, decision.wait, decision.source) == (True, ra, "retry-after")
    else:
        assert not decision.retry


@given(policies, st.lists(st.sampled_from(RETRYABLE), min_size=1, max_size=20))
def test_attempts_never_exceed_max_retries_plus_one(
    policy: Configured, classes: list[type[RouterError]]
) -> None:
    attempt = 1
    for cls in classes:
        if not policy.decide(state(cls("x"), attempt)).retry:
            break
        attempt += 1
    assert attempt <= policy.max_retries + 1
    if len(classes) > policy.max_retries:
        assert attempt == policy.max_retries + 1  # and every allowed retry was used
