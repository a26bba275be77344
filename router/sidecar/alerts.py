"""Alert rules, written once and applied twice.

The same :class:`AlertRule` list renders the Prometheus rule file shipped in
``deploy/prometheus/turnout-alerts.yaml`` (:func:`render_prometheus_rules`) and drives the
sidecar's built-in :class:`AlertWatcher`, which keeps per-route aggregates in fixed time buckets,
evaluates the rules on its own windows (its clock is injectable) and POSTs firing and resolved
alerts to a webhook in Alertmanager's webhook format.

Four kinds of rule, each per route:

- ``error_rate``: failed requests / requests over ``window`` above ``threshold``;
- ``latency``: p95 latency over ``window`` above ``threshold`` seconds and ``factor`` times the
  p95 over ``baseline``;
- ``cost``: cost per request over ``window`` above ``threshold`` dollars and ``factor`` times the
  cost per request over ``baseline`` (traffic suddenly going to an expensive model);
- ``fallback_rate``: fallbacks / requests over ``window`` above ``threshold`` and ``factor``
  times the same ratio over ``baseline``.

A rule never fires on fewer than ``min_requests`` requests in its window.
"""

from __future__ import annotations

import asyncio
import bisect
import math
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field

if TYPE_CHECKING:
    import aiohttp

    from router.types import AttemptRecord, AuditRecord

from turnout.logs import get_logger

log = get_logger("turnout.sidecar.alerts")

RuleKind = Literal["error_rate", "latency", "cost", "fallback_rate"]

# Shared with the Prometheus histogram in metrics.py, so the watcher's p95 is Prometheus's p95.
LATENCY_BUCKETS: tuple[float, ...] = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 20, 30, 60, 120)


class AlertRule(BaseModel):
    """One alert over one signal, evaluated per route."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str = Field(pattern=r"^[A-Za-z_][A-Za-z0-9_]*$")
    kind: RuleKind
    threshold: float = Field(ge=0)
    window: float = Field(default=300, gt=0)  # seconds
    baseline: float = Field(default=3600, gt=0)  # seconds; used when factor is set
    factor: float | None = Field(default=None, gt=0)
    min_requests: int = Field(default=20, ge=1)
    severity: str = "warning"
    summary: str = ""


def default_rules() -> list[AlertRule]:
    """The rules shipped in deploy/prometheus/turnout-alerts.yaml."""
    return [
        AlertRule(
            name="TurnoutErrorRateHigh",
            kind="error_rate",
            threshold=0.05,
            window=300,
            severity="critical",
            summary="more than 5% of requests on a route fail after every fallback",
        ),
        AlertRule(
            name="TurnoutLatencyIncrease",
            kind="latency",
            threshold=2.0,
            factor=2.0,
            window=300,
            baseline=3600,
            summary="p95 latency above 2 s and twice its value over the last hour",
        ),
        AlertRule(
            name="TurnoutCostAnomaly",
            kind="cost",
            threshold=0.0001,
            factor=3.0,
            window=900,
            baseline=21600,
            summary="cost per request tripled against the last 6 h (traffic moved to a pricier model?)",
        ),
        AlertRule(
            name="TurnoutFallbackRateJump",
            kind="fallback_rate",
            threshold=0.2,
            factor=3.0,
            window=300,
            baseline=3600,
            summary="more than 20% of requests fall back, three times the hourly rate",
        ),
    ]


class AlertsSettings(BaseModel):
    """The ``alerts`` section of the sidecar's YAML."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    webhook: str | None = Field(default=None, pattern=r"^https?://")
    interval: float = Field(default=15.0, gt=0)  # seconds between evaluations
    rules: list[AlertRule] = Field(default_factory=default_rules)


# --- Prometheus rendering --------------------------------------------------------------------------


def _dur(seconds: float) -> str:
    s = int(seconds)
    if s % 3600 == 0:
        return f"{s // 3600}h"
    if s % 60 == 0:
        return f"{s // 60}m"
    return f"{s}s"


def _rate(metric: str, window: float, match: str = "") -> str:
    return f"sum by (route) (rate({metric}{match}[{_dur(window)}]))"


def _p95(window: float) -> str:
    return (
        "histogram_quantile(0.95, sum by (route, le) "
        f"(rate(turnout_request_duration_seconds_bucket[{_dur(window)}])))"
    )


