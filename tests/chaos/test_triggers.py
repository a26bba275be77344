"""Triggers: each alone, their composition, and the stable probability draw."""

from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import ValidationError

from chaos._draw import uniform
from chaos.triggers import (
    Always,
    Brownout,
    EveryK,
    FirstN,
    Probability,
    Sequence,
    Trigger,
    TriggerState,
    When,
    Window,
    parse_sequence,
)


def state(
    nth: int = 0, index: int | None = None, elapsed: float = 0.0, seed: int = 0, rule: str = "r"
) -> TriggerState:
    return TriggerState(seed=seed, rule=rule, index=nth if index is None else index, nth=nth, elapsed=elapsed)


def fired(trigger: Trigger, n: int, elapsed: float = 0.0) -> list[int]:
    return [i for i in range(n) if trigger.fires(state(i, elapsed=elapsed))]


def test_first_n_fires_on_the_first_n_matching_requests() -> None:
    assert fired(FirstN(3), 10) == [0, 1, 2]


def test_every_k_fires_on_the_kth_2kth_request() -> None:
    assert fired(EveryK(3), 10) == [2, 5, 8]


def test_sequence_fail_3_pass_1_repeats() -> None:
    pattern = parse_sequence("fail 3, pass 1")
    assert fired(Sequence(pattern), 8) == [0, 1, 2, 4, 5, 6]
    assert fired(Sequence(pattern, repeat=False), 8) == [0, 1, 2]


def test_a_long_sequence_is_kept_as_runs() -> None:
    pattern = parse_sequence("fail 100000000, pass 2")
    assert pattern == ((True, 100_000_000), (False, 2))
    assert fired(Sequence(pattern), 3) == [0, 1, 2]


@pytest.mark.parametrize(
    "bad", ["fail x", "boom 2", "fail 0", "", "fail 2,,pass", "fail 99999999999999999999"]
)
def test_sequence_rejects_bad_parts(bad: str) -> None:
    with pytest.raises(ValueError, match=r"expected parts|at least 1"):
        parse_sequence(bad)


def test_window_is_half_open() -> None:
    w = Window(10, 20)
    assert [t for t in (9.99, 10, 15, 19.99, 20) if w.fires(state(elapsed=t))] == [10, 15, 19.99]
    assert Window(5).fires(state(elapsed=1e9))


def test_brownout_rate_ramps_up_holds_and_down() -> None:
    b = Brownout(start=10, ramp_up=10, hold=5, ramp_down=10, peak=0.5)
    assert [b.rate(t) for t in (0, 10, 15, 20, 25, 30, 35, 40)] == [0, 0, 0.25, 0.5, 0.5, 0.25, 0, 0]


def test_brownout_rate_follows_the_ramp_over_many_requests() -> None:
    b = Brownout(start=0, ramp_up=0, hold=100, ramp_down=0, peak=0.3)
    hits = sum(b.fires(state(i, elapsed=50)) for i in range(4000))
    assert 0.27 < hits / 4000 < 0.33
    assert not any(b.fires(state(i, elapsed=150)) for i in range(500))


def test_and_composes() -> None:
    t = FirstN(4) & EveryK(2)
    assert fired(t, 10) == [1, 3]


def test_when_builds_the_conjunction_of_its_fields() -> None:
    t = When.model_validate({"first": 6, "sequence": "pass 1, fail 1", "window": {"start": "1s"}}).build()
    assert fired(t, 10, elapsed=0.5) == []
    assert fired(t, 10, elapsed=2) == [1, 3, 5]
    assert isinstance(When().build(), Always)


def test_when_parses_durations_and_checks_ranges() -> None:
    w = When.model_validate({"window": {"start": "1m30s", "end": "2m"}})
    assert w.window is not None and (w.window.start, w.window.end) == (90, 120)
    for bad in (
        {"probability": 1.5},
        {"first": 0},
        {"window": {"start": 5, "end": 2}},
        {"window": {"end": "soon"}},
    ):
        with pytest.raises(ValidationError):
            When.model_validate(bad)


def test_draw_is_stable_and_independent_of_python_hash() -> None:
    # A fixed value: the same in every process (PYTHONHASHSEED does not matter) and every run.
    assert uniform(42, "storm", 7) == uniform(42, "storm", 7)
    assert uniform(42, "storm", 7) != uniform(42, "storm", 8)
    assert uniform(42, "storm", 7) != uniform(43, "storm", 7)
    assert round(uniform(0, "r", 0), 12) == round(uniform(0, "r", 0, ""), 12)


@settings(max_examples=25, deadline=None)
@given(p=st.floats(0.05, 0.95), seed=st.integers(0, 2**32), name=st.text(min_size=1, max_size=8))
def test_probability_holds_within_statistical_bounds(p: float, seed: int, name: str) -> None:
    n = 2000
    hits = sum(Probability(p).fires(state(i, seed=seed, rule=name)) for i in range(n))
    sigma = (p * (1 - p) / n) ** 0.5
    assert abs(hits / n - p) < 5 * sigma  # a 5-sigma band: fails about once in 3.5 million


@settings(max_examples=30, deadline=None)
@given(first=st.integers(1, 20), every=st.integers(1, 5), n=st.integers(0, 60))
def test_first_and_every_compose_as_documented(first: int, every: int, n: int) -> None:
    t = When(first=first, every=every).build()
    assert fired(t, n) == [i for i in range(n) if i < first and i % every == every - 1]
