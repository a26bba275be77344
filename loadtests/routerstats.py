"""The router's own figures for a load step, read from the sidecar's Prometheus ``/metrics``.

Between two scrapes (before a step, after it drained) the counters' differences say which
deployment served how many requests (``turnout_requests_total``), where traffic spilled to a
fallback (``turnout_fallbacks_total``) and what it cost by the router's prices
(``turnout_cost_usd_total``). Several sidecars (a fleet) are summed. Pure Python apart from the
HTTP get, which is injected.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field

from prometheus_client.parser import text_string_to_metric_families

__all__ = ["RouterFigures", "Snapshot", "parse_metrics", "scrape"]

Key = tuple[str, tuple[tuple[str, str], ...]]
Snapshot = dict[Key, float]
_WANTED = {"turnout_requests_total", "turnout_fallbacks_total", "turnout_cost_usd_total"}


def parse_metrics(text: str) -> Snapshot:
    """The counters the sweep reads, keyed by (sample name, sorted labels)."""
    out: Snapshot = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name in _WANTED:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                out[key] = out.get(key, 0.0) + float(sample.value)
    return out


def scrape(urls: Iterable[str], get: Callable[[str], str]) -> Snapshot:
    """One snapshot summed over every sidecar's ``/metrics``."""
    total: Snapshot = {}
    for url in urls:
        for key, value in parse_metrics(get(url)).items():
            total[key] = total.get(key, 0.0) + value
    return total


@dataclass
class RouterFigures:
    """What the router counted between two snapshots, for one route (or all if ``route`` is None)."""

    served: dict[str, int] = field(default_factory=dict)  # model -> successful requests
    failed: int = 0
    spill: dict[str, int] = field(default_factory=dict)  # "from -> to" -> fallbacks
    cost_usd: float = 0.0

    @classmethod
    def between(
        cls, before: Mapping[Key, float], after: Mapping[Key, float], route: str | None
    ) -> RouterFigures:
        figures = cls()
        for (name, labels), value in after.items():
            delta = value - before.get((name, labels), 0.0)
            lab = dict(labels)
            if delta <= 0 or (route is not None and lab.get("route") != route):
                continue
            if name == "turnout_requests_total":
                if lab.get("outcome") == "success":
                    model = lab.get("model", "?")
                    figures.served[model] = figures.served.get(model, 0) + round(delta)
                else:
                    figures.failed += round(delta)
            elif name == "turnout_fallbacks_total":
                hop = f"{lab.get('from_model', '?')} -> {lab.get('to_model', '?')}"
                figures.spill[hop] = figures.spill.get(hop, 0) + round(delta)
            elif name == "turnout_cost_usd_total":
                figures.cost_usd += delta
        return figures
