"""The report writers: JUnit XML that parses, a self-contained HTML page, a Markdown table."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest
from drill_helpers import attempt, drill_data, obs, req, up

from chaos.drill.record import BreakerEvent
from chaos.drill.report import write_reports
from chaos.drill.report.writers import verdict_line, write_junit, write_markdown
from chaos.drill.runner import DrillResult, judge
from chaos.drill.spec import parse_drill


def result(fail: bool = False) -> DrillResult:
    checks = [
        {"check": "success_rate", "min": 0.99, "phases": ["before", "during"]},
        {"check": "nothing_lost"},
    ]
    drill = parse_drill(drill_data(name="synthetic", hypothesis={"checks": checks}), "synthetic.yaml")
    requests = [
        req(
            i, start=i * 0.2, latency=0.05 + 0.01 * (i % 5), winner="gpt-4o-mini" if i % 3 else "claude-haiku"
        )
        for i in range(30)
    ]
    for r in requests:
        r.attempts = [attempt(r.winner or "gpt-4o-mini")]
        r.upstream = [
            up(r.id, r.start, fault="openai-503" if r.id % 7 == 0 else None, fault_kind="server_error")
        ]
        r.stream, r.ttft = r.id % 2 == 0, 0.02
    if fail:
        requests[12].outcome = "error"  # a failure | with a pipe in its message
        requests[12].message = "boom | bang"
    n = len(requests)
    o = obs(
        requests,
        duration=6.0,
        phases={"before": (0.0, 2.0), "during": (2.0, 4.0), "after": (4.0, 6.0)},
        breaker_events=[BreakerEvent(2.1, "gpt-4o-mini", "closed", "open")],
        totals={"requests": n, "audit attempts": n, "drill tap": n, "mock journal": n, "chaos journal": n},
        windows={"openai-503": (2.0, 4.0)},
        faults_span=(2.0, 4.0),
    )
    return DrillResult(
        drill,
        11,
        "library",
        o,
        judge(drill, o),
        started_at=1_700_000_000.0,
        versions={"turnout": "0"},
        router_config=drill.router_config_data("http://127.0.0.1:1"),
    )


def test_junit_xml_has_one_suite_per_drill_and_one_case_per_check(tmp_path: Path) -> None:
    good, bad = result(), result(fail=True)
    root = ET.fromstring(write_junit([good, bad]))
    assert root.tag == "testsuites" and root.get("tests") == "6" and root.get("failures") == "1"
    suites = root.findall("testsuite")
    assert [s.get("name") for s in suites] == ["drill.synthetic", "drill.synthetic"]
    cases = suites[1].findall("testcase")
    assert [c.get("name") for c in cases] == [
        "success_rate [before]",
        "success_rate [during]",
        "nothing_lost [all]",
    ]
    failure = cases[1].find("failure")
    assert failure is not None and "observed 90.00%, expected >= 99.00%" in (failure.get("message") or "")
    assert cases[0].find("failure") is None
    props = {p.get("name"): p.get("value") for p in suites[0].iter("property")}
    assert props["seed"] == "11" and props["mode"] == "library"


def test_markdown_summary_is_a_table_of_checks() -> None:
    text = write_markdown(result(fail=True), "out/report.html")
    lines = text.splitlines()
    assert lines[0] == "# Drill `synthetic`: FAILED"
    assert "| check | phase | result | observed | expected | note |" in lines
    assert "| success_rate | during | **FAIL** | 90.00% | >= 99.00% | 1 failed (first: [12]) |" in lines
    assert any(line.startswith("| openai-503 | server_error |") for line in lines)
    assert "report: out/report.html" in text


def test_all_four_reports_are_written(tmp_path: Path) -> None:
    paths = write_reports(result(), tmp_path / "synthetic")
    assert sorted(p.name for p in paths.values()) == [
        "journal.json",
        "junit.xml",
        "report.html",
        "summary.md",
    ]
    page = paths["html"].read_text(encoding="utf-8")
    assert page.count("<svg") == 2  # the timeline and the latency distributions, inline
    assert 'id="timeline"' in page and 'id="latency"' in page
    assert '<table class="checks">' in page and "<td>nothing_lost</td>" in page
    assert "PASSED" in page and "<script" not in page and "http://" not in page.split("<svg", 1)[0]
    data = json.loads(paths["journal"].read_text(encoding="utf-8"))
    assert data["verdict"] == "pass" and data["seed"] == 11 and len(data["requests"]) == 30
    assert data["router"]["providers"]["openai"]["api_key"] == "***"  # keys never reach a report
    assert data["checks"][0]["name"] == "success_rate"
    assert data["requests"][0]["upstream"][0]["fault"] == "openai-503"


def test_plots_are_deterministic() -> None:
    from chaos.drill.report import plots

    r = result()
    assert plots.latency_distribution(r.obs) == plots.latency_distribution(r.obs)


def test_plots_of_an_empty_drill() -> None:
    from chaos.drill.report import plots

    assert plots.timeline(obs([])).startswith("<svg")
    assert "no data" in plots.latency_distribution(obs([]))


def test_the_verdict_line_names_what_failed() -> None:
    assert verdict_line(result()) == "Drill synthetic: PASSED, 3 of 3 checks hold"
    assert verdict_line(result(fail=True)) == (
        "Drill synthetic: FAILED, 2 of 3 checks hold; failed: success_rate [during]"
    )


def test_a_phase_that_never_happened_gets_no_row() -> None:
    """Before: a drill whose faults start at once printed `| before | 0.0-0.0 s | 0 | n/a |`."""
    r = result()
    r.obs.phases = {"before": (0.0, 0.0), "during": (0.0, 6.0), "after": (6.0, 6.0)}
    text = write_markdown(r)
    assert "| before | 0.0-0.0 s |" not in text and "| after | 6.0-6.0 s |" not in text
    assert "| during | 0.0-6.0 s | 30 |" in text


def test_a_timed_drill_progress_bar_shows_seconds_not_a_rate(capsys: pytest.CaptureFixture[str]) -> None:
    from chaos.drill.runner import _Tqdm

    drill = parse_drill(drill_data(traffic={"duration": 10, "concurrency": 2, "routes": {"chat": 1}}))
    bar = _Tqdm(drill)
    for i in range(1, 40):
        bar.done(req(i, start=i * 0.2), elapsed=i * 0.2)
        bar.bar.refresh()
    bar.close()
    err = capsys.readouterr().err
    assert "8 of 10 s" in err and "failed=0" in err
    assert "s/s" not in err and "?" not in err and "<" not in err  # no rate, no extrapolated ETA


def test_the_summary_counts_continued_streams() -> None:
    from chaos.drill.report.summary import continuation_line

    plain, continued, failed = req(1), req(2), req(3, outcome="error")
    plain.attempts = [attempt("claude-haiku")]
    continued.attempts = [attempt("claude-haiku", "error"), attempt("claude-haiku")]
    continued.attempts[1].continued_from = 40
    continued.complete = True
    failed.attempts = [attempt("claude-haiku", "error"), attempt("claude-spare", "error")]
    failed.attempts[1].continued_from = 12
    assert continuation_line(obs([plain])) is None
    line = continuation_line(obs([plain, continued, failed]))
    assert line is not None
    assert line.startswith("Continued streams: 2 (1 answered, 1 of them checked whole")
    assert line.endswith("median 40, max 40")


def test_time_references_read_as_words() -> None:
    """Before: `within 1.00 s of faults.start`, jargon from the drill file."""
    from chaos.drill.timeref import TimeRef

    assert TimeRef.parse("faults.start").describe() == "the first fault"
    assert TimeRef.parse("faults.end + 2s").describe() == "the end of the faults (recovery) + 2 s"
    assert TimeRef.parse("rule:flap.start").describe() == "rule flap's start"
    assert TimeRef.parse("3s").describe() == "3 s into the drill"


def test_the_routes_panel_labels_breaker_moves_in_a_legend_above_the_bars() -> None:
    from chaos.drill.report import plots

    r = result()
    r.obs.breaker_events = [
        BreakerEvent(2.1, "gpt-4o-mini", "closed", "open"),
        BreakerEvent(3.1, "gpt-4o-mini", "open", "half_open"),
        BreakerEvent(3.2, "gpt-4o-mini", "half_open", "closed"),
        BreakerEvent(4.5, "gpt-4o-mini", "closed", "open"),
    ]
    svg = plots.timeline(r.obs)
    for words in ("breaker opened", "breaker half-open (probe)", "breaker closed"):
        assert svg.count(words) == 1  # each state once in the legend, however many moves
