"""The HTML report: one self-contained file (inline CSS and SVG, no script, nothing fetched)."""

from __future__ import annotations

from html import escape

from chaos.drill.report import plots
from chaos.drill.report.summary import (
    attempt_counts,
    continuation_line,
    fault_counts,
    fmt_pct,
    fmt_s,
    outcome_counts,
    phase_stats,
)
from chaos.drill.report.writers import iso
from chaos.drill.runner import DrillResult

_CSS = """
body{font:14px/1.45 system-ui,-apple-system,Segoe UI,sans-serif;margin:2rem auto;max-width:1100px;
color:#222;padding:0 1rem}
h1{font-size:1.5rem;margin-bottom:.2rem}h2{font-size:1.15rem;margin-top:2rem;border-bottom:1px solid #ddd}
.badge{display:inline-block;padding:.15rem .6rem;border-radius:.3rem;color:#fff;font-weight:600;
font-size:.95rem;vertical-align:middle}
.pass{background:#2e7d32}.fail{background:#c62828}
.meta{color:#555}.desc{color:#444;max-width:70ch}
table{border-collapse:collapse;margin:.6rem 0;font-size:13px}
th,td{border:1px solid #ddd;padding:.3rem .55rem;text-align:left;vertical-align:top}
th{background:#f5f5f5}tr.failed td{background:#fdecea}td.num{text-align:right}
.plot svg{width:100%;height:auto}
code{background:#f3f3f3;padding:0 .25rem;border-radius:.2rem}
"""


def _table(head: list[str], rows: list[list[str]], classes: list[str] | None = None, cls: str = "") -> str:
    th = "".join(f"<th>{escape(h)}</th>" for h in head)
    body = []
    for i, row in enumerate(rows):
        rc = f' class="{classes[i]}"' if classes and classes[i] else ""
        body.append(f"<tr{rc}>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>")
    return f'<table class="{cls}"><thead><tr>{th}</tr></thead><tbody>{"".join(body)}</tbody></table>'


def render(result: DrillResult) -> str:
    """The whole report as one HTML document."""
    spec, obs = result.drill.spec, result.obs
    ok = result.passed
    badge = f'<span class="badge {"pass" if ok else "fail"}">{"PASSED" if ok else "FAILED"}</span>'
    failed = sum(not c.passed for c in result.results)
    meta = (
        f"seed <code>{result.seed}</code> · mode {escape(result.mode)} · started {iso(result.started_at)} · "
        f"{obs.duration:.1f} s · {len(obs.requests)} requests · "
        f"{len(result.results) - failed}/{len(result.results)} checks hold · "
        f"replay: <code>turnout drill {escape(result.drill.source)} --seed {result.seed}"
        f"{' --mode ' + escape(result.mode) if result.mode != spec.router.mode else ''}</code>"
    )
    checks = _table(
        ["check", "phase", "result", "observed", "expected", "note"],
        [
            [
                escape(c.name),
                escape(c.phase),
                "pass" if c.passed else "<b>FAIL</b>",
                escape(c.observed),
                escape(c.expected),
                escape(c.message),
            ]
            for c in result.results
        ],
        ["" if c.passed else "failed" for c in result.results],
        "checks",
    )
    phases = _table(
        ["phase", "window", "requests", "success", "p50", "p95", "fallback"],
        [
            [
                escape(s.name),
                f"{s.start:.1f}-{s.end:.1f} s",
                str(s.requests),
                fmt_pct(s.success),
                fmt_s(s.p50),
                fmt_s(s.p95),
                fmt_pct(s.fallback),
            ]
            for s in phase_stats(obs)
        ],
    )
    faults = fault_counts(obs)
    faults_html = (
        _table(["rule", "fault", "upstream requests"], [[escape(a), escape(b), str(n)] for a, b, n in faults])
        if faults
        else "<p>No fault was injected.</p>"
    )
    kinds = ["success", "error", "skipped", "cancelled"]
    attempts = _table(
        ["deployment", *kinds],
        [[escape(m)] + [str(c[k]) for k in kinds] for m, c in attempt_counts(obs).items()],
    )
    breakers = (
        _table(
            ["time", "deployment", "from", "to"],
            [[f"{e.t:.2f} s", escape(e.model), escape(e.old), escape(e.new)] for e in obs.breaker_events],
        )
        if obs.breaker_events
        else "<p>No breaker changed state.</p>"
    )
    outcomes = ", ".join(f"{escape(k)}: {v}" for k, v in sorted(outcome_counts(obs).items()))
    line = continuation_line(obs)
    continued = f"\n<p>{escape(line)}.</p>" if line is not None else ""
    desc = f'<p class="desc">{escape(" ".join(spec.description.split()))}</p>' if spec.description else ""
    totals = ", ".join(f"{escape(k)} {v}" for k, v in obs.totals.items())
    title = f"Drill {escape(spec.name)}: {'passed' if ok else 'FAILED'}"
    v = result.versions
    versions = f"turnout {escape(v.get('turnout', '?'))}, Python {escape(v.get('python', '?'))}"
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}</title>
<style>{_CSS}</style></head><body>
<h1>Drill <code>{escape(spec.name)}</code> {badge}</h1>
{desc}<p class="meta">{meta}</p>
<h2>Steady-state hypothesis</h2>
{checks}
<h2>Timeline</h2>
<div class="plot" id="timeline">{plots.timeline(obs)}</div>
<h2>Latency by deployment</h2>
<div class="plot" id="latency">{plots.latency_distribution(obs)}</div>
<h2>Traffic by phase</h2>
{phases}
<p>Outcomes: {outcomes}.</p>{continued}
<p>Counted by each side: {totals}.</p>
<h2>Faults injected</h2>
{faults_html}
<h2>Attempts by deployment</h2>
{attempts}
<h2>Circuit breakers</h2>
{breakers}
<p class="meta">{versions} · the JSON journal beside this file holds every request
with its attempts and faults.</p>
</body></html>
"""
