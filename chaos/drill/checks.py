"""The steady-state hypothesis: small check objects, each judging the observations of one drill.

A check is a pydantic model (its tolerances, as written in the drill file under
``hypothesis.checks``) with one method, :meth:`Check.judge`, which reads the requests of one
phase and returns a :class:`CheckResult`. Checks about the drill as a whole (the breaker, lost
requests) override :meth:`Check.evaluate` instead. Every check is pure: it reads an
:class:`~chaos.drill.record.Observations` and nothing else, so it is tested on synthetic journals.

::

    checks:
      - {check: success_rate, min: 0.99, phases: [before, during, after]}
      - {check: latency, percentile: 95, max: 1.5s, phases: [before, after]}
      - {check: breaker_opened, model: gpt-4o-mini, within: 2s}
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from chaos.drill.record import CLEAN, Observations, RequestRecord
from chaos.drill.timeref import TimeRef, TimeRefField, Windows
from turnout.durations import Duration


@dataclass(slots=True)
class CheckResult:
    """One check in one phase: did it hold, what was seen, what was expected, and why."""

    name: str
    check: str
    phase: str
    passed: bool
    observed: str
    expected: str
    message: str = ""
    requests: int = 0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def percentile(values: list[float], p: float) -> float:
    """Nearest-rank percentile (``p`` in (0, 100]) of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, math.ceil(p / 100.0 * len(ordered)))
    return ordered[min(rank, len(ordered)) - 1]


def _pct(x: float) -> str:
    return f"{x * 100:.2f}%"


def _secs(x: float) -> str:
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


class Check(BaseModel):
    """Common fields: an optional display ``name``, the ``phases`` it applies to (``all`` is the
    whole drill), the ``routes`` whose requests it reads (default: all), whether it reads only
    ``streamed`` requests or only non-streamed ones (default: both) and the fewest requests a
    phase must hold for the check to mean anything."""

    model_config = ConfigDict(extra="forbid")
    check: str
    name: str | None = None
    phases: list[str] = Field(default_factory=lambda: ["all"], min_length=1)
    routes: list[str] | None = Field(default=None, min_length=1)
    streamed: bool | None = None
    min_requests: int = Field(default=1, ge=0)

    def label(self) -> str:
        return self.name or self.check

    def select(self, obs: Observations, phase: str) -> list[RequestRecord]:
        """The requests this check reads in ``phase``."""
        reqs = obs.in_phase(phase)
        if self.routes is not None:
            reqs = [r for r in reqs if r.route in self.routes]
        if self.streamed is not None:
            reqs = [r for r in reqs if r.stream is self.streamed]
        return reqs

    def evaluate(self, obs: Observations) -> list[CheckResult]:
        out = []
        for phase in self.phases:
            reqs = self.select(obs, phase)
            if len(reqs) < self.min_requests:
                out.append(
                    self.result(
                        phase,
                        False,
                        f"{len(reqs)} requests",
                        f">= {self.min_requests} requests",
                        f"the {phase} phase holds {len(reqs)} request(s), fewer than the "
                        f"{self.min_requests} needed to judge it",
                        len(reqs),
                    )
                )
            else:
                out.append(self.judge(phase, reqs, obs))
        return out

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        raise NotImplementedError

    def result(
        self, phase: str, passed: bool, observed: str, expected: str, message: str = "", n: int = 0
    ) -> CheckResult:
        name = self.label() + (f" ({', '.join(self.routes)})" if self.routes and not self.name else "")
        if self.streamed is not None and not self.name:
            name += " (streams)" if self.streamed else " (non-streamed)"
        return CheckResult(name, self.check, phase, passed, observed, expected, message, n)


class SuccessRate(Check):
    """The share of requests answered successfully is at least ``min``."""

    check: Literal["success_rate"]
    min: float = Field(ge=0.0, le=1.0)

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        ok = sum(r.ok for r in reqs)
        rate = ok / len(reqs) if reqs else 1.0
        failed = [r.id for r in reqs if not r.ok][:10]
        why = "" if rate >= self.min else f"{len(reqs) - ok} failed (first: {failed})"
        return self.result(phase, rate >= self.min, _pct(rate), f">= {_pct(self.min)}", why, len(reqs))


class Latency(Check):
    """The ``percentile`` of successful requests' latency (end to end) is at most ``max``."""

    check: Literal["latency"]
    percentile: float = Field(default=95.0, gt=0.0, le=100.0)
    max: Duration

    def label(self) -> str:
        return self.name or f"latency p{self.percentile:g}"

    def _values(self, reqs: list[RequestRecord]) -> list[float]:
        return [r.latency for r in reqs if r.ok]

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        values = self._values(reqs)
        expected = f"<= {_secs(self.max)}"
        if not values:
            return self.result(phase, False, "n/a", expected, "no successful request to measure", len(reqs))
        p = percentile(values, self.percentile)
        return self.result(phase, p <= self.max, _secs(p), expected, "", len(values))


