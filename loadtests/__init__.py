"""Locust load tests for the turnout sidecar or any OpenAI-compatible endpoint.

The Locust entry points are ``loadtests/locustfile.py`` (constant load) and
``loadtests/shaped.py`` (step, spike, soak); see ``loadtests/README.md``. The modules re-exported
here are pure Python (no Locust, no gevent), so they can be imported and tested anywhere:

- :mod:`loadtests.sse` — incremental server-sent-events parser;
- :mod:`loadtests.validation` — what a complete, well-formed chat completion is; fallback headers;
- :mod:`loadtests.slo` — the SLO gate (also ``python -m loadtests.slo PREFIX …`` on CSV output);
- :mod:`loadtests.shapes` — step, spike and soak schedules;
- :mod:`loadtests.settings` — options, prompts and request bodies.

This package talks to the system under test over HTTP only: it imports nothing from ``router``,
``mockproviders`` or ``chaos``.
"""

from loadtests.shapes import ShapeError, SoakShape, SpikeShape, StepShape, parse_shape
from loadtests.slo import SloReport, StatsRow, Thresholds, check, read_stats_csv
from loadtests.sse import SSEDecodeError, SSEEvent, SSEParser
from loadtests.validation import Routing, StreamCheck, check_completion, routing_from_headers

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