def rule_expr(rule: AlertRule) -> str:
    """The PromQL expression for one rule, over the metrics in metrics.py."""
    req = "turnout_requests_total"
    volume = f"sum by (route) (increase({req}[{_dur(rule.window)}])) >= {rule.min_requests}"
    if rule.kind == "error_rate":
        errors = _rate(req, rule.window, '{outcome="error"}')
        ratio = f"{errors} / {_rate(req, rule.window)}"
        return f"({ratio} > {rule.threshold}) and ({volume})"
    if rule.kind == "latency":
        now = _p95(rule.window)
        parts = [f"({now} > {rule.threshold})"]
        if rule.factor is not None:
            parts.append(f"({now} > {rule.factor} * {_p95(rule.baseline)})")
        return " and ".join([*parts, f"({volume})"])
    metric = "turnout_cost_usd_total" if rule.kind == "cost" else "turnout_fallbacks_total"
    now = f"({_rate(metric, rule.window)} / {_rate(req, rule.window)})"
    parts = [f"({now} > {rule.threshold})"]
    if rule.factor is not None:
        base = f"({_rate(metric, rule.baseline)} / {_rate(req, rule.baseline)})"
        parts.append(f"({now} > {rule.factor} * {base})")
    return " and ".join([*parts, f"({volume})"])


def render_prometheus_rules(rules: list[AlertRule]) -> dict[str, Any]:
    """A Prometheus rule file (as a mapping ready for yaml.safe_dump)."""
    return {
        "groups": [
            {
                "name": "turnout",
                "rules": [
                    {
                        "alert": r.name,
                        "expr": rule_expr(r),
                        "for": "2m",
                        "labels": {"severity": r.severity, "kind": r.kind},
                        "annotations": {"summary": r.summary or r.name},
                    }
                    for r in rules
                ],
            }
        ]
    }


# --- the built-in watcher --------------------------------------------------------------------------


@dataclass(slots=True)
class _Bucket:
    start: float
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    cost: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))


@dataclass(slots=True)
class _Totals:
    requests: int = 0
    errors: int = 0
    fallbacks: int = 0
    cost: float = 0.0
    latency: list[int] = field(default_factory=lambda: [0] * (len(LATENCY_BUCKETS) + 1))

    def p95(self) -> float:
        return histogram_quantile(0.95, self.latency)


def histogram_quantile(q: float, counts: list[int]) -> float:
    """Prometheus's estimate: linear interpolation inside the bucket where the quantile falls."""
    total = sum(counts)
    if total == 0:
        return math.nan
    rank = q * total
    seen = 0
    for i, n in enumerate(counts):
        if seen + n >= rank and n > 0:
            if i == len(LATENCY_BUCKETS):  # the +Inf bucket: Prometheus answers the last bound
                return LATENCY_BUCKETS[-1]
            lower = LATENCY_BUCKETS[i - 1] if i > 0 else 0.0
            return lower + (LATENCY_BUCKETS[i] - lower) * (rank - seen) / n
        seen += n
    return LATENCY_BUCKETS[-1]


def count_fallbacks(record: AuditRecord) -> int:
    """How many times the router moved on to another model for this request."""
    moves = 0
    last: str | None = None
    for attempt in record.attempts:
        if last is not None and attempt.model != last:
            moves += 1
        last = attempt.model
    return moves


@dataclass(slots=True)
class Alert:
    """A firing or resolved alert for one rule on one route."""

    rule: AlertRule
    route: str
    status: Literal["firing", "resolved"]
    value: float
    started_at: float  # wall clock

    def payload(self) -> dict[str, Any]:
        return {
            "status": self.status,
            "labels": {
                "alertname": self.rule.name,
                "route": self.route,
                "severity": self.rule.severity,
                "kind": self.rule.kind,
            },
            "annotations": {"summary": self.rule.summary, "value": f"{self.value:.6g}"},
            "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.started_at)),
        }