class Ttft(Latency):
    """The ``percentile`` of successful streams' time to first token is at most ``max``."""

    check: Literal["ttft"]  # type: ignore[assignment]

    def label(self) -> str:
        return self.name or f"ttft p{self.percentile:g}"

    def _values(self, reqs: list[RequestRecord]) -> list[float]:
        return [r.ttft for r in reqs if r.ok and r.stream and r.ttft is not None]


class FallbackRate(Check):
    """The share of successes answered by a deployment other than the route's first is within
    [``min``, ``max``]: low when all is well, high while the primary is down."""

    check: Literal["fallback_rate"]
    min: float | None = Field(default=None, ge=0.0, le=1.0)
    max: float | None = Field(default=None, ge=0.0, le=1.0)

    @model_validator(mode="after")
    def _bounded(self) -> FallbackRate:
        if self.min is None and self.max is None:
            raise ValueError("fallback_rate needs min, max or both")
        return self

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        ok = [r for r in reqs if r.ok]
        lo, hi = self.min if self.min is not None else 0.0, self.max if self.max is not None else 1.0
        expected = f"within [{_pct(lo)}, {_pct(hi)}]"
        if not ok:
            return self.result(phase, False, "n/a", expected, "no successful request", len(reqs))
        rate = sum(r.fallback for r in ok) / len(ok)
        return self.result(phase, lo <= rate <= hi, _pct(rate), expected, "", len(ok))


class NoTruncatedSuccess(Check):
    """No answer that was cut short is reported as a success: a successful stream ended with its
    StreamEnd (library) or ``[DONE]`` (sidecar), and its text is the whole of what the mock sent."""

    check: Literal["no_truncated_success"]
    min_requests: int = Field(default=0, ge=0)

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        bad = [r for r in reqs if r.outcome == "truncated" or (r.ok and r.complete is False)]
        ids = [r.id for r in bad][:10]
        why = f"truncated answers reported as success: requests {ids}" if bad else ""
        checked = sum(1 for r in reqs if r.ok and r.complete is not None)
        return self.result(phase, not bad, f"{len(bad)} truncated", "0 truncated", why, checked)


class _Timed(Check):
    model: str
    within: Duration
    after: TimeRefField

    def _anchor(self, obs: Observations) -> float | None:
        return self.after.resolve(Windows(obs.windows, obs.faults_span))

    def evaluate(self, obs: Observations) -> list[CheckResult]:
        ref = self._anchor(obs)
        expected = f"within {_secs(self.within)} of {self.after.describe()}"
        if ref is None:
            return [self.result("all", False, "n/a", expected, f"{self.after} is not defined in this drill")]
        t = self._first(obs, ref)
        if t is None:
            return [self.result("all", False, "never", expected, self._never(ref))]
        delay = t - ref
        why = "" if delay <= self.within else f"took {_secs(delay)}"
        return [self.result("all", delay <= self.within, f"after {_secs(delay)}", expected, why)]

    def _first(self, obs: Observations, ref: float) -> float | None:
        raise NotImplementedError

    def _never(self, ref: float) -> str:
        raise NotImplementedError


class BreakerOpened(_Timed):
    """``model``'s circuit breaker opened within ``within`` of ``after`` (default: the outage)."""

    check: Literal["breaker_opened"]
    after: TimeRefField = TimeRef.parse("faults.start")

    def label(self) -> str:
        return self.name or f"breaker opened ({self.model})"

    def _first(self, obs: Observations, ref: float) -> float | None:
        times = [e.t for e in obs.breaker_events if e.model == self.model and e.new == "open" and e.t >= ref]
        return min(times, default=None)

    def _never(self, ref: float) -> str:
        return f"{self.model}'s breaker never opened after {ref:.2f} s"


class TrafficReturned(_Timed):
    """An attempt on ``model`` succeeded within ``within`` of ``after`` (default: the recovery)."""

    check: Literal["traffic_returned"]
    after: TimeRefField = TimeRef.parse("faults.end")

    def label(self) -> str:
        return self.name or f"traffic returned ({self.model})"

    def _first(self, obs: Observations, ref: float) -> float | None:
        times = [
            e.t for e in obs.attempt_events if e.model == self.model and e.outcome == "success" and e.t >= ref
        ]
        return min(times, default=None)

    def _never(self, ref: float) -> str:
        return f"no attempt on {self.model} succeeded after {ref:.2f} s"


