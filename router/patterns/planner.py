"""The planner: the router's one hook for what acts inside a route's decision.

Before a chat request enters the engine, :meth:`Router.complete` and :meth:`Router.stream` ask the
router's planner (if it has one; without one nothing here runs) for a :class:`Planned`:

- ``route``: the route to run (a rule set picks one);
- ``chain``: the deployments to try, reordered or trimmed (stickiness, a budget's downgrade);
- ``prepare(deployment, request, decisions)``: the request as sent to each deployment (a prompt
  variant, cache markers), called once per attempt;
- ``finish(audit)``: called with the complete audit record, before the listeners see it (spend,
  the conversation's cache holder);
- ``refuse``: an error to raise instead of running (a budget that refuses);
- ``delegate``: a coroutine that answers instead of the engine (a named cascade, ensemble or
  pipeline);
- ``notes``: lines for ``AuditRecord.decisions``.

A :class:`Planner` is a list of :class:`PlanStep` s, each a small object with one async method
that reads and edits a :class:`PlanContext`. :func:`planner_from_config` builds it from the
``rules``, ``prompts``, ``budgets``, ``patterns`` sections and the routes' ``cache`` fields.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

from router.errors import RouterError
from router.outcome import Outcome
from router.types import AuditRecord, ChatRequest, ChatResponse

if TYPE_CHECKING:
    from router.budget import SpendStore
    from router.config import RouterConfig
    from router.patterns.service import RouterService

__all__ = ["PlanContext", "PlanStep", "Planned", "Planner", "planner_from_config"]

Prepare = Callable[[str, ChatRequest, list[str]], ChatRequest]
Finish = Callable[[AuditRecord], None]
# A delegate answers a ChatResponse, or an Outcome that also carries the record of what it did.
Delegate = Callable[[ChatRequest], Awaitable[ChatResponse | Outcome[ChatResponse]]]


@dataclass(slots=True)
class Planned:
    """What the engine runs for one request; see the module docstring."""

    route: str
    chain: tuple[str, ...] | None = None
    notes: list[str] = field(default_factory=list)
    prepare: Prepare | None = None
    finish: Finish | None = None
    refuse: RouterError | None = None
    delegate: Delegate | None = None


@dataclass(slots=True)
class PlanContext:
    """One request being planned; steps read and edit it in order."""

    router: RouterService
    request: ChatRequest
    route: str
    chain: tuple[str, ...] | None  # None: the route's own (or the route is unknown)
    notes: list[str] = field(default_factory=list)
    prepares: list[Prepare] = field(default_factory=list)
    finishes: list[Finish] = field(default_factory=list)
    refuse: RouterError | None = None
    delegate: Delegate | None = None

    def current_chain(self) -> tuple[str, ...]:
        """The chain as planned so far (the route's own unless a step changed it)."""
        if self.chain is not None:
            return self.chain
        return self.router.chain_of(self.route) or ()

    def planned(self) -> Planned | None:
        """None when no step did anything: the engine then takes its ordinary path."""
        if not (
            self.notes
            or self.prepares
            or self.finishes
            or self.refuse
            or self.delegate
            or self.chain is not None
            or self.route != self.request.model
        ):
            return None
        return Planned(
            route=self.route,
            chain=self.chain,
            notes=self.notes,
            prepare=_chain_prepares(self.prepares),
            finish=_chain_finishes(self.finishes),
            refuse=self.refuse,
            delegate=self.delegate,
        )


def _chain_prepares(prepares: list[Prepare]) -> Prepare | None:
    if not prepares:
        return None
    if len(prepares) == 1:
        return prepares[0]

    def prepare(name: str, request: ChatRequest, decisions: list[str]) -> ChatRequest:
        for p in prepares:
            request = p(name, request, decisions)
        return request

    return prepare


def _chain_finishes(finishes: list[Finish]) -> Finish | None:
    if not finishes:
        return None

    def finish(audit: AuditRecord) -> None:
        for f in finishes:
            f(audit)

    return finish


class PlanStep(Protocol):
    """One part of planning (rules, budget, stickiness, prompt variants, a pattern)."""

    def names(self) -> Sequence[str]:
        """Model names this step adds (rule sets, patterns); usually none."""
        ...

    async def __call__(self, ctx: PlanContext) -> None:
        """Read and edit ``ctx``; set ``ctx.delegate`` or ``ctx.refuse`` to end planning."""
        ...


class Planner:
    """Runs its steps in order; a step that sets ``delegate`` or ``refuse`` ends planning."""

    def __init__(self, steps: Sequence[PlanStep] = ()) -> None:
        self.steps: list[PlanStep] = list(steps)

    def add(self, step: PlanStep) -> Planner:
        self.steps.append(step)
        return self

    def names(self) -> list[str]:
        return [n for step in self.steps for n in step.names()]

    async def plan(self, router: RouterService, request: ChatRequest) -> Planned | None:
        ctx = PlanContext(router, request, request.model, None)
        for step in self.steps:
            await step(ctx)
            if ctx.delegate is not None or ctx.refuse is not None:
                break
        return ctx.planned()


def planner_from_config(
    config: RouterConfig, router: RouterService, store: SpendStore | None = None
) -> Planner:
    """The steps the configuration asks for, in the order they must act: rule sets (which pick the
    route the rest act on, possibly a pattern), named patterns, budgets, stickiness, then
    per-deployment rewrites (prompt variants, cache markers)."""
    from router.budget import Budgets
    from router.caching import CacheSteps
    from router.patterns.build import PatternStep
    from router.patterns.rules import rules_from_config
    from router.prompts import PromptVariants

    steps: list[PlanStep] = []
    if config.rules:
        steps.extend(rules_from_config(config.rules))
    if config.patterns:
        steps.append(PatternStep.from_config(config.patterns, router))
    if config.budgets:
        # ``store``: the router's state store (router.state), where spend is shared; None: in-process.
        steps.append(Budgets.from_config(config.budgets, store))
    caches = {name: r.cache for name, r in config.routes.items() if r.cache is not None}
    if caches:
        steps.append(CacheSteps(caches))
    prompts = {name: r.prompt for name, r in config.routes.items() if r.prompt is not None}
    if config.prompts:
        steps.append(PromptVariants.from_config(config.prompts, prompts))
    return Planner(steps)
