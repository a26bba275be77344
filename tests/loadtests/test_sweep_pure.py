"""The capacity sweep's pure parts: arrivals, the knee search and verdicts, the router's figures,
the options and the reports."""

from __future__ import annotations

import argparse
import itertools
import json
import math
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from loadtests import knee, slo, sweep_options, sweep_report
from loadtests.arrivals import Arrivals, Dispatcher, StepPlan
from loadtests.routerstats import RouterFigures, parse_metrics


# -- arrivals ---------------------------------------------------------------------------------
def test_poisson_arrivals_average_the_rate_and_replay_with_the_seed() -> None:
    a = Arrivals(50, "poisson", seed=3)
    times = [a.take() for _ in range(5000)]
    assert times == sorted(times)
    assert 5000 / times[-1] == pytest.approx(50, rel=0.05)
    b = Arrivals(50, "poisson", seed=3)
    assert [b.take() for _ in range(5)] == times[:5]
    gaps = [y - x for x, y in itertools.pairwise(times)]
    cv = math.sqrt(sum((g - 0.02) ** 2 for g in gaps) / len(gaps)) / 0.02
    assert cv == pytest.approx(1.0, abs=0.1)  # exponential gaps: spread as large as the mean


def test_constant_arrivals_are_evenly_spaced() -> None:
    a = Arrivals(4, "constant", start=10.0)
    assert [a.take() for _ in range(3)] == pytest.approx([10.25, 10.5, 10.75])


@pytest.mark.parametrize(
    ("rate", "kind"), [(0, "poisson"), (-1, "constant"), (math.inf, "poisson"), (1, "burst")]
)
def test_bad_arrivals_are_refused(rate: float, kind: Any) -> None:
    with pytest.raises(ValueError):
        Arrivals(rate, kind)


class FakeTime:
    def __init__(self) -> None:
        self.t = 0.0
        self.waits = 0

    def now(self) -> float:
        return self.t

    def sleep(self, seconds: float) -> None:
        self.t += seconds

    def wait(self) -> None:
        self.waits += 1
        raise LookupError("would block until the next step")


def test_dispatcher_hands_out_due_times_tags_warmup_and_measures_lag() -> None:
    clock = FakeTime()
    d = Dispatcher(clock.now, clock.sleep, clock.wait, lambda: None)
    d.begin(StepPlan("10rps", 10, warmup=1.0, duration=2.0, kind="constant"))
    first = d.take()
    assert (first.tag, first.due, first.lag) == ("warmup", pytest.approx(0.1), 0.0)
    clock.t = 1.55  # the user was busy: the next request is late
    late = d.take()
    assert late.due == pytest.approx(0.2) and late.lag == pytest.approx(1.35)
    while (slot := d.take()).due < 1.0:
        pass
    assert slot.tag == "10rps"
    tags = [slot.tag]
    with pytest.raises(LookupError):  # the step is over: users wait for the next one
        while True:
            tags.append(d.take().tag)
    assert d.sent == {"warmup": 9, "10rps": 20} and not d.running
    assert set(tags) == {"10rps"}


# -- the search -------------------------------------------------------------------------------
def run_search(search: knee.KneeSearch, capacity: float) -> list[float]:
    tried = []
    while (rate := search.next_rate()) is not None:
        tried.append(rate)
        search.record(rate, rate <= capacity)
    return tried


def test_coarse_steps_then_bisection_find_the_knee() -> None:
    search = knee.KneeSearch(start=20, step=("+", 20), max=200, resolution=0.05)
    assert run_search(search, 50) == [20, 40, 60, 50, 55, 52.5]
    assert (search.held, search.broken, search.outcome()) == (50, 52.5, "found")


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.floats(1, 500),
    start=st.floats(1, 100),
    step=st.one_of(st.tuples(st.just("+"), st.floats(1, 50)), st.tuples(st.just("x"), st.floats(1.1, 3))),
)
def test_the_knee_brackets_any_capacity_within_the_resolution(
    capacity: float, start: float, step: tuple[str, float]
) -> None:
    search = knee.KneeSearch(start=start, step=step, max=1000, resolution=0.05, max_steps=60)
    run_search(search, capacity)
    held, broken = search.held, search.broken
    if broken is None:  # a capacity below max: only running out of steps stops short of it
        assert search.outcome() == "out-of-steps" and len(search.tried) == 60
        return
    assert held is not None  # even below the first step, bisection from 0 finds one that holds
    assert held <= capacity < broken
    if len(search.tried) < 60:  # not stopped by max_steps: bisected down to the resolution
        assert broken - held <= 0.05 * broken + 0.02  # rates are rounded to 0.01


