"""How a request starts and ends: its plan and audit record, its run, and the listeners told.

:class:`Requests` is the :class:`~router.Router`'s bookkeeping, apart from the public calls
(``router.py``) and the stream relay (``_streaming.py``): :meth:`Requests.start` makes the
request's :class:`~router._engine.RequestRun` (or refuses the request before any call, with its
record told), :meth:`Requests.answered` settles the winner and stamps the answer, and
:meth:`Requests.finish` completes the audit record and hands it to the planner's finish hook and
the listeners. Every request's record is also put on the caller's outcome
(:mod:`router.outcome`), so the caller needs no listener to read it.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from router import errors as E
from router._engine import RequestRun, Won
from router._runtime import DeploymentRuntime, RoutePlan
from router.clock import Clock
from router.cost import PriceTable
from router.hooks import RouterListener
from router.outcome import Outcome, StreamOutcome
from router.types import AuditRecord, ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse, Usage
from turnout.logs import get_logger

if TYPE_CHECKING:
    from router.patterns.planner import Planned

__all__ = ["Requests", "delegated"]

log = get_logger("turnout.router")


def delegated(
    answer: ChatResponse | Outcome[ChatResponse], out: Outcome[Any] | StreamOutcome
) -> ChatResponse:
    """What a planner's delegate (a pattern) answered; its record, if it gave one, put on ``out``
    and its error raised."""
    if isinstance(answer, Outcome):
        out.audit = answer.audit
        return answer.result()
    return answer


def _chars(request: ChatRequest) -> int:
    n = sum(len(m.text) for m in request.messages)
    if request.system:
        n += (
            len(request.system)
            if isinstance(request.system, str)
            else sum(len(p.text) for p in request.system)
        )
    return n


class Requests:
    """Starts and ends a router's requests (see the module docstring)."""

    def __init__(
        self,
        plans: dict[str, RoutePlan],
        deployments: dict[str, DeploymentRuntime],
        prices: PriceTable,
        *,
        clock: Clock,
        listeners: list[RouterListener],
        rate_limit_wait: float,
        route_names: Callable[[], list[str]],
    ) -> None:
        self.plans = plans
        self.deployments = deployments
        self.prices = prices
        self.clock = clock
        self.listeners = listeners
        self.rate_limit_wait = rate_limit_wait
        self.route_names = route_names
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex() + "-"

    def new_request_id(self) -> str:
        return f"{self._id_prefix}{next(self._ids):x}"

    def start(
        self,
        request: ChatRequest | EmbeddingRequest,
        out: Outcome[Any] | StreamOutcome,
        *,
        streamed: bool,
        planned: Planned | None = None,
    ) -> RequestRun:
        """The run of ``request``, its audit record put on ``out``; a request refused before any
        call raises here, its record complete and told."""
        name = request.model if planned is None else planned.route
        plan = self.plans.get(name)
        if planned is not None and planned.chain is not None and plan is not None:
            plan = replace(plan, chain=planned.chain)
        audit = out.audit = AuditRecord(
            request_id=f"{self._id_prefix}{next(self._ids):x}",
            route=name,
            candidates=list(plan.chain) if plan is not None else [],
            started_at=self.clock.wall(),
            streamed=streamed,
        )
        if planned is not None:
            audit.decisions.extend(planned.notes)
            if planned.refuse is not None:
                err: E.RouterError = planned.refuse
                audit.outcome, audit.error_kind = "error", err.kind.value
                self.notify(audit)
                raise err
        if plan is None:
            err = E.UnknownRoute(f"no route or model named {name!r}; known: {', '.join(self.route_names())}")
            audit.outcome, audit.error_kind = "error", err.kind.value
            self.notify(audit)
            raise err
        plan = self._capable(plan, request, audit)
        if isinstance(request, ChatRequest):
            chat = request

            def text_chars() -> int:
                return _chars(chat)

            hint = request.max_tokens
        else:
            inputs = request.input

            def text_chars() -> int:
                return sum(map(len, inputs))

            hint = 0
        run = RequestRun(
            plan,
            self.deployments,
            clock=self.clock,
            prices=self.prices,
            listeners=self.listeners,
            audit=audit,
            rate_limit_wait=self.rate_limit_wait,
            text_chars=text_chars,
            tokens_hint=hint,
        )
        if planned is not None:
            run.prepare, run.finish = planned.prepare, planned.finish
        return run

    def _capable(
        self, plan: RoutePlan, request: ChatRequest | EmbeddingRequest, audit: AuditRecord
    ) -> RoutePlan:
        """``plan`` narrowed to the deployments that can serve ``request``; a request that none
        of them can serve is refused here, before any call, and counts against none of them."""
        why = None
        wants = "embeddings" if isinstance(request, EmbeddingRequest) else "chat"
        if plan.serves != wants:
            why = f"route {plan.name!r} serves {plan.serves}, not {wants}"
            if wants == "embeddings":
                why += f" (its deployments {list(plan.chain)} are chat models)"
            else:
                why += f" (its deployments {list(plan.chain)} are embedding models)"
        elif plan.no_tools and isinstance(request, ChatRequest) and request.tools:
            chain = tuple(m for m in plan.chain if m not in plan.no_tools)
            if not chain:
                why = f"route {plan.name!r} has no deployment that takes tools ({list(plan.chain)} do not)"
            else:
                audit.decisions.append(f"tools: skipping {sorted(plan.no_tools & set(plan.chain))}")
                audit.candidates = list(chain)
                return replace(plan, chain=chain)
        if why is None:
            return plan
        err = E.Unsupported(why)
        audit.outcome, audit.error_kind = "error", err.kind.value
        audit.decisions.append(f"refused before any call: {why}")
        self.notify(audit)
        raise err

    def settle(self, run: RequestRun, won: Won[Any], usage: Usage | None) -> None:
        """The winning attempt's record and its limiter, given what it used."""
        won.rt.limiter.commit(won.estimate, usage.total_tokens if usage is not None else 0)
        run.finish_record(won.record, won.rt, usage)

    def answered(self, run: RequestRun, won: Won[Any], resp: ChatResponse | EmbeddingResponse) -> None:
        """``won`` answered the request with ``resp``: settle it, stamp ``resp`` with what the request
        did (the winner's cost, the request's id, route and attempts), and finish the request."""
        self.settle(run, won, resp.usage)
        resp.cost_usd = won.record.cost_usd
        resp.request_id = run.audit.request_id
        resp.route = run.plan.name
        resp.attempts = run.attempts
        self.finish(run, won.rt.name, None)

    def finish(self, run: RequestRun, winner: str | None, err: E.RouterError | None) -> None:
        """Complete the request's audit record (totals over its attempts) and tell it."""
        audit = run.audit
        audit.latency_s = self.clock.now() - run.deadline.started_at
        audit.winner = winner
        if err is not None:
            audit.outcome, audit.error_kind = "error", err.kind.value
        total = Usage()
        cost: float | None = None
        for rec in audit.attempts:
            u = rec.usage
            if u is not None:
                total.input_tokens += u.input_tokens
                total.output_tokens += u.output_tokens
                total.cached_input_tokens += u.cached_input_tokens
                total.cache_write_tokens += u.cache_write_tokens
            if rec.cost_usd is not None:
                cost = (cost or 0.0) + rec.cost_usd
        audit.usage, audit.cost_usd = total, cost
        if run.finish is not None:
            try:
                run.finish(audit)
            except Exception:
                log.exception("the planner's finish hook failed")
        self.notify(audit)

    def notify(self, audit: AuditRecord) -> None:
        for listener in self.listeners:
            try:
                listener.on_request(audit)
            except Exception:
                log.exception("router listener %r failed in on_request", listener)
