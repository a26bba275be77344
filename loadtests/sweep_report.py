"""The capacity sweep's reports: ``sweep.json``, ``sweep.md`` and ``sweep.html`` (plots inline, SVG).

The plots, against the offered load: achieved vs offered throughput; latency and time-to-first-
token percentiles; fallback share and cost per hour (the router's own prices). The knee is
marked on each. Pure Python with matplotlib (Agg, no pyplot state), no Locust.
"""

from __future__ import annotations

import html
import io
import json
import os
import platform
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from loadtests.knee import KneeSearch, StepResult

__all__ = ["plots", "render_html", "render_markdown", "summarize", "verdict_lines", "write"]

_RC: Any = {
    "svg.hashsalt": "turnout-sweep",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}
_HELD, _BROKE = "#2ca02c", "#d62728"
MACHINE_NOTE = (
    "Figures are from the machine the sweep ran on, with the load generator, the sidecar and the "
    "mock sharing its cores: they measure this setup, not a provider."
)


def summarize(
    *, steps: Sequence[StepResult], search: KneeSearch, config: Any, host: str, mode: str, started: float
) -> dict[str, Any]:
    """Everything the reports show, as plain data (what ``sweep.json`` holds)."""
    held, broken = search.held, search.broken
    first_broken = next((s for s in steps if s.rate == broken), None)
    require = config.require
    knee_rate = held or 0.0
    passed = require is None or knee_rate >= require
    held_step = next((s for s in steps if s.rate == held), None)
    return {
        "title": config.title,
        "started": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(started)),
        "elapsed_s": round(time.time() - started, 1),
        "command": os.environ.get("TURNOUT_SWEEP_COMMAND") or " ".join(sys.argv),
        "python": platform.python_version(),
        "host": host,
        "mode": mode,
        "load": f"open loop, {config.arrivals} arrivals (requests due at the offered rate whatever "
        "the answers do; a pool of Locust users sends them, and the wait for a free user is measured)",
        "config": config.as_dict(),
        "knee": {
            "outcome": search.outcome(),
            "held": held,
            "broken": broken,
            "why": first_broken.violations if first_broken else [],
            "cost_per_hour": held_step.cost_per_hour if held_step else None,
            "deployments": held_step.deployments if held_step else {},
        },
        "require": require,
        "passed": passed,
        "note": MACHINE_NOTE,
        "steps": [s.as_dict() for s in sorted(steps, key=lambda s: s.rate)],
        "order": [s.rate for s in steps],
    }


def verdict_lines(summary: dict[str, Any]) -> list[str]:
    k = summary["knee"]
    lines = []
    if k["outcome"] == "found":
        lines.append(f"knee: {k['held']:g} req/s held; {k['broken']:g} req/s broke: " + "; ".join(k["why"]))
    elif k["outcome"] == "above-max":
        lines.append(f"knee: every step held, up to {k['held']:g} req/s (raise --max to look further)")
    elif k["outcome"] == "out-of-steps":
        lines.append(f"knee: at least {k['held']:g} req/s; --max-steps ran out before a step broke")
    else:
        lines.append(
            f"knee: below {k['broken']:g} req/s, the lowest step tried broke: " + "; ".join(k["why"])
        )
    if k["cost_per_hour"] is not None:
        lines.append(f"cost at the knee: ${k['cost_per_hour']:.4f}/hour by the router's prices")
    if summary["require"] is not None:
        verdict = "PASS" if summary["passed"] else "FAIL"
        lines.append(f"require {summary['require']:g} req/s: {verdict}")
    return lines