def test_a_load_that_never_breaks_stops_at_max_and_says_so() -> None:
    search = knee.KneeSearch(start=10, step=("x", 2), max=50)
    assert run_search(search, 1000) == [10, 20, 40, 50]
    assert search.outcome() == "above-max"


@pytest.mark.parametrize(
    ("text", "rate"), [("40", 40.0), ("40rps", 40.0), ("40/s", 40.0), ("2400rpm", 40.0), (12.5, 12.5)]
)
def test_rates_read_with_units(text: Any, rate: float) -> None:
    assert knee.parse_rate(text) == rate


@pytest.mark.parametrize("text", ["fast", "-3", "0", "40 rph"])
def test_bad_rates_name_the_option(text: str) -> None:
    with pytest.raises(knee.SearchError, match="--require"):
        knee.parse_rate(text, "--require")


@pytest.mark.parametrize(("text", "step"), [("10", ("+", 10.0)), ("+5", ("+", 5.0)), ("x1.5", ("x", 1.5))])
def test_steps_add_or_multiply(text: str, step: tuple[str, float]) -> None:
    assert knee.parse_step(text) == step


@pytest.mark.parametrize("text", ["x1", "x0.5", "+0", "fast"])
def test_bad_steps_are_refused(text: str) -> None:
    with pytest.raises(knee.SearchError, match="--step"):
        knee.parse_step(text)


# -- verdicts ---------------------------------------------------------------------------------
def rows(p99: float, failures: int = 0, ttft: float = 50) -> list[slo.StatsRow]:
    return [
        slo.StatsRow("POST", "chat", 500, failures, {0.99: p99}),
        slo.StatsRow("TTFT", "chat-stream", 250, 0, {0.99: ttft}),
        slo.StatsRow("FALLBACK", "chat -> b", 400, 0, {0.99: 1.0}),  # not a request row
    ]


CRITERIA = knee.Criteria(slo.Thresholds(max_error_rate=0.01, latency_ms={0.99: 2000}, ttft_ms={0.99: 800}))


def step(**kw: Any) -> knee.StepResult:
    return knee.StepResult(**{"index": 1, "rate": 50, "tag": "50rps", "duration": 10, "sent": 500, **kw})


def test_a_step_within_every_threshold_holds() -> None:
    assert knee.judge_step(step(), rows(150), 5.0, CRITERIA).held


@pytest.mark.parametrize(
    ("result", "stats", "lag", "why"),
    [
        (step(), rows(2300), 5.0, "p99 latency of POST chat is 2300 ms > max 2000 ms"),
        (step(), rows(150, failures=6), 5.0, "error rate 1.20% (6/500) > max 1.00%"),
        (step(), rows(150, ttft=900), 5.0, "p99 time to first token"),
        (step(), rows(150), 1500.0, "requests left 1500 ms late"),
        (step(sent=300), rows(150), 5.0, "only 300 requests sent of 500 due"),
        (step(unfinished=3), rows(150), 5.0, "3 request(s) still unanswered"),
    ],
)
def test_a_step_breaks_and_says_why(result: knee.StepResult, stats: Any, lag: float, why: str) -> None:
    judged = knee.judge_step(result, stats, lag, CRITERIA)
    assert not judged.held and any(why in v for v in judged.violations), judged.violations


def test_poisson_shortfalls_within_chance_do_not_break_a_step() -> None:
    assert knee.judge_step(step(rate=20, duration=5, sent=89), rows(150), 5.0, CRITERIA).held


def test_fallback_share_can_be_part_of_the_slo() -> None:
    criteria = knee.Criteria(slo.Thresholds(max_error_rate=0.01), max_fallback_share=0.1)
    judged = knee.judge_step(step(fallback_share=0.25), rows(150), None, criteria)
    assert judged.violations == ["fallback share 25.0% > max 10.0%"]


def test_untag_keeps_one_steps_rows() -> None:
    tagged = [
        slo.StatsRow("POST", "chat @50rps", 3, 0),
        slo.StatsRow("FALLBACK", "chat -> b @50rps", 1, 0),
        slo.StatsRow("POST", "chat @5rps", 9, 0),
        slo.StatsRow("POST", "chat @warmup", 9, 0),
    ]
    assert [(r.type, r.name) for r in knee.untag(tagged, "50rps")] == [
        ("POST", "chat"),
        ("FALLBACK", "chat -> b"),
    ]


