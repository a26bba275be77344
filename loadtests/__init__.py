"""Locust load tests for the turnout sidecar or any OpenAI-compatible endpoint.

The Locust entry points are ``loadtests/locustfile.py`` (constant load) and
``loadtests/shaped.py`` (step, spike, soak); see ``loadtests/README.md``. The modules re-exported
here are pure Python (no Locust, no gevent), so they can be imported and tested anywhere:

- ``SSEParser``, ``SSEEvent``, ``SSEDecodeError`` — turnout's one SSE parser (:mod:`turnout.sse`);
- :mod:`loadtests.validation` — what a complete, well-formed chat completion is; fallback headers;
- :mod:`loadtests.slo` — the SLO gate (also ``python -m loadtests.slo PREFIX …`` on CSV output);
- :mod:`loadtests.shapes` — step, spike and soak schedules;
- :mod:`loadtests.settings` — options, prompts and request bodies.

This package talks to the system under test over HTTP only: it imports nothing from ``router``,
``mockproviders`` or ``chaos``.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from loadtests.shapes import ShapeError, SoakShape, SpikeShape, StepShape, parse_shape
    from loadtests.slo import SloReport, StatsRow, Thresholds, check, read_stats_csv
    from loadtests.validation import Routing, StreamCheck, check_completion, routing_from_headers
    from turnout.sse import SSEDecodeError, SSEEvent, SSEParser

# Imported on first use, not with the package: `python -m loadtests.slo` must not find
# loadtests.slo already imported by its package (runpy warns about that on every run).
_HOME = {
    **dict.fromkeys(("ShapeError", "SoakShape", "SpikeShape", "StepShape", "parse_shape"), "shapes"),
    **dict.fromkeys(("SloReport", "StatsRow", "Thresholds", "check", "read_stats_csv"), "slo"),
    **dict.fromkeys(("SSEDecodeError", "SSEEvent", "SSEParser"), "turnout.sse"),
    **dict.fromkeys(("Routing", "StreamCheck", "check_completion", "routing_from_headers"), "validation"),
}


def __getattr__(name: str) -> Any:
    home = _HOME.get(name)
    if home is None:
        raise AttributeError(f"module 'loadtests' has no attribute {name!r}")
    return getattr(importlib.import_module(home if "." in home else f"loadtests.{home}"), name)


__all__ = [
    "Routing",
    "SSEDecodeError",
    "SSEEvent",
    "SSEParser",
    "ShapeError",
    "SloReport",
    "SoakShape",
    "SpikeShape",
    "StatsRow",
    "StepShape",
    "StreamCheck",
    "Thresholds",
    "check",
    "check_completion",
    "parse_shape",
    "read_stats_csv",
    "routing_from_headers",
]