class AlertWatcher:
    """A router listener that evaluates :class:`AlertRule` s on its own time buckets."""

    def __init__(
        self,
        settings: AlertsSettings,
        *,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        resolution: float = 10.0,
    ) -> None:
        self.settings = settings
        self.rules = settings.rules
        self._clock = clock
        self._wall = wall
        self._resolution = resolution
        horizon = max([r.baseline if r.factor else r.window for r in self.rules] or [resolution])
        self._keep = horizon + resolution
        self._buckets: dict[str, deque[_Bucket]] = {}
        self._firing: dict[tuple[str, str], Alert] = {}
        self.sent: list[dict[str, Any]] = []  # payloads posted (or that failed to post), newest last

    # RouterListener -------------------------------------------------------------------------------
    def on_attempt(self, route: str, attempt: AttemptRecord) -> None:
        pass

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        pass

    def on_request(self, record: AuditRecord) -> None:
        if not record.candidates:  # an unknown route: not a route to watch
            return
        now = self._clock()
        ring = self._buckets.get(record.route)
        if ring is None:
            ring = self._buckets[record.route] = deque()
        start = now - (now % self._resolution)
        if not ring or ring[-1].start != start:
            ring.append(_Bucket(start))
            while ring and ring[0].start < now - self._keep:
                ring.popleft()
        b = ring[-1]
        b.requests += 1
        b.errors += record.outcome == "error"
        b.fallbacks += count_fallbacks(record)
        b.cost += record.cost_usd or 0.0
        b.latency[bisect.bisect_left(LATENCY_BUCKETS, record.latency_s)] += 1

    # evaluation -----------------------------------------------------------------------------------
    def _totals(self, route: str, window: float, now: float) -> _Totals:
        t = _Totals()
        for b in self._buckets.get(route, ()):
            if b.start + self._resolution > now - window:
                t.requests += b.requests
                t.errors += b.errors
                t.fallbacks += b.fallbacks
                t.cost += b.cost
                for i, n in enumerate(b.latency):
                    t.latency[i] += n
        return t

    def _value(self, rule: AlertRule, route: str, now: float) -> float | None:
        """The rule's signal if it breaches, else None."""
        cur = self._totals(route, rule.window, now)
        if cur.requests < rule.min_requests:
            return None
        base = self._totals(route, rule.baseline, now) if rule.factor is not None else None
        if rule.kind == "error_rate":
            value = cur.errors / cur.requests
            return value if value > rule.threshold else None
        if rule.kind == "latency":
            value = cur.p95()
            if not value > rule.threshold:
                return None
            if base is not None and rule.factor is not None and not value > rule.factor * base.p95():
                return None
            return value
        num = (lambda t: t.cost) if rule.kind == "cost" else (lambda t: t.fallbacks)
        value = num(cur) / cur.requests
        if not value > rule.threshold:
            return None
        if (
            base is not None
            and rule.factor is not None
            and base.requests
            and not value > rule.factor * num(base) / base.requests
        ):
            return None
        return value

    def evaluate(self) -> list[Alert]:
        """Evaluate every rule on every route; return the alerts that changed state."""
        now = self._clock()
        changes: list[Alert] = []
        for route in list(self._buckets):
            for rule in self.rules:
                key = (rule.name, route)
                value = self._value(rule, route, now)
                firing = self._firing.get(key)
                if value is not None and firing is None:
                    alert = Alert(rule, route, "firing", value, self._wall())
                    self._firing[key] = alert
                    changes.append(alert)
                elif value is None and firing is not None:
                    del self._firing[key]
                    changes.append(Alert(rule, route, "resolved", firing.value, firing.started_at))
        return changes

    def firing(self) -> list[Alert]:
        return list(self._firing.values())

    async def notify(self, session: aiohttp.ClientSession, alerts: list[Alert]) -> None:
        """POST the alerts to the webhook, Alertmanager-style; failures are logged, not raised."""
        if not alerts:
            return
        body = {
            "version": "4",
            "receiver": "turnout",
            "status": "firing" if any(a.status == "firing" for a in alerts) else "resolved",
            "alerts": [a.payload() for a in alerts],
        }
        self.sent.append(body)
        if self.settings.webhook is None:
            return
        try:
            async with session.post(self.settings.webhook, json=body) as resp:
                if resp.status >= 300:
                    log.warning("alert webhook answered %s", resp.status)
        except Exception as exc:  # a dead webhook must never take the sidecar down
            log.warning("alert webhook failed: %s", type(exc).__name__)

    async def run(self, session: aiohttp.ClientSession) -> None:
        """Evaluate every ``interval`` seconds until cancelled."""
        while True:
            await asyncio.sleep(self.settings.interval)
            await self.notify(session, self.evaluate())
