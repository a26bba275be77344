"""Figures derived from a drill's observations, shared by the Markdown and HTML reports."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

from chaos.drill.checks import percentile
from chaos.drill.record import Observations


@dataclass(frozen=True, slots=True)
class PhaseStats:
    name: str
    start: float
    end: float
    requests: int
    success: float | None
    p50: float | None
    p95: float | None
    fallback: float | None


def phase_stats(obs: Observations) -> list[PhaseStats]:
    """Per phase (and ``all``): requests, success rate, latency p50/p95, fallback rate. A phase that
    lasted no time and saw no request (``before`` in a drill whose faults start at once) is left out."""
    out = []
    for name in ["all", *obs.phases]:
        lo, hi = (0.0, obs.duration) if name == "all" else obs.phases[name]
        reqs = obs.in_phase(name)
        if name != "all" and hi <= lo and not reqs:
            continue
        ok = [r for r in reqs if r.ok]
        lat = [r.latency for r in ok]
        out.append(
            PhaseStats(
                name,
                lo,
                hi,
                len(reqs),
                len(ok) / len(reqs) if reqs else None,
                percentile(lat, 50) if lat else None,
                percentile(lat, 95) if lat else None,
                sum(r.fallback for r in ok) / len(ok) if ok else None,
            )
        )
    return out


def fault_counts(obs: Observations) -> list[tuple[str, str, int]]:
    """(rule, fault, upstream requests it hit), most first."""
    counts = Counter((u.fault, u.fault_kind or "") for r in obs.requests for u in r.upstream if u.fault)
    counts.update((u.fault, u.fault_kind or "") for u in obs.untagged if u.fault)
    return [(rule or "", kind, n) for (rule, kind), n in counts.most_common()]


def attempt_counts(obs: Observations) -> dict[str, Counter[str]]:
    """Per deployment, attempts by outcome (from the audit records)."""
    out: dict[str, Counter[str]] = {}
    for r in obs.requests:
        for a in r.attempts:
            out.setdefault(a.model, Counter())[a.outcome] += 1
    return dict(sorted(out.items()))


def continuation_line(obs: Observations) -> str | None:
    """How many streams were continued after a mid-stream failure, and how they ended; None if none."""
    continued = [r for r in obs.requests if any(a.continued_from is not None for a in r.attempts)]
    if not continued:
        return None
    ok = sum(r.ok for r in continued)
    whole = sum(r.ok and r.complete is True for r in continued)
    carried = sorted(a.continued_from for r in continued for a in r.attempts if a.continued_from is not None)
    return (
        f"Continued streams: {len(continued)} ({ok} answered, {whole} of them checked whole against the "
        f"mock); characters carried over: median {carried[len(carried) // 2]}, max {carried[-1]}"
    )


def outcome_counts(obs: Observations) -> Counter[str]:
    return Counter(r.outcome if r.outcome != "error" else f"error ({r.error_kind})" for r in obs.requests)


def cascade_savings(obs: Observations) -> tuple[int, float] | None:
    """(cascaded requests, dollars they saved against always their top tier), or None if none."""
    saved = [r.saved_usd for r in obs.requests if r.saved_usd is not None]
    return (len(saved), sum(saved)) if saved else None


def fmt_s(x: float | None) -> str:
    if x is None:
        return "n/a"
    return f"{x * 1000:.0f} ms" if x < 1 else f"{x:.2f} s"


def fmt_pct(x: float | None) -> str:
    return "n/a" if x is None else f"{x * 100:.1f}%"
