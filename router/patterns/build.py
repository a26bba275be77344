"""Named patterns as model names: the plan step that hands a request to a cascade, an ensemble or a
pipeline instead of the engine (``patterns:`` in the YAML, or :class:`PatternStep` in Python)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, Protocol

from router.outcome import Outcome
from router.patterns.cascade import Cascade
from router.patterns.checks import check_from_config
from router.patterns.ensemble import Ensemble
from router.patterns.pipeline import Pipeline
from router.patterns.planner import PlanContext
from router.types import ChatRequest, ChatResponse

if TYPE_CHECKING:
    from router.patterns.config import PatternConfig
    from router.patterns.service import RouterService

__all__ = ["PatternStep", "build_pattern"]


class Pattern(Protocol):
    async def complete(self, request: ChatRequest) -> ChatResponse: ...

    async def outcome(self, request: ChatRequest) -> Outcome[ChatResponse]: ...


def build_pattern(name: str, config: PatternConfig, router: RouterService) -> Cascade | Ensemble | Pipeline:
    if config.cascade is not None:
        c = config.cascade
        return Cascade(router, c.tiers, [check_from_config(k, router) for k in c.checks], name=name)
    if config.ensemble is not None:
        e = config.ensemble
        return Ensemble(
            router, e.members, mode=e.mode, quorum=e.quorum, labels=e.labels, judge=e.judge, name=name
        )
    assert config.pipeline is not None
    return Pipeline.from_config(router, config.pipeline, name=name)


class PatternStep:
    """A request naming one of ``patterns`` is answered by it (the engine does not run)."""

    def __init__(self, patterns: Mapping[str, Pattern]) -> None:
        self.patterns = dict(patterns)

    @classmethod
    def from_config(cls, patterns: Mapping[str, PatternConfig], router: RouterService) -> PatternStep:
        return cls({name: build_pattern(name, p, router) for name, p in patterns.items()})

    def names(self) -> list[str]:
        return list(self.patterns)

    async def __call__(self, ctx: PlanContext) -> None:
        pattern = self.patterns.get(ctx.route)
        if pattern is not None:
            ctx.delegate = pattern.outcome  # the answer with the pattern's own summary record