def _nan(value: float | None) -> float:
    return float("nan") if value is None else float(value)


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def plots(summary: dict[str, Any]) -> str:
    """Three panels against the offered load, as one SVG."""
    import matplotlib
    from matplotlib.figure import Figure

    steps = summary["steps"]
    xs = [s["rate"] for s in steps]
    colors = [_HELD if s["held"] else _BROKE for s in steps]
    knee = summary["knee"]["held"]
    with matplotlib.rc_context(_RC):
        fig = Figure(figsize=(10, 9))
        fig.subplots_adjust(left=0.09, right=0.9, top=0.96, bottom=0.06, hspace=0.38)
        ax_t, ax_l, ax_c = fig.subplots(3, 1, sharex=True)
        top = max(xs, default=1.0) * 1.05
        ax_t.plot([0, top], [0, top], color="#999999", lw=0.8, ls="--", label="achieved = offered")
        ax_t.scatter(
            xs, [s["achieved"] for s in steps], c=colors, zorder=3, label="achieved (answered OK /s)"
        )
        ax_t.set_ylabel("requests/s")
        ax_t.set_title("achieved vs offered throughput (green held the SLO, red broke it)")
        ax_t.legend(loc="upper left", frameon=False)
        for key, style in (("p50", ":"), ("p99", "-")):
            ax_l.plot(
                xs,
                [_nan(s["latency_ms"].get(key)) for s in steps],
                ls=style,
                marker="o",
                color="#1f77b4",
                label=f"latency {key}",
            )
            ax_l.plot(
                xs,
                [_nan(s["ttft_ms"].get(key)) for s in steps],
                ls=style,
                marker="s",
                color="#9467bd",
                label=f"TTFT {key}",
            )
        slo_cfg = summary["config"]["slo"]
        for name, value in {
            **slo_cfg["latency_ms"],
            **{f"TTFT {k}": v for k, v in slo_cfg["ttft_ms"].items()},
        }.items():
            ax_l.axhline(value, color=_BROKE, lw=0.7, ls="--")
            ax_l.annotate(
                f"SLO {name}", (1.0, value), xycoords=("axes fraction", "data"), fontsize=7, color=_BROKE,
                va="center", xytext=(4, 0), textcoords="offset points",
            )  # fmt: skip
        ax_l.set_ylabel("milliseconds (log)")
        ax_l.set_yscale("log")
        ax_l.set_ylim(bottom=1)
        ax_l.set_title("latency and time to first token vs offered load")
        ax_l.legend(loc="lower right", frameon=False, ncol=2)
        ax_c.bar(
            xs,
            [s["fallback_share"] * 100 for s in steps],
            width=top / 60,
            color="#ff7f0e",
            alpha=0.7,
            label="fallback share %",
        )
        ax_c.set_ylabel("fallback share %")
        ax_c.set_ylim(0, 100)
        ax_c.set_xlabel("offered load (requests/s)")
        ax_c.set_title("spill to fallbacks and cost per hour (router's prices) vs offered load")
        ax_cost = ax_c.twinx()
        costs = [_nan(s["cost_per_hour"]) for s in steps]
        ax_cost.plot(xs, costs, marker="o", color="#8c564b", label="cost $/hour")
        ax_cost.set_ylabel("$ / hour")
        ax_cost.set_ylim(bottom=0)
        ax_c.legend(loc="upper left", frameon=False)
        ax_cost.legend(loc="lower right", frameon=False)
        for ax in (ax_t, ax_l, ax_c):
            if knee:
                ax.axvline(knee, color=_HELD, lw=1, alpha=0.6)
            ax.set_xlim(0, top)
        return _svg(fig)


def _fmt(value: Any, spec: str = "g") -> str:
    return "-" if value is None else format(value, spec)


def _step_rows(summary: dict[str, Any]) -> list[list[str]]:
    rows = []
    for s in summary["steps"]:
        served = sum(s["deployments"].values())
        shares = (
            ", ".join(f"{m} {n / served:.0%}" for m, n in sorted(s["deployments"].items())) if served else "-"
        )
        spill = ", ".join(f"{hop}: {n}" for hop, n in sorted(s["spill"].items())) or "-"
        rows.append(
            [
                f"{s['rate']:g}",
                f"{s['achieved']:.1f}",
                f"{s['error_rate']:.2%}",
                _fmt(s["latency_ms"].get("p50")),
                _fmt(s["latency_ms"].get("p99")),
                _fmt(s["ttft_ms"].get("p99")),
                _fmt(s["lag_ms"].get("p99")),
                f"{s['fallback_share']:.1%}",
                shares,
                spill,
                _fmt(s["cost_per_hour"], ".4f"),
                "held" if s["held"] else "BROKE: " + "; ".join(s["violations"]),
            ]
        )
    return rows


