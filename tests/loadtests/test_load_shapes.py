"""Step, spike and soak schedules: the users they ask for, and that every one of them stops."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtests.shapes import ShapeError, SoakShape, SpikeShape, StepShape, parse_duration, parse_shape


def test_step_adds_users_each_step_then_stops() -> None:
    shape = StepShape(users=5, every=10, steps=3)
    assert [shape.tick(t) for t in (0, 9.9, 10, 25, 29.9)] == [
        (5, 5.0),
        (5, 5.0),
        (10, 5.0),
        (15, 5.0),
        (15, 5.0),
    ]
    assert shape.tick(30) is None


def test_spike_jumps_to_the_peak_and_back() -> None:
    shape = SpikeShape(base=2, peak=20, warmup=10, spike=5, cooldown=10, rate=4)
    assert [shape.tick(t) for t in (0, 10, 14.9, 15, 24.9)] == [(2, 4), (20, 4), (20, 4), (2, 4), (2, 4)]
    assert shape.tick(25) is None


def test_soak_ramps_then_holds() -> None:
    shape = SoakShape(users=20, ramp=10, hold=100)
    assert shape.tick(0) == (20, 2.0)
    assert shape.tick(109) == (20, 2.0)
    assert shape.tick(110) is None
    assert SoakShape(users=3, ramp=0, hold=1).tick(0) == (3, 3.0)


def test_parse_by_name_with_defaults_and_parameters() -> None:
    assert parse_shape("step") == StepShape()
    assert parse_shape(" Spike : peak=30, spike=1m ,cooldown=500ms") == SpikeShape(
        peak=30, spike=60, cooldown=0.5
    )
    assert parse_shape("soak:users=4,ramp=2s,hold=1h") == SoakShape(users=4, ramp=2, hold=3600)
    assert parse_shape("step:rate=2.5") == StepShape(rate=2.5)


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("ramp", "unknown shape 'ramp': choose one of step, spike, soak"),
        ("step:user=3", "'user=3' is not key=value with a key among users, every, steps, rate"),
        ("step:users", "'users' is not key=value"),
        ("step:users=many", "users='many'"),
        ("soak:hold=forever", "not a duration: 'forever'"),
        ("step:users=-1", "users must not be negative"),
        ("soak:ramp=0,hold=0", "its duration is zero"),
        ("step:steps=0", "its duration is zero"),
    ],
)
def test_bad_specs_name_the_problem(spec: str, message: str) -> None:
    with pytest.raises(ShapeError, match=message.replace("(", r"\(").replace(")", r"\)")):
        parse_shape(spec)


def test_durations() -> None:
    assert [parse_duration(t) for t in ("90", "90s", "1.5m", "2h", "250ms")] == [90, 90, 90, 7200, 0.25]


@given(
    name=st.sampled_from(["step", "spike", "soak"]),
    a=st.integers(1, 50),
    b=st.integers(1, 600),
    t=st.floats(0, 10_000),
)
def test_every_shape_stops_at_its_duration_and_never_asks_for_negative_users(
    name: str, a: int, b: int, t: float
) -> None:
    spec = {
        "step": f"step:users={a},every={b},steps={a}",
        "spike": f"spike:base={a},peak={a + b},warmup={b},spike={a},cooldown={b}",
        "soak": f"soak:users={a},ramp={b},hold={b}",
    }[name]
    shape = parse_shape(spec)
    assert shape.tick(shape.duration) is None
    tick = shape.tick(t)
    if t >= shape.duration:
        assert tick is None
    else:
        assert tick is not None
        users, rate = tick
        assert users >= 0 and rate > 0
