"""The hypothesis checks, judged on synthetic observations (no sockets, no clocks)."""

from __future__ import annotations

from typing import Any

import pytest
from drill_helpers import attempt, obs, req, up
from pydantic import TypeAdapter

from chaos.drill.checks import AnyCheck, CheckResult, percentile
from chaos.drill.record import AttemptEvent, BreakerEvent, Observations

CHECK: TypeAdapter[Any] = TypeAdapter(AnyCheck)


def judge(spec: dict[str, Any], o: Observations) -> list[CheckResult]:
    return list(CHECK.validate_python(spec).evaluate(o))


def one(spec: dict[str, Any], o: Observations) -> CheckResult:
    (result,) = judge(spec, o)
    return result


def test_percentile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50.0
    assert percentile(values, 95) == 95.0
    assert percentile(values, 100) == 100.0
    assert percentile([3.0], 99) == 3.0


def test_success_rate_per_phase() -> None:
    o = obs([req(0, 0.5), req(1, 1.0), req(2, 3.0, outcome="error"), req(3, 4.0), req(4, 7.0)])
    results = judge({"check": "success_rate", "min": 0.9, "phases": ["before", "during", "after"]}, o)
    assert [(r.phase, r.passed, r.observed) for r in results] == [
        ("before", True, "100.00%"),
        ("during", False, "50.00%"),
        ("after", True, "100.00%"),
    ]
    assert "1 failed (first: [2])" in results[1].message


def test_a_phase_without_enough_requests_fails_rather_than_passes() -> None:
    result = one(
        {"check": "success_rate", "min": 0.9, "phases": ["after"], "min_requests": 2}, obs([req(0, 7.0)])
    )
    assert not result.passed
    assert "fewer than the 2 needed" in result.message


def test_route_filter() -> None:
    o = obs([req(0, route="a"), req(1, route="b", outcome="error")])
    assert one({"check": "success_rate", "min": 1.0, "routes": ["a"]}, o).passed
    result = one({"check": "success_rate", "min": 1.0, "routes": ["b"]}, o)
    assert not result.passed and result.name == "success_rate (b)"


def test_latency_and_ttft_percentiles_read_successes_only() -> None:
    o = obs([req(i, latency=0.1 * (i + 1)) for i in range(10)] + [req(10, latency=50.0, outcome="error")])
    assert one({"check": "latency", "percentile": 90, "max": "0.9s"}, o).passed
    late = one({"check": "latency", "percentile": 100, "max": "900ms"}, o)
    assert not late.passed and late.observed == "1.00 s" and late.name == "latency p100"
    streams = obs([req(0, stream=True, ttft=0.2), req(1, stream=True, ttft=0.4), req(2)])
    assert one({"check": "ttft", "percentile": 50, "max": 0.25}, streams).passed
    assert not one({"check": "ttft", "percentile": 100, "max": 0.25}, streams).passed
    none = one({"check": "ttft", "max": 1}, obs([req(0)]))
    assert not none.passed and none.message == "no successful request to measure"


def test_fallback_rate_bounds() -> None:
    o = obs([req(0, fallback=True), req(1), req(2), req(3)])
    assert one({"check": "fallback_rate", "max": 0.25}, o).passed
    assert not one({"check": "fallback_rate", "max": 0.2}, o).passed
    assert not one({"check": "fallback_rate", "min": 0.5}, o).passed


def test_truncated_answers_reported_as_success_are_caught() -> None:
    clean = obs([req(0, complete=True), req(1, outcome="error")])
    assert one({"check": "no_truncated_success"}, clean).passed
    cut = obs([req(0, complete=False), req(1, outcome="truncated"), req(2, complete=None)])
    result = one({"check": "no_truncated_success"}, cut)
    assert not result.passed and result.observed == "2 truncated" and "[0, 1]" in result.message


