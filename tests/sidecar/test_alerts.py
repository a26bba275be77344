"""The alert rules: the shipped Prometheus file and the built-in watcher, on synthetic traffic."""

from __future__ import annotations

import re
import shutil
import subprocess
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer

from router.sidecar.alerts import AlertsSettings, AlertWatcher, default_rules, histogram_quantile
from router.sidecar.metrics import Metrics
from router.sidecar.rules import render_rules_file
from router.types import AttemptRecord, AuditRecord

RULES_FILE = Path(__file__).parents[2] / "deploy" / "prometheus" / "turnout-alerts.yaml"
RULES_TEST = RULES_FILE.with_name("turnout-alerts.test.yaml")


class FakeClock:
    def __init__(self) -> None:
        self.now = 10_000.0

    def __call__(self) -> float:
        return self.now


def record(
    route: str = "chat",
    *,
    ok: bool = True,
    latency: float = 0.3,
    cost: float = 0.0001,
    models: tuple[str, ...] = ("cheap",),
) -> AuditRecord:
    attempts = [AttemptRecord(model=m, provider="p", outcome="success", started_at=0.0) for m in models]
    return AuditRecord(
        request_id="r",
        route=route,
        candidates=list(models),
        started_at=0.0,
        attempts=attempts,
        winner=models[-1] if ok else None,
        outcome="success" if ok else "error",
        latency_s=latency,
        cost_usd=cost,
    )


def traffic(watcher: AlertWatcher, clock: FakeClock, seconds: int, per_10s: int, **kw: Any) -> None:
    """``per_10s`` requests every 10 s for ``seconds`` seconds of the fake clock."""
    for _ in range(seconds // 10):
        for _ in range(per_10s):
            watcher.on_request(record(**kw))
        clock.now += 10


def fired(watcher: AlertWatcher) -> dict[str, str]:
    return {a.rule.name: a.status for a in watcher.evaluate()}


def make_watcher(webhook: str | None = None) -> tuple[AlertWatcher, FakeClock]:
    clock = FakeClock()
    return AlertWatcher(AlertsSettings(webhook=webhook), clock=clock, wall=lambda: 0.0), clock


# --- the shipped Prometheus file -----------------------------------------------------------------------


def test_shipped_rules_are_the_watchers_rules() -> None:
    assert RULES_FILE.read_text() == render_rules_file(), "regenerate: python -m router.sidecar.rules"
    doc = yaml.safe_load(RULES_FILE.read_text())
    rules = doc["groups"][0]["rules"]
    assert [r["alert"] for r in rules] == [r.name for r in default_rules()]
    for rule in rules:
        assert set(rule) == {"alert", "expr", "for", "labels", "annotations"}
        assert rule["expr"].count("(") == rule["expr"].count(")")


def test_rules_only_use_metrics_the_sidecar_exports() -> None:
    exported = set()
    for fam in Metrics().registry.collect():
        exported.add(fam.name)
        exported.update(s.name for s in fam.samples)
    exported |= {f"{n}_bucket" for n in exported} | {f"{n}_total" for n in exported}
    used = set(re.findall(r"\bturnout_[a-z_]+", RULES_FILE.read_text()))
    assert used and used <= exported, used - exported


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_checks_and_unit_tests_the_rules() -> None:
    check = subprocess.run(["promtool", "check", "rules", str(RULES_FILE)], capture_output=True, text=True)
    assert check.returncode == 0, check.stdout + check.stderr
    test = subprocess.run(["promtool", "test", "rules", str(RULES_TEST)], capture_output=True, text=True)
    assert test.returncode == 0, test.stdout + test.stderr


# --- the built-in watcher --------------------------------------------------------------------------------


def test_histogram_quantile_matches_prometheus_interpolation() -> None:
    counts = [0] * 15
    counts[4] = 10  # ten requests in (0.1, 0.25]
    assert histogram_quantile(0.5, counts) == pytest.approx(0.175)
    assert histogram_quantile(0.95, [0] * 15) != histogram_quantile(0.95, [0] * 15)  # NaN when empty


def test_quiet_traffic_fires_nothing() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 3600, 5)
    assert fired(watcher) == {}


def test_error_spike_fires_then_resolves() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 600, 5)
    traffic(watcher, clock, 120, 5, ok=False)
    assert fired(watcher) == {"TurnoutErrorRateHigh": "firing"}
    assert fired(watcher) == {}  # still firing: no new notification
    traffic(watcher, clock, 400, 5)
    assert fired(watcher) == {"TurnoutErrorRateHigh": "resolved"}


def test_too_few_requests_never_fire() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 30, 1, ok=False)
    assert fired(watcher) == {}


def test_latency_increase_against_the_hour() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 3600, 5, latency=0.8)
    traffic(watcher, clock, 60, 5, latency=8.0)  # 20% of the last 5 min, 4% of the hour
    assert fired(watcher) == {"TurnoutLatencyIncrease": "firing"}


def test_slow_but_steady_latency_does_not_fire() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 3600, 5, latency=8.0)  # always slow: not an increase
    assert fired(watcher) == {}


def test_cost_anomaly_when_traffic_moves_to_an_expensive_model() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 6 * 3600, 1, cost=0.0002, models=("cheap",))
    assert fired(watcher) == {}
    traffic(watcher, clock, 900, 5, cost=0.01, models=("pricey",))
    assert fired(watcher) == {"TurnoutCostAnomaly": "firing"}


def test_fallback_rate_jump() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 3600, 5)
    traffic(watcher, clock, 300, 5, models=("first", "second"))
    assert fired(watcher) == {"TurnoutFallbackRateJump": "firing"}


def test_routes_alert_separately() -> None:
    watcher, clock = make_watcher()
    traffic(watcher, clock, 300, 5, route="good")
    for _ in range(30):
        watcher.on_request(record(route="bad", ok=False))
    alerts = watcher.evaluate()
    assert [(a.rule.name, a.route) for a in alerts] == [("TurnoutErrorRateHigh", "bad")]


async def test_watcher_posts_alertmanager_payloads_to_the_webhook() -> None:
    received: list[dict[str, Any]] = []

    async def hook(request: web.Request) -> web.Response:
        received.append(await request.json())
        return web.Response(status=204)

    app = web.Application()
    app.router.add_post("/hook", hook)
    async with TestServer(app) as server:
        watcher, clock = make_watcher(str(server.make_url("/hook")))
        traffic(watcher, clock, 120, 5, ok=False)
        async with aiohttp.ClientSession() as session:
            await watcher.notify(session, watcher.evaluate())
            traffic(watcher, clock, 400, 5)
            await watcher.notify(session, watcher.evaluate())
            await watcher.notify(session, watcher.evaluate())  # nothing changed: nothing sent
    assert [body["status"] for body in received] == ["firing", "resolved"]
    alert = received[0]["alerts"][0]
    assert alert["labels"] == {
        "alertname": "TurnoutErrorRateHigh",
        "route": "chat",
        "severity": "critical",
        "kind": "error_rate",
    }
    assert float(alert["annotations"]["value"]) == 1.0


async def test_a_dead_webhook_is_logged_not_raised() -> None:
    watcher, clock = make_watcher("http://127.0.0.1:9/nothing-listens-here")
    traffic(watcher, clock, 120, 5, ok=False)
    async with aiohttp.ClientSession() as session:
        await watcher.notify(session, watcher.evaluate())
    assert watcher.sent and watcher.sent[0]["status"] == "firing"