# -- the router's figures ---------------------------------------------------------------------
BEFORE = """\
turnout_requests_total{route="chat",model="a",outcome="success"} 10
turnout_cost_usd_total{route="chat",model="a"} 0.5
"""
AFTER = """\
# TYPE turnout_requests_total counter
turnout_requests_total{route="chat",model="a",outcome="success"} 40
turnout_requests_total{route="chat",model="b",outcome="success"} 10
turnout_requests_total{route="chat",model="none",outcome="error"} 2
turnout_requests_total{route="other",model="a",outcome="success"} 99
turnout_fallbacks_total{route="chat",from_model="a",to_model="b"} 12
turnout_cost_usd_total{route="chat",model="a"} 0.8
turnout_cost_usd_total{route="chat",model="b"} 0.1
turnout_breaker_state{model="a"} 0
"""


def test_router_figures_are_the_counters_differences_for_the_route() -> None:
    figures = RouterFigures.between(parse_metrics(BEFORE), parse_metrics(AFTER), "chat")
    assert figures.served == {"a": 30, "b": 10} and figures.failed == 2
    assert figures.spill == {"a -> b": 12}
    assert figures.cost_usd == pytest.approx(0.4)


# -- options ----------------------------------------------------------------------------------
def parse(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="http://127.0.0.1:8200/v1")
    parser.add_argument("--model", default="chat")
    slo.add_arguments(parser, prefix="slo-")
    sweep_options.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_options_validate_into_a_config() -> None:
    config = sweep_options.validate(
        parse("--slo-max-error-rate", "0.01", "--start", "600rpm", "--step", "x2", "--require", "40rps")
    )
    assert (config.start, config.step, config.require) == (10.0, ("x", 2.0), 40.0)
    assert config.metrics == ("http://127.0.0.1:8200/metrics",) and config.route == "chat"
    assert config.arrivals == "poisson" and config.step_time == 10.0


@pytest.mark.parametrize(
    ("argv", "why"),
    [
        ((), "no SLO given"),
        (("--slo-p99-ms", "100", "--arrivals", "bursty"), "--arrivals"),
        (("--slo-p99-ms", "100", "--step-time", "soon"), "--step-time"),
        (("--slo-p99-ms", "100", "--start", "50", "--max", "10"), "--start"),
        (("--slo-p99-ms", "100", "--require", "lots"), "--require"),
        (("--slo-p99-ms", "100", "--metrics", "ftp://x/metrics"), "--metrics"),
        (("--slo-p99-ms", "100", "--min-users", "9", "--max-users", "3"), "--max-users"),
        (("--slo-p99-ms", "100", "--slo-max-fallback-share", "much"), "--slo-max-fallback-share"),
    ],
)
def test_bad_options_are_named(argv: tuple[str, ...], why: str) -> None:
    with pytest.raises((sweep_options.OptionError, knee.SearchError), match=why):
        sweep_options.validate(parse(*argv))


# -- reports ----------------------------------------------------------------------------------
def test_reports_show_the_knee_shares_spill_and_cost(tmp_path: Path) -> None:
    config = sweep_options.validate(parse("--slo-p99-ms", "2000", "--require", "60", "--out", str(tmp_path)))
    search = knee.KneeSearch(start=20, step=("+", 20), max=100)
    steps = []
    for i, (rate, p99) in enumerate([(20, 150.0), (40, 180.0), (60, 2500.0)], start=1):
        result = step(index=i, rate=rate, tag=f"{rate}rps", sent=rate * 10, achieved=rate * 0.99)
        result.latency_ms = {"p50": 100.0, "p99": p99}
        result.deployments = {"a": rate * 8, "b": rate * 2}
        result.spill = {"a -> b": rate * 2}
        result.cost_usd, result.cost_per_hour = 0.01, rate * 0.1
        result.fallback_share = 0.2
        knee.judge_step(result, rows(p99), 5.0, config.criteria)
        search.record(rate, result.held)
        steps.append(result)
    summary = sweep_report.summarize(
        steps=steps, search=search, config=config, host="http://h/v1", mode="local", started=0.0
    )
    assert summary["knee"]["held"] == 40 and summary["knee"]["broken"] == 60
    assert summary["passed"] is False  # the knee (40) is below --require 60
    assert summary["knee"]["cost_per_hour"] == pytest.approx(4.0)
    paths = sweep_report.write(summary, tmp_path)
    data = json.loads(paths[0].read_text())
    assert data["steps"][1]["deployments"] == {"a": 320, "b": 80}
    md = paths[1].read_text()
    assert "knee: 40 req/s held; 60 req/s broke: p99 latency of POST chat is 2500 ms" in md
    assert "| 40 | 39.6 |" in md and "a 80%, b 20%" in md and "a -> b: 80" in md
    html = paths[2].read_text()
    assert html.count("<svg") == 1 and "poisson arrivals" in html and "require 60 req/s: FAIL" in html