def _timed(**kw: Any) -> Observations:
    return obs([], windows={"outage": (2.0, 6.0)}, faults_span=(2.0, 6.0), **kw)


def test_breaker_opened_within_time_of_the_outage() -> None:
    events = [BreakerEvent(1.0, "m", "closed", "open"), BreakerEvent(2.4, "m", "closed", "open")]
    o = _timed(breaker_events=events)
    result = one({"check": "breaker_opened", "model": "m", "within": "500ms"}, o)
    assert result.passed and result.observed == "after 400 ms"  # the opening before the outage is ignored
    assert not one({"check": "breaker_opened", "model": "m", "within": "300ms"}, o).passed
    never = one({"check": "breaker_opened", "model": "other", "within": 1}, o)
    assert not never.passed and "never opened" in never.message
    ruled = one({"check": "breaker_opened", "model": "m", "within": 1, "after": "rule:outage.start + 1s"}, o)
    assert not ruled.passed  # nothing opened after 3.0 s


def test_traffic_returned_after_recovery() -> None:
    events = [AttemptEvent(5.0, "chat", "m", "success"), AttemptEvent(6.5, "chat", "m", "error")]
    events.append(AttemptEvent(7.2, "chat", "m", "success"))
    o = _timed(attempt_events=events)
    assert one({"check": "traffic_returned", "model": "m", "within": "1.5s"}, o).passed
    late = one({"check": "traffic_returned", "model": "m", "within": "1s"}, o)
    assert not late.passed and late.message == "took 1.20 s"
    undefined = one({"check": "traffic_returned", "model": "m", "within": 1}, obs([]))
    assert not undefined.passed and "not defined" in undefined.message


def test_cost_budget() -> None:
    o = obs([req(0, cost_usd=0.01), req(1, cost_usd=0.02), req(2, outcome="error", cost_usd=None)])
    assert one({"check": "cost", "max_usd": 0.05, "max_usd_per_request": 0.02}, o).passed
    result = one({"check": "cost", "max_usd": 0.02}, o)
    assert not result.passed and result.message == "total over budget"
    assert not one({"check": "cost", "max_usd_per_request": 0.01}, o).passed


def _accounted() -> Observations:
    r0 = req(0, attempts=[attempt(outcome="error"), attempt()], upstream=[up(0, 0.1, status=503), up(0, 0.2)])
    r1 = req(1, outcome="error", attempts=[attempt("x", "skipped")], upstream=[])
    totals = {"requests": 2, "audit attempts": 2, "drill tap": 2, "mock journal": 2, "chaos journal": 2}
    return obs([r0, r1], totals=totals)


def test_nothing_lost_when_all_is_accounted_for() -> None:
    assert one({"check": "nothing_lost"}, _accounted()).passed


@pytest.mark.parametrize(
    ("spoil", "expected"),
    [
        (lambda o: setattr(o.requests[1], "outcome", "timeout"), "without a clean outcome: [(1, 'timeout')]"),
        (lambda o: setattr(o.requests[0], "audited", False), "without an audit record: [0]"),
        (lambda o: o.requests[0].upstream.pop(), "(id, audit, mock): [(0, 2, 1)]"),
        (lambda o: o.untagged.append(up(9, 1.0)), "1 mock request(s) belong to no drill request"),
        (lambda o: o.totals.update({"mock journal": 1}), "totals disagree"),
    ],
)
def test_nothing_lost_finds_each_kind_of_loss(spoil: Any, expected: str) -> None:
    o = _accounted()
    spoil(o)
    result = one({"check": "nothing_lost"}, o)
    assert not result.passed and expected in result.message


def test_requests_abandoned_before_their_answer_are_not_missing_from_the_mock() -> None:
    o = _accounted()
    o.totals.update({"mock journal": 1, "abandoned": 1})
    assert one({"check": "nothing_lost"}, o).passed


