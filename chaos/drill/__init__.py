"""``turnout drill``: judge a router against a chaos scenario, and write the reports.

A drill file names the faults (a chaos scenario), the router (library or sidecar), the traffic
and the steady-state hypothesis; the runner starts everything on free loopback ports, sends the
traffic, stops everything and checks the hypothesis before, during and after the faults::

    from chaos.drill import load_drill, run_drill, write_reports

    drill = load_drill("chaos/drills/provider-outage.yaml")
    result = asyncio.run(run_drill(drill, seed=1))
    paths = write_reports(result, Path("drill-reports") / drill.name)
    assert result.passed

Modules: :mod:`~chaos.drill.spec` (the file format), :mod:`~chaos.drill.checks` (the
hypothesis), :mod:`~chaos.drill.traffic`, :mod:`~chaos.drill.targets` (library and sidecar),
:mod:`~chaos.drill.tap` (the mock's side), :mod:`~chaos.drill.runner`,
:mod:`~chaos.drill.report` (JSON, JUnit XML, Markdown, HTML). Imported lazily, so
``turnout --help`` stays fast.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from chaos.drill.checks import CheckResult
    from chaos.drill.report import write_reports
    from chaos.drill.runner import DrillResult, run_drill
    from chaos.drill.spec import DrillError, DrillSpec, LoadedDrill, load_drill, parse_drill, shipped

_LAZY = {
    "CheckResult": "chaos.drill.checks",
    "write_reports": "chaos.drill.report",
    "DrillResult": "chaos.drill.runner",
    "run_drill": "chaos.drill.runner",
    "DrillError": "chaos.drill.spec",
    "DrillSpec": "chaos.drill.spec",
    "LoadedDrill": "chaos.drill.spec",
    "load_drill": "chaos.drill.spec",
    "parse_drill": "chaos.drill.spec",
    "shipped": "chaos.drill.spec",
}

__all__ = [
    "CheckResult",
    "DrillError",
    "DrillResult",
    "DrillSpec",
    "LoadedDrill",
    "load_drill",
    "parse_drill",
    "run_drill",
    "shipped",
    "write_reports",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chaos.drill' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
