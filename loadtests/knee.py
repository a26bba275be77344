"""Finding the knee: the highest offered load that meets the SLO, in few steps.

:class:`KneeSearch` proposes the rates to try: coarse steps up (``start``, then ``+step`` or
``xFACTOR``) until one breaks or ``max`` is reached, then bisection between the highest rate that
held and the lowest that broke, until they are within ``resolution`` of each other. A step is
judged by :func:`judge_step` on its own statistics. Pure Python, no Locust.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

from loadtests import slo

__all__ = [
    "KneeSearch",
    "SearchError",
    "StepResult",
    "judge_step",
    "parse_rate",
    "parse_step",
]

_RATE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(rps|/s|rpm|/min)?\s*$", re.IGNORECASE)


class SearchError(ValueError):
    """Bad search bounds or a rate that cannot be read; the message names the option."""


def parse_rate(text: str | float, option: str = "rate") -> float:
    """``40``, ``"40rps"``, ``"40/s"``, ``"2400rpm"`` → requests per second."""
    if isinstance(text, int | float):
        value = float(text)
    else:
        match = _RATE.match(text)
        if not match:
            raise SearchError(f"{option}: {text!r} is not a rate (use e.g. 40, 40rps or 2400rpm)")
        value = float(match.group(1)) / (60.0 if (match.group(2) or "").lower() in ("rpm", "/min") else 1.0)
    if not value > 0:
        raise SearchError(f"{option}: a rate must be above 0, not {text!r}")
    return value


def parse_step(text: str) -> tuple[str, float]:
    """``"10"`` or ``"+10"`` (add 10 rps a step) or ``"x1.5"`` (multiply by 1.5) → (kind, value)."""
    raw = text.strip().lower()
    try:
        if raw.startswith(("x", "*")):
            factor = float(raw[1:])
            if factor <= 1:
                raise SearchError(f"--step {text!r}: a factor must be above 1")
            return "x", factor
        value = float(raw.removeprefix("+").removesuffix("rps"))
    except ValueError:
        raise SearchError(f"--step {text!r}: use +N (requests/s added a step) or xF (a factor)") from None
    if value <= 0:
        raise SearchError(f"--step {text!r}: must be above 0")
    return "+", value


@dataclass
class KneeSearch:
    """Coarse steps up, then bisection. Call :meth:`next_rate`, run it, :meth:`record` the verdict."""

    start: float
    step: tuple[str, float] = ("+", 10.0)
    max: float = 200.0
    resolution: float = 0.05  # stop when (broken - held) <= resolution * broken
    max_steps: int = 20
    tried: list[tuple[float, bool]] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.start <= 0 or self.max < self.start:
            raise SearchError(f"--start ({self.start:g}) must be above 0 and at most --max ({self.max:g})")
        if not 0 < self.resolution < 1:
            raise SearchError(f"--resolution must be between 0 and 1, not {self.resolution:g}")

    @property
    def held(self) -> float | None:
        """The highest rate that held."""
        return max((r for r, ok in self.tried if ok), default=None)

    @property
    def broken(self) -> float | None:
        """The lowest rate that broke."""
        return min((r for r, ok in self.tried if not ok), default=None)

    def record(self, rate: float, held: bool) -> None:
        self.tried.append((rate, held))

    def next_rate(self) -> float | None:
        """The next rate to try, or None when the knee is found (or ``max`` held, or steps ran out)."""
        if len(self.tried) >= self.max_steps:
            return None
        if not self.tried:
            return self.start
        held, broken = self.held, self.broken
        if broken is None:  # coarse phase: still going up
            assert held is not None
            if held >= self.max:
                return None
            kind, value = self.step
            return min(self.max, round(held + value if kind == "+" else held * value, 2))
        low = held or 0.0
        if broken - low <= self.resolution * broken:
            return None
        middle = round((low + broken) / 2, 2)
        if middle <= low or middle >= broken:
            return None
        return middle

    def outcome(self) -> str:
        """``found``, ``above-max`` (``max`` held), ``out-of-steps`` (``max_steps`` ran out before
        a step broke) or ``below-start``."""
        if self.broken is None:
            return "above-max" if (self.held or 0) >= self.max else "out-of-steps"
        if self.held is None:
            return "below-start"
        return "found"


@dataclass
class StepResult:
    """One step's figures and verdict (what the reports show)."""

    index: int
    rate: float
    tag: str
    duration: float
    sent: int = 0
    requests: int = 0
    failures: int = 0
    achieved: float = 0.0  # answered successfully per second
    latency_ms: dict[str, float] = field(default_factory=dict)  # "p50", "p90", "p99" over request rows
    ttft_ms: dict[str, float] = field(default_factory=dict)
    lag_ms: dict[str, float] = field(default_factory=dict)
    fallback_share: float = 0.0
    unfinished: int = 0
    users: int = 0
    deployments: dict[str, int] = field(default_factory=dict)  # served by model (router's /metrics)
    spill: dict[str, int] = field(default_factory=dict)  # "from -> to": fallbacks (router's /metrics)
    cost_usd: float | None = None
    cost_per_hour: float | None = None
    violations: list[str] = field(default_factory=list)
    held: bool = False

    @property
    def error_rate(self) -> float:
        return self.failures / self.requests if self.requests else 0.0

    def as_dict(self) -> dict[str, Any]:
        out = {k: getattr(self, k) for k in self.__dataclass_fields__}
        out["error_rate"] = self.error_rate
        return out