def test_retry_after_honoured() -> None:
    patient = req(0, upstream=[up(0, 0.0, status=429, retry_after=1.0, t_end=0.01), up(0, 1.02)])
    early = req(1, upstream=[up(1, 0.0, status=429, retry_after=2.0, t_end=0.01), up(1, 0.5)])
    elsewhere = req(
        2, upstream=[up(2, 0.0, status=429, retry_after=9.0, t_end=0.01), up(2, 0.1, model="other")]
    )
    assert one({"check": "retry_after_honoured"}, obs([patient, elsewhere])).passed
    result = one({"check": "retry_after_honoured"}, obs([patient, early, elsewhere]))
    assert not result.passed and result.observed == "1 early of 2 retries"
    assert "#1 waited 0.49s of 2s" in result.message


def test_no_repeat_429_on_a_real_limit() -> None:
    limit = {"status": 429, "fault_kind": "real_rate_limit", "retry_after": 1.0}
    ok = req(0, upstream=[up(0, 0.0, **limit), up(0, 1.1)])
    repeated = req(1, upstream=[up(1, 0.0, **limit), up(1, 1.1, **limit), up(1, 2.2)])
    injected = req(2, upstream=[up(2, 0.0, status=429, fault_kind="rate_limit"), up(2, 0.1, status=429)])
    assert one({"check": "no_repeat_429"}, obs([ok, injected])).passed
    assert not one({"check": "no_repeat_429"}, obs([ok, repeated])).passed
    assert one({"check": "no_repeat_429", "max": 1}, obs([ok, repeated])).passed


def test_provider_rate_counts_every_replica_against_one_bucket() -> None:
    # rpm 60 over a 10 s drill: one full bucket (60) plus 10 s of refill (10) = 70
    requests = [req(i, i * 0.1, upstream=[up(i, i * 0.1)]) for i in range(70)]
    o = obs(requests, untagged=[up(None, 9.0, model="gpt-4o")])  # not a drill request: still counted
    result = one({"check": "provider_rate", "provider": "openai", "rpm": 60}, o)
    assert not result.passed and result.observed == "71 requests" and "1 more" in result.message
    assert one({"check": "provider_rate", "provider": "openai", "rpm": 60, "buckets": 2}, o).passed
    assert one({"check": "provider_rate", "provider": "mistral", "rpm": 1}, o).passed


def test_replicas_agree_when_every_replica_ejects_close_together() -> None:
    events = [
        BreakerEvent(1.0, "m", "closed", "open", replica=0),
        BreakerEvent(1.2, "m", "closed", "open", replica=2),
        BreakerEvent(1.3, "m", "closed", "open", replica=1),
        BreakerEvent(4.0, "m", "closed", "open", replica=1),  # a later ejection: not the first
    ]
    o = obs([], breaker_events=events)
    result = one({"check": "replicas_agree", "model": "m", "replicas": 3, "within": "500ms"}, o)
    assert result.passed and result.observed == "within 300 ms"
    assert not one({"check": "replicas_agree", "model": "m", "replicas": 3, "within": "200ms"}, o).passed
    missing = one({"check": "replicas_agree", "model": "m", "replicas": 4, "within": 1}, o)
    assert not missing.passed and "replicas [3] never ejected" in missing.message


def test_provider_rate_per_phase_uses_the_phase_length() -> None:
    # "before" is 0-2 s: rpm 60 allows 60 + 2; 63 arrive then, 5 more later
    requests = [req(i, 0.01 * i, upstream=[up(i, 0.01 * i)]) for i in range(63)]
    requests += [req(100 + i, 7.0, upstream=[up(100 + i, 7.0)]) for i in range(5)]
    results = judge(
        {"check": "provider_rate", "provider": "openai", "rpm": 60, "phases": ["before", "after"]},
        obs(requests),
    )
    assert [(r.phase, r.passed, r.observed) for r in results] == [
        ("before", False, "63 requests"),
        ("after", True, "5 requests"),
    ]
