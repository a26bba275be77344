"""The report's plots, drawn with matplotlib (Agg, no pyplot state) and returned as inline SVG.

- :func:`timeline`: three panels sharing the time axis: the faults injected (one row per chaos
  rule, its window shaded), the routes taken (which deployment answered, per time bucket, and
  the failures), and every request's latency, with the breaker's openings and closings marked.
- :func:`latency_distribution`: per deployment, the distribution of latency (and of time to
  first token for streams) as empirical CDFs.

SVGs are deterministic for the same data (fixed hash salt, no date), so two reports of a
replayed drill differ only where the run did.
"""

from __future__ import annotations

import io
from collections import Counter
from typing import Any

from chaos.drill.record import Observations

_PALETTE = ("#1f77b4", "#2ca02c", "#9467bd", "#ff7f0e", "#17becf", "#8c564b", "#e377c2", "#7f7f7f")
_FAIL = "#d62728"
_RC: Any = {  # Any: matplotlib types rc keys as literals
    "svg.hashsalt": "turnout-drill",
    "svg.fonttype": "none",
    "font.size": 9,
    "axes.spines.top": False,
    "axes.spines.right": False,
}


def _colors(obs: Observations) -> dict[str, str]:
    models = sorted({r.winner for r in obs.requests if r.winner})
    return {m: _PALETTE[i % len(_PALETTE)] for i, m in enumerate(models)}


def _svg(fig: Any) -> str:
    buf = io.StringIO()
    fig.savefig(buf, format="svg", metadata={"Date": None})
    text = buf.getvalue()
    return text[text.index("<svg") :]


def _figure(height: float, rows: int, **kw: Any) -> tuple[Any, Any]:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, height))
    fig.subplots_adjust(left=0.16, right=0.98, top=0.95, bottom=0.08, hspace=0.35)
    axes = fig.subplots(rows, 1, squeeze=False, **kw)[:, 0]
    return fig, axes


def timeline(obs: Observations) -> str:
    """Faults injected, routes taken and latency over the drill's time, as one SVG."""
    import matplotlib

    with matplotlib.rc_context(_RC):
        fig, (ax_f, ax_r, ax_l) = _figure(8.5, 3, sharex=True, gridspec_kw={"height_ratios": [1.2, 1.4, 2]})
        fig.subplots_adjust(hspace=0.6)  # room for the routes panel's legend, between its title and bars
        end = max(obs.duration, 1e-3)
        _faults_panel(ax_f, obs)
        _routes_panel(ax_r, obs, end)
        _latency_panel(ax_l, obs)
        for ax in (ax_f, ax_r, ax_l):
            for name, (lo, hi) in obs.windows.items():
                ax.axvspan(lo or 0.0, hi if hi is not None else end, color="#d62728", alpha=0.06, lw=0)
                del name
        ax_l.set_xlim(0, end)
        ax_l.set_xlabel("seconds since the drill started")
        return _svg(fig)


def _faults_panel(ax: Any, obs: Observations) -> None:
    rules = sorted({u.fault for r in obs.requests for u in r.upstream if u.fault} | set(obs.windows))
    rows = {rule: i for i, rule in enumerate(rules)}
    xs = [u.t for r in obs.requests for u in r.upstream if u.fault]
    ys = [rows[u.fault] for r in obs.requests for u in r.upstream if u.fault]
    for rule, (lo, hi) in obs.windows.items():
        y = rows[rule]
        ax.plot(
            [lo or 0.0, hi if hi is not None else obs.duration],
            [y, y],
            color="#d62728",
            alpha=0.25,
            lw=8,
            solid_capstyle="butt",
        )
    if xs:
        ax.scatter(xs, ys, marker="|", s=60, color=_FAIL, lw=1)
    ax.set_yticks(range(len(rules)), rules if rules else [])
    ax.set_ylim(-0.7, max(len(rules), 1) - 0.3)
    total = len(xs)
    ax.set_title(f"faults injected ({total} upstream requests hit)", loc="left", fontsize=9)


_BREAKER_STYLE = {
    "open": ("#d62728", "-", "breaker opened"),
    "half_open": ("#ff7f0e", "--", "breaker half-open (probe)"),
    "half-open": ("#ff7f0e", "--", "breaker half-open (probe)"),
    "closed": ("#2ca02c", ":", "breaker closed"),
}