@dataclass(frozen=True, slots=True)
class Criteria:
    """What a step must meet besides the SLO thresholds."""

    thresholds: slo.Thresholds
    max_fallback_share: float | None = None
    max_lag_ms: float = 1000.0  # p99 of how late requests left (every user busy)
    min_sent_ratio: float = 0.9  # requests sent / rate * duration


def judge_step(
    result: StepResult, rows: Sequence[slo.StatsRow], lag_p99_ms: float | None, criteria: Criteria
) -> StepResult:
    """Fill ``result.violations`` and ``result.held`` from the step's rows (tags already removed)."""
    problems: list[str] = []
    try:
        problems += slo.check(rows, criteria.thresholds).violations
    except slo.SloError as exc:
        problems.append(str(exc))
    if result.unfinished:
        problems.append(f"{result.unfinished} request(s) still unanswered when the step was judged")
    if criteria.max_fallback_share is not None and result.fallback_share > criteria.max_fallback_share:
        problems.append(f"fallback share {result.fallback_share:.1%} > max {criteria.max_fallback_share:.1%}")
    if lag_p99_ms is not None and lag_p99_ms > criteria.max_lag_ms:
        problems.append(
            f"requests left {lag_p99_ms:g} ms late at p99 (> {criteria.max_lag_ms:g} ms): "
            f"all {result.users} users were busy, the offered load was not delivered on time"
        )
    expected = result.rate * result.duration
    # Poisson counts vary by about sqrt(expected): only a shortfall beyond 4 of those, and beyond
    # the allowed ratio, says the generator could not send (CPU starved, say), not chance.
    floor = min(criteria.min_sent_ratio * expected, expected - 4 * math.sqrt(expected))
    if expected >= 20 and result.sent < floor:
        problems.append(
            f"only {result.sent} requests sent of {expected:.0f} due: the load generator fell behind"
        )
    result.violations = problems
    result.held = not problems
    return result


def untag(rows: Iterable[slo.StatsRow], tag: str) -> list[slo.StatsRow]:
    """The rows of one step (names ending in `` @TAG``), with the tag removed from their names."""
    suffix = f" @{tag}"
    return [
        slo.StatsRow(r.type, r.name[: -len(suffix)], r.requests, r.failures, r.percentiles)
        for r in rows
        if r.name.endswith(suffix)
    ]
