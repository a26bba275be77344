"""Pipeline: stages in sequence or fanned out in parallel, each with its route, template and fallback.

    research = Pipeline(router, [
        Stage("decompose", route="fast", template="Split into sub-questions, one a line:\\n{input}"),
        Stage("research", route="mid", template="Research: {item}", foreach="decompose",
              fallback=("fast",)),
        Stage("synthesize", route="best", template="Question: {input}\\nNotes:\\n{stages.research}"),
    ], name="research")
    result = await research.run("Why do trains need switches?")
    result.output, [(s.name, s.model, s.cost_usd) for s in result.stages]

or in YAML (``patterns: {research: {pipeline: {stages: [...]}}}``, see
:mod:`router.patterns.config`). Templates see ``{input}`` (the pipeline's input), ``{stages.NAME}``
(an earlier stage's output) and, in a ``foreach`` stage, ``{item}`` (one line of the named stage's
output: one call per line, in parallel, up to ``max_items``). A stage with ``parallel`` runs its
stages at once and gathers their outputs. A stage's failure goes to that stage's ``fallback``
routes in order; the pipeline fails only when a stage's whole chain does.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from router.errors import AllAttemptsFailed, RouterError
from router.outcome import Outcome
from router.patterns._record import PatternCalls, PatternRun, capture, root_error
from router.patterns.template import render
from router.types import ChatRequest, ChatResponse, Message, Usage

if TYPE_CHECKING:
    from router.patterns.config import PipelineConfig, StageConfig
    from router.patterns.service import RouterService

__all__ = ["Pipeline", "PipelineResult", "Stage", "StageResult", "split_items"]

_BULLET = re.compile(r"^\s*(?:[-*•]|\d+[.)])\s*")


def split_items(text: str, limit: int) -> list[str]:
    """Non-empty lines of ``text`` without list bullets or numbers, at most ``limit``."""
    items = [_BULLET.sub("", line).strip() for line in text.splitlines()]
    return [i for i in items if i][:limit]


@dataclass(frozen=True, slots=True)
class Stage:
    name: str
    route: str | None = None
    template: str = "{input}"
    system: str | None = None
    fallback: tuple[str, ...] = ()
    max_tokens: int | None = None
    foreach: str | None = None
    max_items: int = 8
    parallel: tuple[Stage, ...] | None = None

    @classmethod
    def from_config(cls, c: StageConfig) -> Stage:
        return cls(
            c.name,
            c.route,
            c.template,
            c.system,
            tuple(c.fallback),
            c.max_tokens,
            c.foreach,
            c.max_items,
            tuple(cls.from_config(s) for s in c.parallel) if c.parallel is not None else None,
        )


@dataclass(slots=True)
class StageResult:
    name: str
    output: str
    models: list[str] = field(default_factory=list)  # the deployments that answered
    routes: list[str] = field(default_factory=list)  # the routes that served (a fallback's included)
    calls: int = 0
    fallbacks: int = 0  # calls served by the stage's fallback chain
    cost_usd: float | None = None
    latency_s: float = 0.0
    usage: Usage = field(default_factory=Usage)


@dataclass(slots=True)
class PipelineResult:
    output: str
    stages: list[StageResult]
    response: ChatResponse  # the last stage's (last) answer, with the pipeline's totals
    cost_usd: float | None
    latency_s: float


class Pipeline(PatternCalls):
    def __init__(self, router: RouterService, stages: Sequence[Stage], *, name: str = "pipeline") -> None:
        if not stages:
            raise ValueError("a pipeline needs at least one stage")
        self.router, self.stages, self.name = router, list(stages), name

    @classmethod
    def from_config(
        cls, router: RouterService, config: PipelineConfig, *, name: str = "pipeline"
    ) -> Pipeline:
        return cls(router, [Stage.from_config(s) for s in config.stages], name=name)

    async def run(
        self, request: ChatRequest | str, *, outcome: Outcome[ChatResponse] | None = None
    ) -> PipelineResult:
        """Run on ``request``; ``outcome``, if given, is told the summary record."""
        if isinstance(request, str):
            request = ChatRequest(model=self.name, messages=[Message("user", request)])
        routes = [s.route or s.name for s in self.stages]
        run = PatternRun(self.router, self.name, routes, outcome)
        values = {"input": request.messages[-1].text if request.messages else ""}
        results: list[StageResult] = []
        last: list[ChatResponse] = []
        with capture() as run.records:
            try:
                for stage in self.stages:
                    results.append(await self._stage(stage, request, values, run, last))
            except RouterError as exc:
                run.publish(None, exc.kind.value)
                raise
        cost = run.cost()
        run.note(f"pipeline: {len(results)} stage(s), cost ${cost or 0:.6f}")
        if not last:  # the last stage fanned out over nothing
            run.publish(None, "exhausted")
            raise AllAttemptsFailed(f"pipeline {self.name!r}: its last stage made no call", errors=[])
        final = last[-1]
        record = run.publish(final.model)
        response = replace(final, route=self.name, request_id=record.request_id, cost_usd=cost)
        response.attempts, response.latency_s = len(record.attempts), record.latency_s
        return PipelineResult(final.content, results, response, cost, record.latency_s)

    async def _stage(
        self,
        stage: Stage,
        request: ChatRequest,
        values: dict[str, str],
        run: PatternRun,
        last: list[ChatResponse],
    ) -> StageResult:
        clock = self.router.clock
        started = clock.now()
        result = StageResult(stage.name, "")
        if stage.parallel is not None:
            lasts: list[list[ChatResponse]] = [[] for _ in stage.parallel]
            subs = await asyncio.gather(
                *(self._stage(s, request, dict(values), run, lasts[i]) for i, s in enumerate(stage.parallel))
            )
            last.extend(lasts[-1][-1:])
            for sub in subs:
                values[f"stages.{sub.name}"] = sub.output
                _absorb(result, sub)
            result.output = "\n\n".join(s.output for s in subs)
            run.note(f"pipeline: stage {stage.name} gathered {', '.join(s.name for s in subs)}")
        elif stage.foreach is not None:
            items = split_items(values.get(f"stages.{stage.foreach}", ""), stage.max_items)
            run.note(f"pipeline: stage {stage.name} fans out over {len(items)} item(s) of {stage.foreach}")
            answers = await asyncio.gather(
                *(self._call(stage, request, {**values, "item": item}, run, result) for item in items)
            )
            result.output = "\n\n".join(
                f"{item}:\n{a.content}" for item, a in zip(items, answers, strict=True)
            )
            last.extend(answers[-1:])
        else:
            answer = await self._call(stage, request, values, run, result)
            result.output = answer.content
            last.append(answer)
        result.latency_s = clock.now() - started
        values[f"stages.{stage.name}"] = result.output
        return result

    async def _call(
        self, stage: Stage, request: ChatRequest, values: dict[str, str], run: PatternRun, result: StageResult
    ) -> ChatResponse:
        assert stage.route is not None
        ask = ChatRequest(
            model=stage.route,
            messages=[Message("user", render(stage.template, values))],
            system=render(stage.system, values) if stage.system is not None else None,
            max_tokens=stage.max_tokens,
            metadata={**request.metadata, "stage": stage.name},
        )
        chain = (stage.route, *stage.fallback)
        for i, route in enumerate(chain):
            try:
                answer = await self.router.complete(replace(ask, model=route))
            except RouterError as exc:
                why = f"{route} failed ({root_error(exc).kind.value})"
                if i + 1 == len(chain):
                    run.note(f"pipeline: stage {stage.name}: {why}; chain exhausted")
                    raise
                run.note(f"pipeline: stage {stage.name}: {why} → fallback {chain[i + 1]}")
                continue
            result.calls += 1
            result.fallbacks += i > 0
            result.models.append(answer.model)
            result.routes.append(route)
            if answer.cost_usd is not None:
                result.cost_usd = (result.cost_usd or 0.0) + answer.cost_usd
            _add_usage(result.usage, answer.usage)
            return answer
        raise AssertionError("unreachable")


def _add_usage(total: Usage, u: Usage) -> None:
    total.input_tokens += u.input_tokens
    total.output_tokens += u.output_tokens
    total.cached_input_tokens += u.cached_input_tokens
    total.cache_write_tokens += u.cache_write_tokens


def _absorb(into: StageResult, sub: StageResult) -> None:
    into.models += sub.models
    into.routes += sub.routes
    into.calls += sub.calls
    into.fallbacks += sub.fallbacks
    if sub.cost_usd is not None:
        into.cost_usd = (into.cost_usd or 0.0) + sub.cost_usd
    _add_usage(into.usage, sub.usage)
