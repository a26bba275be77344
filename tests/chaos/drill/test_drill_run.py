"""Real drills, end to end: the mock, the router (in process and as a sidecar), traffic, verdict.

Each runs a couple of dozen requests on loopback in a second or two; nothing here asserts a time.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from drill_helpers import drill_data

from chaos.drill.runner import DrillResult, run_drill
from chaos.drill.spec import parse_drill
from turnout.cli import main

CUTS = {"name": "cuts", "fault": "cut", "params": {"after_tokens": 3}, "when": {"probability": 0.3}}


def _fingerprint(result: DrillResult) -> list[Any]:
    """What must replay exactly for a seed: requests, their faults and outcomes, not their timings."""
    return [
        (
            r.id,
            r.route,
            r.stream,
            r.prompt,
            r.outcome,
            r.error_kind,
            r.winner,
            r.text,
            [(u.provider, u.model, u.fault, u.status, u.aborted, u.terminated) for u in r.upstream],
            [(a.model, a.outcome, a.error_kind) for a in r.attempts],
        )
        for r in result.obs.requests
    ]


async def test_library_drill_joins_router_and_mock() -> None:
    result = await run_drill(parse_drill(drill_data()))
    assert result.passed, [c for c in result.results if not c.passed]
    reqs = result.obs.requests
    assert [r.id for r in reqs] == list(range(24))
    assert all(r.audited and r.outcome == "success" for r in reqs)
    faulted = [r for r in reqs if any(u.fault == "openai-503" for u in r.upstream)]
    assert faulted  # the chaos rule fired, and the mock's view is joined to the request
    assert all(r.upstream[0].status == 503 for r in faulted)
    assert any(r.fallback and r.winner == "claude-haiku" for r in reqs)
    assert all(r.complete for r in reqs)  # every answer is the whole of what the mock sent
    assert {r.stream for r in reqs} == {True, False}
    assert all(r.ttft is not None for r in reqs if r.stream)
    totals = result.obs.totals
    assert (
        totals["drill tap"] == totals["mock journal"] == totals["chaos journal"] == totals["audit attempts"]
    )


async def test_sidecar_drill_over_http() -> None:
    # Concurrent requests reach the mock in no fixed order, so a probability rule may spare them
    # all; the first three OpenAI calls fail instead, and without retries each one falls back.
    first_three = {**drill_data()["chaos"]["rules"][0], "when": {"first": 3}}
    data = drill_data(
        chaos={"rules": [first_three]},
        traffic={"requests": 16, "concurrency": 4, "stream_share": 0.5, "routes": {"chat": 1}},
    )
    data["router"]["overrides"]["defaults"]["retries"] = 0
    result = await run_drill(parse_drill(data), mode="sidecar")
    assert result.mode == "sidecar"
    assert result.passed, [c for c in result.results if not c.passed]
    reqs = result.obs.requests
    assert all(r.audited and r.request_id for r in reqs)  # joined by the sidecar's x-request-id
    assert all(r.complete for r in reqs)
    assert any(r.fallback for r in reqs)


async def test_stream_cuts_fail_honestly_never_as_truncated_success() -> None:
    data = drill_data(
        chaos={"rules": [CUTS]},
        traffic={"requests": 20, "concurrency": 2, "stream_share": 1.0, "routes": {"chat": 1}},
        hypothesis={"checks": [{"check": "no_truncated_success"}, {"check": "nothing_lost"}]},
    )
    result = await run_drill(parse_drill(data))
    assert result.passed
    cut = [r for r in result.obs.requests if any(u.fault == "cuts" for u in r.upstream)]
    assert cut and all(r.outcome in ("success", "error") for r in cut)
    assert all(r.error_kind == "stream_cut" for r in cut if r.outcome == "error")


async def test_the_same_seed_replays_the_same_requests_faults_and_outcomes() -> None:
    rules = [drill_data()["chaos"]["rules"][0], CUTS]
    data = drill_data(
        chaos={"rules": rules},
        traffic={
            "requests": 16,
            "concurrency": 1,
            "stream_share": 0.5,
            "routes": {"chat": 2, "summarize": 1},
        },
    )
    drill = parse_drill(data)
    first, second = await run_drill(drill, seed=5), await run_drill(drill, seed=5)
    assert _fingerprint(first) == _fingerprint(second)
    assert any(u.fault for r in first.obs.requests for u in r.upstream)
    other = await run_drill(drill, seed=6)
    assert _fingerprint(other) != _fingerprint(first)


def test_cli_writes_reports_and_exits_0(
    write_drill: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = write_drill(drill_data(traffic={"requests": 8, "concurrency": 2, "routes": {"chat": 1}}))
    assert main(["drill", str(path), "--out", str(tmp_path / "out"), "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "# Drill `tiny`: PASSED" in out and f"Report: {tmp_path / 'out' / 'tiny' / 'report.html'}" in out
    assert out.strip().splitlines()[-1].startswith("Drill tiny: PASSED, ")  # the verdict comes last
    names = sorted(p.name for p in (tmp_path / "out" / "tiny").iterdir())
    assert names == ["journal.json", "junit.xml", "report.html", "summary.md"]


def test_cli_exits_1_when_a_hypothesis_fails(
    write_drill: Any, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    always = drill_data()["chaos"]
    always["rules"][0]["when"] = {"probability": 1.0}
    failing = drill_data(
        name="must-fail",
        chaos=always,
        traffic={"requests": 8, "concurrency": 2, "routes": {"chat": 1}},
        hypothesis={
            "checks": [{"check": "fallback_rate", "max": 0.0}, {"check": "success_rate", "min": 0.99}]
        },
    )
    passing = drill_data(traffic={"requests": 6, "concurrency": 2, "routes": {"chat": 1}})
    files = [str(write_drill(failing, "fail.yaml")), str(write_drill(passing, "pass.yaml"))]
    assert main(["drill", *files, "--out", str(tmp_path), "--seed", "3", "--no-progress"]) == 1
    out = capsys.readouterr().out
    assert "# Drill `must-fail`: FAILED" in out and "2 drills: 1 passed, 1 failed; failed: must-fail" in out
    root = ET.parse(tmp_path / "junit.xml").getroot()
    assert [s.get("name") for s in root.iter("testsuite")] == ["drill.must-fail", "drill.tiny"]
    assert root.get("failures") == "1"
    journal = json.loads((tmp_path / "must-fail" / "journal.json").read_text(encoding="utf-8"))
    assert journal["verdict"] == "fail" and journal["seed"] == 3


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("name: x\n", "invalid drill"),
        ("name: [\n", "not valid YAML"),
    ],
)
def test_cli_exits_2_on_invalid_input_without_a_traceback(
    write_drill: Any, capsys: pytest.CaptureFixture[str], text: str, expected: str
) -> None:
    path = write_drill(text)
    assert main(["drill", str(path)]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"turnout drill: {path}") and expected in err and "Traceback" not in err


def test_cli_quick_needs_a_quick_drill(write_drill: Any, capsys: pytest.CaptureFixture[str]) -> None:
    path = write_drill(drill_data())
    assert main(["drill", str(path), "--quick"]) == 2
    assert "no drill given is marked quick" in capsys.readouterr().err


async def test_a_drill_through_a_cascade_reports_what_it_saved() -> None:
    from chaos.drill.report.writers import write_markdown

    data = drill_data(
        name="cascade",
        chaos={"rules": []},
        traffic={"requests": 6, "concurrency": 2, "stream_share": 0.0, "routes": {"careful": 1}},
        hypothesis={"checks": [{"check": "success_rate", "min": 0.99}]},
    )
    data["router"]["overrides"]["patterns"] = {
        "careful": {"cascade": {"tiers": ["gpt-4o-mini", "claude-haiku"], "checks": [{"min_length": 1}]}}
    }
    data["router"]["overrides"]["models"] = {
        "gpt-4o-mini": {"prices": {"input": 0.15, "output": 0.6}},
        "claude-haiku": {"prices": {"input": 1.0, "output": 5.0}},
    }
    result = await run_drill(parse_drill(data), seed=1)
    saved = [r.saved_usd for r in result.obs.requests]
    assert len(saved) == 6 and all(s is not None and s > 0 for s in saved)
    text = write_markdown(result)
    assert "Cascade savings: $" in text and "over 6 cascaded requests" in text
