"""Load shapes (step, spike, soak) as pure schedules: ``tick(run_time)`` → users and spawn rate.

A shape is chosen by a spec string, ``NAME`` or ``NAME:key=value,key=value`` (durations take
``s``, ``m`` or ``h``; a bare number is seconds)::

    step                                    10 more users every 30 s, 5 steps, then stop
    step:users=5,every=10s,steps=3
    spike:base=5,peak=50,warmup=1m,spike=30s,cooldown=1m
    soak:users=20,ramp=1m,hold=1h

Every schedule returns ``None`` once its duration is over, which stops the run: no shape runs
forever. :mod:`loadtests.shaped` wraps the chosen schedule in a Locust ``LoadTestShape``. Pure
Python, no Locust.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import ClassVar, Protocol

from turnout import durations

__all__ = [
    "SHAPES",
    "Schedule",
    "ShapeError",
    "SoakShape",
    "SpikeShape",
    "StepShape",
    "parse_duration",
    "parse_shape",
]

Tick = tuple[int, float] | None


class ShapeError(ValueError):
    """A shape spec that names no shape, an unknown parameter, or a bad value."""


class Schedule(Protocol):
    name: ClassVar[str]

    @property
    def duration(self) -> float: ...

    def tick(self, run_time: float) -> Tick: ...


def parse_duration(text: str) -> float:
    """``"90"``, ``"90s"``, ``"1.5m"``, ``"2h"``, ``"500ms"`` → seconds (turnout's one grammar),
    or a :class:`ShapeError` worded for a shape option."""
    try:
        return durations.parse_duration(text)
    except ValueError:
        raise ShapeError(f"not a duration: {text!r} (use e.g. 30s, 5m, 1h)") from None


@dataclass(frozen=True, slots=True)
class StepShape:
    """Add ``users`` every ``every`` seconds, ``steps`` times; stop at the end of the last step."""

    name: ClassVar[str] = "step"
    users: int = 10
    every: float = 30.0
    steps: int = 5
    rate: float = 0.0  # users started per second; 0 = a whole step within one second

    @property
    def duration(self) -> float:
        return self.every * self.steps

    def tick(self, run_time: float) -> Tick:
        if run_time >= self.duration:
            return None
        step = int(run_time // self.every) + 1
        return self.users * step, self.rate or float(self.users)


@dataclass(frozen=True, slots=True)
class SpikeShape:
    """``base`` users, a jump to ``peak`` for ``spike`` seconds, back to ``base``, then stop."""

    name: ClassVar[str] = "spike"
    base: int = 5
    peak: int = 50
    warmup: float = 60.0
    spike: float = 30.0
    cooldown: float = 60.0
    rate: float = 0.0  # 0 = reach the peak within one second

    @property
    def duration(self) -> float:
        return self.warmup + self.spike + self.cooldown

    def tick(self, run_time: float) -> Tick:
        rate = self.rate or float(max(self.peak, 1))
        if run_time < self.warmup:
            return self.base, rate
        if run_time < self.warmup + self.spike:
            return self.peak, rate
        if run_time < self.duration:
            return self.base, rate
        return None


@dataclass(frozen=True, slots=True)
class SoakShape:
    """Ramp to ``users`` over ``ramp`` seconds, hold them for ``hold`` seconds, then stop."""

    name: ClassVar[str] = "soak"
    users: int = 20
    ramp: float = 60.0
    hold: float = 3600.0

    @property
    def duration(self) -> float:
        return self.ramp + self.hold

    def tick(self, run_time: float) -> Tick:
        if run_time >= self.duration:
            return None
        rate = self.users / self.ramp if self.ramp > 0 else float(self.users)
        return self.users, max(rate, 0.01)


SHAPES: dict[str, type[StepShape] | type[SpikeShape] | type[SoakShape]] = {
    cls.name: cls for cls in (StepShape, SpikeShape, SoakShape)
}


def parse_shape(spec: str) -> StepShape | SpikeShape | SoakShape:
    """Build the schedule a spec string names (see the module docstring)."""
    name, _, params = spec.strip().partition(":")
    cls = SHAPES.get(name.strip().lower())
    if cls is None:
        raise ShapeError(f"unknown shape {name.strip()!r}: choose one of {', '.join(SHAPES)}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    values: dict[str, float | int] = {}
    for item in filter(None, (part.strip() for part in params.split(","))):
        key, eq, raw = item.partition("=")
        key = key.strip()
        if not eq or key not in fields:
            allowed = ", ".join(fields)
            raise ShapeError(f"shape {cls.name}: {item!r} is not key=value with a key among {allowed}")
        default = fields[key].default
        try:
            if isinstance(default, int):
                values[key] = int(raw)
            else:
                values[key] = parse_duration(raw) if key != "rate" else float(raw)
        except ValueError as exc:
            raise ShapeError(f"shape {cls.name}: {key}={raw!r}: {exc}") from None
        if values[key] < 0:
            raise ShapeError(f"shape {cls.name}: {key} must not be negative")
    schedule = cls(**values)  # type: ignore[arg-type]
    if schedule.duration <= 0:
        raise ShapeError(f"shape {cls.name}: its duration is zero, it would stop at once")
    if isinstance(schedule, StepShape) and (schedule.every <= 0 or schedule.steps < 1):
        raise ShapeError("shape step: every must be > 0 and steps >= 1")
    return schedule