_HEAD = [
    "offered/s",
    "achieved/s",
    "errors",
    "p50 ms",
    "p99 ms",
    "TTFT p99 ms",
    "lag p99 ms",
    "fallback",
    "served by (router)",
    "spill (router)",
    "$/hour",
    "verdict",
]


def render_markdown(summary: dict[str, Any]) -> str:
    lines = [f"# {summary['title']}", ""]
    lines += [f"- {line}" for line in verdict_lines(summary)]
    lines += [
        f"- target: `{summary['host']}`, route `{summary['config']['route']}`; {summary['mode']}",
        f"- load: {summary['load']}",
        f"- steps: {summary['config']['step_time_s']:g} s measured after {summary['config']['warmup_s']:g} s "
        f"of warm-up; tried in this order: {', '.join(f'{r:g}' for r in summary['order'])} req/s",
        f"- started {summary['started']}, took {summary['elapsed_s']:g} s; `{summary['command']}`",
        f"- {summary['note']}",
        "",
        "| " + " | ".join(_HEAD) + " |",
        "|" + "---|" * len(_HEAD),
    ]
    lines += ["| " + " | ".join(c.replace("|", "/") for c in row) + " |" for row in _step_rows(summary)]
    return "\n".join(lines) + "\n"


_CSS = (
    "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
    "table{border-collapse:collapse;font-size:13px}"
    "td,th{border:1px solid #ccc;padding:3px 6px;text-align:right}"
    "td:last-child,td:nth-last-child(3),td:nth-last-child(4){text-align:left}"
    ".held{background:#eaf6ea}.broke{background:#fbeaea}.pass{color:#2ca02c}.fail{color:#d62728}"
)


def render_html(summary: dict[str, Any]) -> str:
    e = html.escape
    verdict = "pass" if summary["passed"] else "fail"
    items = "".join(f"<li>{e(line)}</li>" for line in verdict_lines(summary))
    facts = "".join(
        f"<li>{e(t)}</li>"
        for t in (
            f"target {summary['host']}, route {summary['config']['route']}; {summary['mode']}",
            f"load: {summary['load']}",
            f"steps of {summary['config']['step_time_s']:g} s after "
            f"{summary['config']['warmup_s']:g} s of warm-up; order tried: "
            + ", ".join(f"{r:g}" for r in summary["order"])
            + " req/s",
            f"started {summary['started']}, took {summary['elapsed_s']:g} s",
            summary["note"],
        )
    )
    head = "".join(f"<th>{e(h)}</th>" for h in _HEAD)
    body = "".join(
        f'<tr class="{"held" if s["held"] else "broke"}">'
        + "".join(f"<td>{e(c)}</td>" for c in row)
        + "</tr>"
        for s, row in zip(summary["steps"], _step_rows(summary), strict=True)
    )
    return (
        f"<!doctype html><html><head><meta charset='utf-8'><title>{e(summary['title'])}</title>"
        f"<style>{_CSS}</style></head><body><h1>{e(summary['title'])}</h1>"
        f"<ul class='{verdict}'>{items}</ul><ul>{facts}</ul>{plots(summary)}"
        f"<h2>Steps</h2><table><tr>{head}</tr>{body}</table>"
        f"<p><code>{e(summary['command'])}</code></p></body></html>\n"
    )


def write(summary: dict[str, Any], out: Path) -> list[Path]:
    """Write the three reports into ``out``; returns their paths."""
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "sweep.json", out / "sweep.md", out / "sweep.html"]
    paths[0].write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    paths[1].write_text(render_markdown(summary), encoding="utf-8")
    paths[2].write_text(render_html(summary), encoding="utf-8")
    return paths