class NoEjection(Check):
    """``model``'s health never ejected it during the drill (its breaker never opened): partial
    faults and caller errors stay partial. ``model`` may name a deployment's stream health as
    ``NAME#stream``."""

    check: Literal["no_ejection"]
    model: str
    min_requests: int = Field(default=0, ge=0)

    def label(self) -> str:
        return self.name or f"never ejected ({self.model})"

    def evaluate(self, obs: Observations) -> list[CheckResult]:
        opened = [e.t for e in obs.breaker_events if e.model == self.model and e.new == "open"]
        why = f"ejected {len(opened)} time(s), first at {min(opened):.2f} s" if opened else ""
        return [self.result("all", not opened, f"{len(opened)} ejections", "0 ejections", why)]


class Cost(Check):
    """What the requests cost in total (``max_usd``) and per successful request
    (``max_usd_per_request``), from the router's own cost accounting."""

    check: Literal["cost"]
    max_usd: float | None = Field(default=None, ge=0)
    max_usd_per_request: float | None = Field(default=None, ge=0)

    @model_validator(mode="after")
    def _bounded(self) -> Cost:
        if self.max_usd is None and self.max_usd_per_request is None:
            raise ValueError("cost needs max_usd, max_usd_per_request or both")
        return self

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        total = sum(r.cost_usd or 0.0 for r in reqs)
        ok = sum(r.ok for r in reqs)
        per = total / ok if ok else 0.0
        parts, wants, bad = [f"${total:.6f}"], [], []
        if self.max_usd is not None:
            wants.append(f"total <= ${self.max_usd:g}")
            if total > self.max_usd:
                bad.append("total over budget")
        if self.max_usd_per_request is not None:
            parts.append(f"${per:.6f}/request")
            wants.append(f"<= ${self.max_usd_per_request:g}/request")
            if per > self.max_usd_per_request:
                bad.append("per-request cost over budget")
        return self.result(phase, not bad, ", ".join(parts), ", ".join(wants), "; ".join(bad), len(reqs))


class NothingLost(Check):
    """Every request has exactly one clean outcome (answered, or failed with a router error);
    each has its audit record; per request, the attempts the audit lists equal the requests the
    mock received for it; and the totals of the audit, the drill's tap, the mock's journal and
    the chaos engine's journal agree."""

    check: Literal["nothing_lost"]

    def evaluate(self, obs: Observations) -> list[CheckResult]:
        problems: list[str] = []
        lost = [(r.id, r.outcome) for r in obs.requests if r.outcome not in CLEAN]
        if lost:
            problems.append(f"{len(lost)} request(s) without a clean outcome: {lost[:10]}")
        unaudited = [r.id for r in obs.requests if not r.audited]
        if unaudited:
            problems.append(f"{len(unaudited)} request(s) without an audit record: {unaudited[:10]}")
        mismatch = [
            (r.id, sum(a.outcome != "skipped" for a in r.attempts), len(r.upstream))
            for r in obs.requests
            if r.audited and sum(a.outcome != "skipped" for a in r.attempts) != len(r.upstream)
        ]
        if mismatch:
            problems.append(
                f"{len(mismatch)} request(s) whose audited attempts differ from the mock's count "
                f"(id, audit, mock): {mismatch[:10]}"
            )
        if obs.untagged:
            problems.append(f"{len(obs.untagged)} mock request(s) belong to no drill request")
        totals = {k: v for k, v in obs.totals.items() if k not in ("requests", "abandoned")}
        abandoned = obs.totals.get("abandoned", 0)
        if "mock journal" in totals:
            totals["mock journal"] += abandoned
        if len(set(totals.values())) > 1:
            problems.append("totals disagree: " + ", ".join(f"{k} {v}" for k, v in totals.items()))
        counts = ", ".join(f"{k} {v}" for k, v in obs.totals.items() if k != "requests")
        observed = f"{len(obs.requests)} requests; upstream: {counts}"
        return [
            self.result(
                "all", not problems, observed, "all accounted for", "; ".join(problems), len(obs.requests)
            )
        ]


class RetryAfterHonoured(Check):
    """After a 429 that said when to come back, a retry of the same model within the same
    request waited at least that long (``tolerance`` allows for clock granularity)."""

    check: Literal["retry_after_honoured"]
    tolerance: Duration = 0.05
    min_requests: int = Field(default=0, ge=0)

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        seen = 0
        early: list[str] = []
        for r in reqs:
            for i, u in enumerate(r.upstream):
                if u.status != 429 or u.retry_after is None or u.t_end is None:
                    continue
                nxt = next(
                    (v for v in r.upstream[i + 1 :] if (v.provider, v.model) == (u.provider, u.model)), None
                )
                if nxt is None:
                    continue
                seen += 1
                waited = nxt.t - u.t_end
                if waited + self.tolerance < u.retry_after:
                    early.append(f"#{r.id} waited {waited:.2f}s of {u.retry_after:g}s")
        why = "retried too early: " + "; ".join(early[:10]) if early else ""
        return self.result(phase, not early, f"{len(early)} early of {seen} retries", "0 early", why, seen)


