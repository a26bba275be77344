"""The machine-readable reports: the JSON journal and JUnit XML, and the Markdown summary."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from typing import Any

from chaos.drill.report.summary import (
    attempt_counts,
    cascade_savings,
    continuation_line,
    fault_counts,
    fmt_pct,
    fmt_s,
    outcome_counts,
    phase_stats,
)
from chaos.drill.runner import DrillResult
from router.budget import usd

FORMAT = "turnout-drill-journal/1"
_SECRETISH = ("key", "token", "secret", "password", "authorization")


def _scrub(node: Any, secret: bool = False) -> Any:
    if isinstance(node, dict):
        return {k: _scrub(v, secret or any(w in str(k).lower() for w in _SECRETISH)) for k, v in node.items()}
    if isinstance(node, list):
        return [_scrub(v, secret) for v in node]
    return "***" if secret and isinstance(node, str) else node


def iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="seconds")


def journal(result: DrillResult) -> dict[str, Any]:
    """Everything about the run: enough to read what happened and to replay it (same seed)."""
    spec, obs = result.drill.spec, result.obs
    return {
        "format": FORMAT,
        "drill": {
            "name": spec.name,
            "description": spec.description,
            "source": result.drill.source,
            "quick": spec.quick,
        },
        "verdict": "pass" if result.passed else "fail",
        "seed": result.seed,
        "mode": result.mode,
        "started_at": iso(result.started_at),
        "duration_s": round(obs.duration, 6),
        "versions": result.versions,
        "chaos": result.drill.scenario.model_copy(update={"seed": result.seed}).to_dict(),
        "router": _scrub(result.router_config),
        "traffic": spec.traffic.model_dump(mode="json"),
        "hypothesis": spec.hypothesis.model_dump(mode="json", exclude_none=True),
        "phases": {k: [round(a, 6), round(b, 6)] for k, (a, b) in obs.phases.items()},
        "windows": {k: list(v) for k, v in obs.windows.items()},
        "totals": obs.totals,
        "checks": [c.to_dict() for c in result.results],
        "breaker_events": [asdict(e) for e in obs.breaker_events],
        "requests": [r.to_dict() for r in obs.requests],
        "untagged_upstream": [asdict(u) for u in obs.untagged],
    }


def write_json(result: DrillResult) -> str:
    return json.dumps(journal(result), indent=1, default=str) + "\n"


def _suite(result: DrillResult) -> ET.Element:
    failures = sum(not c.passed for c in result.results)
    suite = ET.Element(
        "testsuite",
        name=f"drill.{result.name}",
        tests=str(len(result.results)),
        failures=str(failures),
        errors="0",
        skipped="0",
        time=f"{result.obs.duration:.3f}",
        timestamp=iso(result.started_at),
    )
    props = ET.SubElement(suite, "properties")
    for k, v in (("seed", result.seed), ("mode", result.mode), ("source", result.drill.source)):
        ET.SubElement(props, "property", name=k, value=str(v))
    for c in result.results:
        case = ET.SubElement(
            suite, "testcase", classname=f"drill.{result.name}", name=f"{c.name} [{c.phase}]"
        )
        case.set("time", "0")
        if not c.passed:
            failure = ET.SubElement(
                case,
                "failure",
                message=f"{c.name} [{c.phase}]: observed {c.observed}, expected {c.expected}",
                type="HypothesisFailed",
            )
            failure.text = c.message or f"observed {c.observed}, expected {c.expected}"
    return suite


def write_junit(results: Sequence[DrillResult]) -> str:
    """JUnit XML: one testsuite per drill, one testcase per check and phase."""
    root = ET.Element("testsuites", name="turnout drills")
    root.set("tests", str(sum(len(r.results) for r in results)))
    root.set("failures", str(sum(not c.passed for r in results for c in r.results)))
    root.set("time", f"{sum(r.obs.duration for r in results):.3f}")
    for r in results:
        root.append(_suite(r))
    ET.indent(root)
    return '<?xml version="1.0" encoding="UTF-8"?>\n' + ET.tostring(root, encoding="unicode") + "\n"


def _cell(text: object) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ")


def _table(head: Sequence[str], rows: Sequence[Sequence[object]]) -> list[str]:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(_cell(c) for c in row) + " |" for row in rows]
    return lines


def verdict_line(result: DrillResult) -> str:
    """The drill's last line: its name, PASSED or FAILED, and the checks that failed."""
    failed = [f"{c.name} [{c.phase}]" for c in result.results if not c.passed]
    held = len(result.results) - len(failed)
    verdict = "PASSED" if not failed else "FAILED"
    line = f"Drill {result.name}: {verdict}, {held} of {len(result.results)} checks hold"
    return line + (f"; failed: {', '.join(failed)}" if failed else "")


def write_markdown(result: DrillResult, report: str | None = None) -> str:
    """A summary a person reads in a terminal or a CI job page."""
    spec, obs = result.drill.spec, result.obs
    verdict = "PASSED" if result.passed else "FAILED"
    out = [f"# Drill `{spec.name}`: {verdict}", ""]
    if spec.description:
        out += [f"> {' '.join(spec.description.split())}", ""]
    meta = f"seed {result.seed} · mode {result.mode} · {obs.duration:.1f} s · {len(obs.requests)} requests"
    out += [meta + (f" · report: {report}" if report else ""), ""]
    out += _table(
        ["check", "phase", "result", "observed", "expected", "note"],
        [
            (c.name, c.phase, "pass" if c.passed else "**FAIL**", c.observed, c.expected, c.message)
            for c in result.results
        ],
    )
    out += ["", "## Traffic by phase", ""]
    out += _table(
        ["phase", "window", "requests", "success", "p50", "p95", "fallback"],
        [
            (
                s.name,
                f"{s.start:.1f}-{s.end:.1f} s",
                s.requests,
                fmt_pct(s.success),
                fmt_s(s.p50),
                fmt_s(s.p95),
                fmt_pct(s.fallback),
            )
            for s in phase_stats(obs)
        ],
    )
    outcomes = ", ".join(f"{k}: {v}" for k, v in sorted(outcome_counts(obs).items()))
    out += ["", f"Outcomes: {outcomes}.", ""]
    savings = cascade_savings(obs)
    if savings is not None:
        n, saved = savings
        out += [f"Cascade savings: {usd(saved)} over {n} cascaded requests, against always their top tier."]
        out += [""]
    continued = continuation_line(obs)
    if continued is not None:
        out += [f"{continued}.", ""]
    faults = fault_counts(obs)
    if faults:
        out += ["## Faults injected", "", *_table(["rule", "fault", "upstream requests"], faults), ""]
    attempts = attempt_counts(obs)
    if attempts:
        kinds = ["success", "error", "skipped", "cancelled"]
        out += ["## Attempts by deployment", ""]
        out += _table(["deployment", *kinds], [(m, *(c[k] for k in kinds)) for m, c in attempts.items()])
        out += [""]
    return "\n".join(out)
