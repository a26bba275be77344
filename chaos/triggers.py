"""When a rule fires: small composable trigger objects, and the ``when:`` block that builds them.

Each trigger reads one :class:`TriggerState` and answers yes or no; ``a & b`` fires when both do.
The state holds the request's global index (arrival order), ``nth`` (how many earlier requests
this rule's target matched), the seconds elapsed since the engine started (on its clock), the
seed and the rule's name. Probabilities are drawn with :func:`chaos._draw.uniform` keyed on
(seed, rule, index), so a run with the same seed and the same requests replays exactly.

Schedules compose by AND: ``{first: 10, probability: 0.5}`` is "half of the first ten matching
requests"; ``{window: {start: 10, end: 20}, sequence: "fail 3, pass 1"}`` is the pattern, but
only between 10 s and 20 s. Counters (``first``, ``every``, ``sequence``) count the requests the
rule's target matches, whether or not the other triggers fire.
"""

from __future__ import annotations

import bisect
import itertools
import re
from dataclasses import dataclass, field

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from chaos._draw import uniform
from turnout.durations import Duration


@dataclass(frozen=True, slots=True)
class TriggerState:
    """Everything a trigger may read about one request."""

    seed: int
    rule: str
    index: int  # global arrival order of the request, 0-based
    nth: int  # how many earlier requests this rule's target matched, 0-based
    elapsed: float  # seconds since the engine (re)started, on its clock


class Trigger:
    """Base of all triggers: one method, ``fires``; ``&`` combines two."""

    def fires(self, state: TriggerState) -> bool:
        raise NotImplementedError

    def __and__(self, other: Trigger) -> Trigger:
        return AllOf((self, other))


@dataclass(frozen=True)
class Always(Trigger):
    """Fires on every matching request."""

    def fires(self, state: TriggerState) -> bool:
        return True


@dataclass(frozen=True)
class AllOf(Trigger):
    """Fires when every part fires."""

    parts: tuple[Trigger, ...]

    def fires(self, state: TriggerState) -> bool:
        return all(p.fires(state) for p in self.parts)


@dataclass(frozen=True)
class Probability(Trigger):
    """Fires with probability ``p``, drawn from (seed, rule, request index)."""

    p: float

    def fires(self, state: TriggerState) -> bool:
        return uniform(state.seed, state.rule, state.index, "p") < self.p


@dataclass(frozen=True)
class FirstN(Trigger):
    """Fires on the first ``n`` matching requests."""

    n: int

    def fires(self, state: TriggerState) -> bool:
        return state.nth < self.n


@dataclass(frozen=True)
class EveryK(Trigger):
    """Fires on the k-th, 2k-th, … matching request."""

    k: int

    def fires(self, state: TriggerState) -> bool:
        return state.nth % self.k == self.k - 1


@dataclass(frozen=True)
class Sequence(Trigger):
    """Fires following a fail/pass pattern over matching requests, e.g. fail 3, pass 1, repeat.

    The pattern is kept as runs (``((True, 3), (False, 1))``), so ``fail 100000000`` costs a
    tuple of one pair, not of a hundred million booleans."""

    pattern: tuple[tuple[bool, int], ...]
    repeat: bool = True
    _ends: tuple[int, ...] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "_ends", tuple(itertools.accumulate(n for _, n in self.pattern)))

    def fires(self, state: TriggerState) -> bool:
        total = self._ends[-1]
        if not self.repeat and state.nth >= total:
            return False
        return self.pattern[bisect.bisect_right(self._ends, state.nth % total)][0]


@dataclass(frozen=True)
class Window(Trigger):
    """Fires while ``start <= elapsed < end`` (an outage); ``end=None`` means for ever."""

    start: float = 0.0
    end: float | None = None

    def fires(self, state: TriggerState) -> bool:
        return state.elapsed >= self.start and (self.end is None or state.elapsed < self.end)


