"""The patterns of multi-model pipelines, built on the :class:`~router.Router`'s public API.

- task routing: :class:`RoutingRules` picks a route by rules on the request (``rules:``);
- :class:`Cascade`: cheap tiers first, escalate when a confidence check fails (``patterns:``);
- :class:`Ensemble`: several models in parallel, majority vote or a judge, with a quorum;
- :class:`Pipeline`: stages in sequence or fanned out, each with its route, template and fallback;
- the planner (:class:`Planner`), the router's one hook for what acts inside a route's decision:
  routing rules, prompt variants (:mod:`router.prompts`), budgets (:mod:`router.budget`) and
  prompt-cache markers and stickiness (:mod:`router.caching`).

Every decision is a human-readable line in ``AuditRecord.decisions``. Submodules load lazily, so
:mod:`router.config` can import :mod:`router.patterns.config` without the rest.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.patterns.cascade import Cascade, CascadeResult, CascadeSummary, TierOutcome
    from router.patterns.checks import (
        Check,
        Verdict,
        json_valid,
        judge,
        length,
        pydantic_schema,
        scorer,
        self_confidence,
    )
    from router.patterns.ensemble import Ensemble, EnsembleResult, EnsembleSummary, normalize_label
    from router.patterns.pipeline import Pipeline, PipelineResult, Stage, StageResult
    from router.patterns.planner import PlanContext, Planned, Planner, PlanStep
    from router.patterns.rules import RoutingRules, Rule
    from router.patterns.service import RouterService

_LAZY = {
    "Cascade": "cascade",
    "CascadeResult": "cascade",
    "CascadeSummary": "cascade",
    "TierOutcome": "cascade",
    "Check": "checks",
    "Verdict": "checks",
    "json_valid": "checks",
    "judge": "checks",
    "length": "checks",
    "pydantic_schema": "checks",
    "scorer": "checks",
    "self_confidence": "checks",
    "Ensemble": "ensemble",
    "EnsembleResult": "ensemble",
    "EnsembleSummary": "ensemble",
    "normalize_label": "ensemble",
    "Pipeline": "pipeline",
    "PipelineResult": "pipeline",
    "Stage": "pipeline",
    "StageResult": "pipeline",
    "PlanContext": "planner",
    "PlanStep": "planner",
    "Planned": "planner",
    "Planner": "planner",
    "Rule": "rules",
    "RoutingRules": "rules",
    "RouterService": "service",
}

__all__ = [
    "Cascade",
    "CascadeResult",
    "CascadeSummary",
    "Check",
    "Ensemble",
    "EnsembleResult",
    "EnsembleSummary",
    "Pipeline",
    "PipelineResult",
    "PlanContext",
    "PlanStep",
    "Planned",
    "Planner",
    "RouterService",
    "RoutingRules",
    "Rule",
    "Stage",
    "StageResult",
    "TierOutcome",
    "Verdict",
    "json_valid",
    "judge",
    "length",
    "normalize_label",
    "pydantic_schema",
    "scorer",
    "self_confidence",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'router.patterns' has no attribute {name!r}")
    return getattr(importlib.import_module(f"router.patterns.{module}"), name)
