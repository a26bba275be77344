"""turnout chaos: every fault real LLM clients meet, reproducible on demand, exactly and repeatably.

Public API::

    from chaos import ChaosEngine, Rule, Scenario, load_scenario, REGISTRY

    engine = ChaosEngine([Rule(name="storm", fault="rate_limit", params={"retry_after": 2},
                               match={"provider": "openai"}, when={"probability": 0.2})], seed=7)
    app = create_mock_app(engine=engine)                  # the mock, with faults and /_chaos/
    proxy = create_proxy_app("https://api.openai.com", engine, provider="openai")

- faults: :data:`REGISTRY` (``chaos.faults``), one small class each, with a pydantic ``Params``;
- who and when: :class:`Match` (``chaos.targeting``) and :class:`When` / triggers (``chaos.triggers``);
- scenario files: :class:`Scenario`, :func:`load_scenario`, :class:`ScenarioError`, :func:`library`;
- real rate limits: :class:`Limit` (``chaos.limits``);
- control at run time: ``/_chaos/`` routes (``chaos.control``).

Heavy modules (aiohttp apps) are imported lazily, so importing :mod:`chaos` stays cheap.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from chaos.engine import FAULT_HEADER, FAULT_PARAMS_HEADER, ChaosEngine
from chaos.faults import REGISTRY, Fault, FaultContext, FaultParams, register
from chaos.limits import Limit
from chaos.rules import Rule
from chaos.scenario import (
    Scenario,
    ScenarioError,
    library,
    load_scenario,
    parse_scenario,
    parse_scenario_text,
)
from chaos.targeting import Match
from chaos.triggers import (
    AllOf,
    Always,
    Brownout,
    EveryK,
    FirstN,
    Probability,
    Sequence,
    Trigger,
    TriggerState,
    When,
    Window,
)

if TYPE_CHECKING:
    from chaos.control import add_control_routes
    from chaos.mock import attach, attach_to_core, create_mock_app
    from chaos.proxy import create_proxy_app

_LAZY = {
    "add_control_routes": "chaos.control",
    "attach": "chaos.mock",
    "attach_to_core": "chaos.mock",
    "create_mock_app": "chaos.mock",
    "create_proxy_app": "chaos.proxy",
}

__all__ = [
    "FAULT_HEADER",
    "FAULT_PARAMS_HEADER",
    "REGISTRY",
    "AllOf",
    "Always",
    "Brownout",
    "ChaosEngine",
    "EveryK",
    "Fault",
    "FaultContext",
    "FaultParams",
    "FirstN",
    "Limit",
    "Match",
    "Probability",
    "Rule",
    "Scenario",
    "ScenarioError",
    "Sequence",
    "Trigger",
    "TriggerState",
    "When",
    "Window",
    "add_control_routes",
    "attach",
    "attach_to_core",
    "create_mock_app",
    "create_proxy_app",
    "library",
    "load_scenario",
    "parse_scenario",
    "parse_scenario_text",
    "register",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'chaos' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
