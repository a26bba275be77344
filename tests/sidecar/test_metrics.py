"""The metrics listener: cached label children count like ``.labels()`` and add no series early."""

from __future__ import annotations

from router.sidecar.metrics import Metrics
from router.types import AttemptRecord, AuditRecord, Usage


def _attempt(model: str, outcome: str = "success", **kw: object) -> AttemptRecord:
    return AttemptRecord(model=model, provider="openai", outcome=outcome, started_at=0.0, **kw)  # type: ignore[arg-type]


def test_repeated_requests_count_on_the_same_series() -> None:
    m = Metrics()
    get = m.registry.get_sample_value
    ok = _attempt("a", latency_s=0.02, usage=Usage(input_tokens=3, output_tokens=5), cost_usd=0.5)
    for _ in range(3):
        m.on_attempt("r", ok)
        m.on_request(AuditRecord("id", "r", ["a"], 0.0, attempts=[ok], winner="a", latency_s=0.03))
    labels = {"route": "r", "model": "a"}
    assert get("turnout_requests_total", {**labels, "outcome": "success"}) == 3
    assert get("turnout_attempts_total", {**labels, "outcome": "success"}) == 3
    assert get("turnout_tokens_total", {**labels, "direction": "output"}) == 15
    assert get("turnout_cost_usd_total", labels) == 1.5
    assert get("turnout_request_duration_seconds_count", labels) == 3
    assert get("turnout_attempt_duration_seconds_count", {"model": "a"}) == 3
    # a plain success makes no retry, fallback or TTFT series, as before the cache
    assert get("turnout_time_to_first_token_seconds_count", labels) is None
    assert get("turnout_retries_total", labels) is None


def test_skipped_error_fallback_and_stream_series() -> None:
    m = Metrics()
    get = m.registry.get_sample_value
    skipped = _attempt("a", "skipped")
    failed = _attempt("b", "error", error_kind="server_error", latency_s=0.1)
    retried = _attempt("b", "error", error_kind="server_error", latency_s=0.1)
    won = _attempt("c", ttft_s=0.2, latency_s=0.4)
    for a in (skipped, failed, retried, won):
        m.on_attempt("r", a)
    m.on_request(
        AuditRecord(
            "id", "r", ["a", "b", "c"], 0.0, [skipped, failed, retried, won], "c", streamed=True, latency_s=1
        )
    )
    assert get("turnout_attempts_total", {"route": "r", "model": "a", "outcome": "skipped"}) == 1
    assert get("turnout_attempt_duration_seconds_count", {"model": "a"}) is None  # skipped: not timed
    assert get("turnout_errors_total", {"model": "b", "kind": "server_error"}) == 2
    assert get("turnout_tokens_total", {"route": "r", "model": "b", "direction": "input"}) is None
    assert get("turnout_retries_total", {"route": "r", "model": "b"}) == 1
    assert get("turnout_fallbacks_total", {"route": "r", "from_model": "a", "to_model": "b"}) == 1
    assert get("turnout_fallbacks_total", {"route": "r", "from_model": "b", "to_model": "c"}) == 1
    assert get("turnout_time_to_first_token_seconds_count", {"route": "r", "model": "c"}) == 1
    m.on_breaker_change("b", "closed", "open")
    m.on_breaker_change("b", "closed", "open")
    assert get("turnout_breaker_transitions_total", {"model": "b", "state": "open"}) == 2


def test_deferred_updates_show_at_every_read_and_stay_bounded() -> None:
    m = Metrics()
    get = m.registry.get_sample_value
    ok = _attempt("a", latency_s=0.02, usage=Usage(input_tokens=3, output_tokens=5))
    m.on_attempt("r", ok)
    assert get("turnout_attempts_total", {"route": "r", "model": "a", "outcome": "success"}) == 1
    m.on_attempt("r", ok)  # after a read, later updates still arrive
    assert get("turnout_tokens_total", {"route": "r", "model": "a", "direction": "input"}) == 6
    m.observe_overhead(0.0003)
    assert get("turnout_sidecar_overhead_seconds_count") == 1
    for _ in range(5000):  # never scraped: the pending observations stay few
        m.observe_overhead(0.0003)
    assert len(m._overhead.values) < 1000
    assert get("turnout_sidecar_overhead_seconds_count") == 5001
    try:
        m._tokens("r", "a", "input").inc(-1)
    except ValueError:
        pass
    else:
        raise AssertionError("a negative count must be refused at once")