def _routes_panel(ax: Any, obs: Observations, end: float) -> None:
    colors = _colors(obs)
    buckets = 40
    width = end / buckets
    counts: dict[str, Counter[int]] = {m: Counter() for m in colors}
    failed: Counter[int] = Counter()
    for r in obs.requests:
        b = min(int(r.start / width), buckets - 1)
        if r.ok and r.winner in counts:
            counts[r.winner][b] += 1
        elif not r.ok:
            failed[b] += 1
    xs = [i * width for i in range(buckets)]
    bottom = [0] * buckets
    for model, color in colors.items():
        heights = [counts[model][i] for i in range(buckets)]
        ax.bar(xs, heights, width=width, bottom=bottom, align="edge", color=color, label=model, lw=0)
        bottom = [b + h for b, h in zip(bottom, heights, strict=True)]
    if failed:
        heights = [failed[i] for i in range(buckets)]
        ax.bar(xs, heights, width=width, bottom=bottom, align="edge", color=_FAIL, label="failed", lw=0)
    # Breaker moves as wide, labelled lines (each state once in the legend); the legend sits
    # between the panel's title and its bars, so it never covers them.
    shown: set[str] = set()
    for e in obs.breaker_events:
        color, ls, words = _BREAKER_STYLE.get(e.new, ("#7f7f7f", ":", f"breaker {e.new}"))
        label = None if e.new in shown else words
        shown.add(e.new)
        ax.axvline(e.t, color=color, ls=ls, lw=2, alpha=0.9, label=label)
    if colors or failed or shown:
        ax.legend(
            loc="lower left", bbox_to_anchor=(0.0, 1.0), fontsize=8, ncols=6, frameon=False, borderaxespad=0.2
        )
    ax.set_ylabel("requests")
    ax.set_title("routes taken (who answered, by start time)", loc="left", pad=22)


def _latency_panel(ax: Any, obs: Observations) -> None:
    colors = _colors(obs)
    for model, color in colors.items():
        pts = [(r.start, r.latency) for r in obs.requests if r.ok and r.winner == model]
        ax.scatter([p[0] for p in pts], [p[1] for p in pts], s=6, color=color, label=model, alpha=0.7, lw=0)
    bad = [(r.start, max(r.latency, 1e-4)) for r in obs.requests if not r.ok]
    if bad:
        ax.scatter(
            [p[0] for p in bad], [p[1] for p in bad], s=14, marker="x", color=_FAIL, label="failed", lw=1
        )
    if any(r.latency > 0 for r in obs.requests):
        ax.set_yscale("log")
        _plain_log_labels(ax.yaxis)
    ax.set_ylabel("latency (s)")
    ax.set_title("latency of every request", loc="left")
    if colors or bad:
        ax.legend(loc="upper right", fontsize=8, ncols=4, frameon=False, markerscale=2)


def latency_distribution(obs: Observations) -> str:
    """Per deployment: the empirical CDF of latency, and of time to first token for streams."""
    import matplotlib

    colors = _colors(obs)
    with matplotlib.rc_context(_RC):
        fig, (ax_l, ax_t) = _figure(3.4, 2, sharex=False)
        fig.set_size_inches(10, 5.4)
        for model, color in colors.items():
            lat = sorted(r.latency for r in obs.requests if r.ok and r.winner == model)
            ttft = sorted(r.ttft for r in obs.requests if r.ok and r.winner == model and r.ttft is not None)
            _ecdf(ax_l, lat, color, f"{model} (n={len(lat)})")
            _ecdf(ax_t, ttft, color, f"{model} (n={len(ttft)})")
        for ax, what in ((ax_l, "latency"), (ax_t, "time to first token (streams)")):
            ax.set_title(f"{what} by deployment that answered", loc="left")
            ax.set_ylabel("share of requests")
            ax.set_ylim(0, 1.02)
            ax.grid(alpha=0.3)
            if ax.get_lines():
                ax.set_xscale("log")
                _plain_log_labels(ax.xaxis)
                ax.legend(loc="lower right", fontsize=8, frameon=False)
            else:
                ax.text(0.5, 0.5, "no data", transform=ax.transAxes, ha="center", color="#7f7f7f")
        ax_t.set_xlabel("seconds (log scale)")
        return _svg(fig)


def _plain_log_labels(axis: Any) -> None:
    """Tick labels as plain numbers (0.01, 0.1, 1): no mathtext, which is slow to lay out."""
    from matplotlib.ticker import FuncFormatter, NullFormatter

    axis.set_major_formatter(FuncFormatter(lambda v, _pos: f"{v:g}"))
    axis.set_minor_formatter(NullFormatter())


def _ecdf(ax: Any, values: list[float], color: str, label: str) -> None:
    if not values:
        return
    n = len(values)
    xs = [max(v, 1e-4) for v in values]
    ax.step(xs, [(i + 1) / n for i in range(n)], where="post", color=color, label=label, lw=1.5)