class NoRepeat429(Check):
    """Within one request, a retry that waited out a real rate limit's retry-after was not
    refused again by the same limit (at most ``max`` such repeats, for concurrent traffic that
    takes the freed capacity first)."""

    check: Literal["no_repeat_429"]
    max: int = Field(default=0, ge=0)
    min_requests: int = Field(default=0, ge=0)

    def judge(self, phase: str, reqs: list[RequestRecord], obs: Observations) -> CheckResult:
        repeats: list[int] = []
        for r in reqs:
            limited = [u for u in r.upstream if u.fault_kind == "real_rate_limit"]
            prev = None
            for u in r.upstream:
                same = prev is not None and (prev.provider, prev.model) == (u.provider, u.model)
                if same and u in limited and prev in limited:
                    repeats.append(r.id)
                prev = u
        why = f"repeated 429s in requests {repeats[:10]}" if len(repeats) > self.max else ""
        return self.result(phase, len(repeats) <= self.max, f"{len(repeats)} repeats", f"<= {self.max}", why)


class ProviderRate(Check):
    """What ``provider`` received (the mock's side, every replica together) in each phase stayed
    within a limit of ``rpm`` requests a minute, as a token bucket counts it: ``buckets`` full
    buckets plus ``rpm / 60`` per second of the phase. One bucket while the shared store holds;
    a store that is unreachable for a while (each replica then spends its share of a bucket) or
    comes back empty (a full bucket again) adds one each."""

    check: Literal["provider_rate"]
    provider: str
    rpm: int = Field(gt=0)
    buckets: int = Field(default=1, ge=1)
    min_requests: int = Field(default=0, ge=0)

    def label(self) -> str:
        return self.name or f"provider rate ({self.provider})"

    def evaluate(self, obs: Observations) -> list[CheckResult]:
        seen = [u for r in obs.requests for u in r.upstream] + list(obs.untagged)
        out = []
        for phase in self.phases:
            start, end = (0.0, obs.duration) if phase == "all" else obs.phases[phase]
            n = sum(1 for u in seen if u.provider == self.provider and start <= u.t < end)
            span = max(0.0, end - start)
            bound = math.floor(self.buckets * self.rpm + self.rpm / 60.0 * span)
            expected = f"<= {bound} ({self.buckets} x {self.rpm} + {self.rpm}/60 per s over {span:.1f} s)"
            why = "" if n <= bound else f"{n - bound} more than the limit allows"
            out.append(self.result(phase, n <= bound, f"{n} requests", expected, why, n))
        return out


class ReplicasAgree(Check):
    """Every one of ``replicas`` routers ejected ``model`` (its breaker opened), the last within
    ``within`` of the first: replicas sharing state eject together."""

    check: Literal["replicas_agree"]
    model: str
    replicas: int = Field(ge=2)
    within: Duration

    def label(self) -> str:
        return self.name or f"replicas eject together ({self.model})"

    def evaluate(self, obs: Observations) -> list[CheckResult]:
        first: dict[int, float] = {}
        for e in obs.breaker_events:
            if e.model == self.model and e.new == "open" and e.replica not in first:
                first[e.replica] = e.t
        expected = f"all {self.replicas} within {_secs(self.within)} of the first"
        if len(first) < self.replicas:
            missing = sorted(set(range(self.replicas)) - set(first))
            return [
                self.result(
                    "all", False, f"{len(first)} ejected", expected, f"replicas {missing} never ejected"
                )
            ]
        spread = max(first.values()) - min(first.values())
        why = "" if spread <= self.within else f"the last ejected {_secs(spread)} after the first"
        return [self.result("all", spread <= self.within, f"within {_secs(spread)}", expected, why)]


AnyCheck = Annotated[
    SuccessRate
    | Latency
    | Ttft
    | FallbackRate
    | NoTruncatedSuccess
    | BreakerOpened
    | TrafficReturned
    | NoEjection
    | Cost
    | NothingLost
    | RetryAfterHonoured
    | NoRepeat429
    | ProviderRate
    | ReplicasAgree,
    Field(discriminator="check"),
]
"""A check as written in a drill file; ``check:`` names its kind."""

CHECK_KINDS: tuple[str, ...] = (
    "success_rate",
    "latency",
    "ttft",
    "fallback_rate",
    "no_truncated_success",
    "breaker_opened",
    "traffic_returned",
    "no_ejection",
    "cost",
    "nothing_lost",
    "retry_after_honoured",
    "no_repeat_429",
    "provider_rate",
    "replicas_agree",
)