@dataclass(frozen=True)
class Brownout(Trigger):
    """An error rate that ramps from 0 up to ``peak``, holds, and ramps back down to 0.

    The rate is 0 before ``start``; rises linearly over ``ramp_up`` seconds; stays at ``peak``
    for ``hold`` seconds; falls linearly over ``ramp_down`` seconds; and is 0 after that.
    """

    start: float
    ramp_up: float
    hold: float
    ramp_down: float
    peak: float

    def rate(self, elapsed: float) -> float:
        t = elapsed - self.start
        if t < 0:
            return 0.0
        if t < self.ramp_up:
            return self.peak * t / self.ramp_up
        t -= self.ramp_up
        if t < self.hold:
            return self.peak
        t -= self.hold
        if t < self.ramp_down:
            return self.peak * (1.0 - t / self.ramp_down)
        return 0.0

    def fires(self, state: TriggerState) -> bool:
        return uniform(state.seed, state.rule, state.index, "brownout") < self.rate(state.elapsed)


_SEQ_PART = re.compile(r"^(fail|pass)(?:\s+(\d+))?$")


MAX_SEQUENCE_PARTS = 1000
MAX_SEQUENCE_COUNT = 10**12  # far beyond any run; a longer count is a typo


def parse_sequence(text: str) -> tuple[tuple[bool, int], ...]:
    """``"fail 3, pass 1"`` → ((True, 3), (False, 1)); ValueError names the bad part."""
    pattern: list[tuple[bool, int]] = []
    parts = text.split(",")
    if len(parts) > MAX_SEQUENCE_PARTS:
        raise ValueError(f"a sequence has at most {MAX_SEQUENCE_PARTS} parts, got {len(parts)}")
    for raw in parts:
        part = raw.strip().lower()
        m = _SEQ_PART.match(part)
        if not m:
            raise ValueError(
                f"expected parts like 'fail 3' or 'pass 1' separated by commas, got {raw.strip()!r}"
            )
        digits = m.group(2) or "1"
        count = int(digits) if len(digits) <= 13 else MAX_SEQUENCE_COUNT + 1
        if not 1 <= count <= MAX_SEQUENCE_COUNT:
            raise ValueError(
                f"a count must be at least 1 and at most {MAX_SEQUENCE_COUNT}, got {raw.strip()[:40]!r}"
            )
        pattern.append((m.group(1) == "fail", count))
    return tuple(pattern)


class WindowSpec(BaseModel):
    """``window: {start: 10s, end: 20s}``: seconds since the start of the run."""

    model_config = ConfigDict(extra="forbid")
    start: Duration = 0.0
    end: Duration | None = None

    @model_validator(mode="after")
    def _ordered(self) -> WindowSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError(f"end ({self.end}s) must be after start ({self.start}s)")
        return self


class BrownoutSpec(BaseModel):
    """``brownout: {start: 0, ramp_up: 30s, hold: 60s, ramp_down: 30s, peak: 0.5}``."""

    model_config = ConfigDict(extra="forbid")
    start: Duration = 0.0
    ramp_up: Duration
    hold: Duration = 0.0
    ramp_down: Duration
    peak: float = Field(gt=0.0, le=1.0)


class When(BaseModel):
    """The ``when:`` block of a rule. Every field given must hold (AND); none given means always."""

    model_config = ConfigDict(extra="forbid")
    probability: float | None = Field(default=None, ge=0.0, le=1.0)
    first: int | None = Field(default=None, ge=1, description="only the first N matching requests")
    every: int | None = Field(default=None, ge=1, description="the k-th, 2k-th, ... matching request")
    sequence: str | None = Field(default=None, description="e.g. 'fail 3, pass 1' (repeats)")
    sequence_repeat: bool = True
    window: WindowSpec | None = None
    brownout: BrownoutSpec | None = None

    @field_validator("sequence")
    @classmethod
    def _valid_sequence(cls, v: str | None) -> str | None:
        if v is not None:
            parse_sequence(v)
        return v

    def build(self) -> Trigger:
        """The trigger this block describes."""
        parts: list[Trigger] = []
        if self.window is not None:
            parts.append(Window(self.window.start, self.window.end))
        if self.first is not None:
            parts.append(FirstN(self.first))
        if self.every is not None:
            parts.append(EveryK(self.every))
        if self.sequence is not None:
            parts.append(Sequence(parse_sequence(self.sequence), self.sequence_repeat))
        if self.brownout is not None:
            b = self.brownout
            parts.append(Brownout(b.start, b.ramp_up, b.hold, b.ramp_down, b.peak))
        if self.probability is not None:
            parts.append(Probability(self.probability))
        if not parts:
            return Always()
        return parts[0] if len(parts) == 1 else AllOf(tuple(parts))
