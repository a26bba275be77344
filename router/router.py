"""The public :class:`Router`: complete, stream and embed through configured routes.

Each call has an ``*_outcome`` form (:meth:`Router.complete_outcome`, :meth:`Router.embed_outcome`,
:meth:`Router.stream_outcome`) that hands back the request's :mod:`~router.outcome` (its answer or
error, and its audit record); the plain calls unwrap it. How a request starts and ends is
:mod:`router._requests`; one attempt after another is :mod:`router._engine`; streams (relayed,
continued after a cut) are :mod:`router._streaming`, whose docstring gives the streaming contract.
"""

from __future__ import annotations

import os
import random
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from router import errors as E
from router._requests import Requests, delegated
from router._runtime import DeploymentRuntime, build_runtime
from router._streaming import stream_events
from router.adapters import Adapter, CallOptions
from router.clock import SYSTEM_CLOCK, Clock
from router.config import RouterConfig, load_config
from router.hooks import RouterListener
from router.outcome import Outcome, StreamOutcome
from router.state.build import build_store, store_snapshot
from router.transport import Transport
from router.types import (
    AuditRecord,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEvent,
    Usage,
)
from turnout.logs import get_logger

if TYPE_CHECKING:
    from router.patterns.planner import Planner

__all__ = ["Router"]

log = get_logger("turnout.router")


async def _discard_response(resp: ChatResponse | EmbeddingResponse) -> Usage | None:
    return resp.usage


class Router:
    """Routes requests over the configured providers, with retries, fallbacks, breakers and limits."""

    def __init__(
        self,
        config: RouterConfig,
        *,
        clock: Clock | None = None,
        listeners: Sequence[RouterListener] = (),
        rng_seed: int | None = None,
        adapters: Mapping[str, Adapter] | None = None,  # by provider name; for tests and custom adapters
        transport: Transport | None = None,  # every provider's HTTP calls (router.transport); for tests
    ) -> None:
        self.config = config
        self.clock: Clock = clock or SYSTEM_CLOCK
        self._listeners: list[RouterListener] = list(listeners)
        # Limits, breakers and budgets shared between replicas (router.state): a MemoryStore
        # unless the `state:` section says redis; budgets use `state_store.add_spend/get_spend`.
        self.state_store, shared = build_store(config.state, self.clock)
        self._adapters, self._deployments, self._plans, self._prices = build_runtime(
            config,
            clock=self.clock,
            rng=random.Random(rng_seed),
            adapters=adapters,
            on_breaker_change=self._breaker_changed,
            state=shared,
            transport=transport,
        )
        self._requests = Requests(
            self._plans,
            self._deployments,
            self._prices,
            clock=self.clock,
            listeners=self._listeners,
            rate_limit_wait=config.defaults.rate_limit_wait,
            route_names=self.route_names,
        )
        # The planner hook (router.patterns): None unless the config or the caller sets patterns,
        # so a router without them runs exactly the path it always ran.
        self._planner: Planner | None = None
        if (
            config.rules
            or config.prompts
            or config.budgets
            or config.patterns
            or any(r.cache is not None or r.prompt is not None for r in config.routes.values())
        ):
            from router.patterns.planner import planner_from_config

            self._planner = planner_from_config(config, self, self.state_store)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str], **kwargs: Any) -> Router:
        return cls(load_config(Path(path)), **kwargs)

    # --- public API ------------------------------------------------------------------------------

    def route_names(self) -> list[str]:
        """The names a request's ``model`` may take: routes, patterns and rule sets, deployments."""
        extra = self._planner.names() if self._planner is not None else ()
        return list(dict.fromkeys([*self.config.routes, *extra, *self.config.models]))

    # --- for patterns (router.patterns) ----------------------------------------------------------

    def use(self, planner: Planner | None) -> None:
        """Install the planner consulted before each chat request (None: none, the fast path)."""
        self._planner = planner

    @property
    def planner(self) -> Planner | None:
        return self._planner

    def chain_of(self, name: str) -> tuple[str, ...] | None:
        """The deployments a route (or a single deployment) tries, in order; None if unknown."""
        plan = self._plans.get(name)
        return plan.chain if plan is not None else None

    def price(self, deployment: str, usage: Usage) -> float | None:
        """What ``usage`` costs on ``deployment`` (USD), or None when no price is known."""
        return self._prices.cost(deployment, usage)

    def new_request_id(self) -> str:
        return self._requests.new_request_id()

    def publish(self, audit: AuditRecord) -> None:
        """Hand a record made outside the engine (a pattern's summary) to the listeners."""
        self._requests.notify(audit)

    def add_listener(self, listener: RouterListener) -> None:
        self._listeners.append(listener)

    def deployment(self, name: str) -> DeploymentRuntime:
        """A deployment's runtime state (breaker, limiter), for inspection."""
        return self._deployments[name]

    def snapshot(self) -> dict[str, Any]:
        """JSON-able state: per deployment its breaker and limiter; per route its chain."""
        return {
            "deployments": {
                name: {
                    "provider": rt.deployment.provider,
                    "model": rt.deployment.model,
                    "breaker": rt.breaker.snapshot(),
                    # the health of its streams once output began: gates streamed requests only
                    "stream_health": rt.stream_breaker.snapshot(),
                    "limiter": rt.limiter.snapshot(),
                }
                for name, rt in self._deployments.items()
            },
            "routes": {
                name: {"chain": list(p.chain), "hedge_after": p.hedge_after, "buffer_stream": p.buffer_stream}
                for name, p in self._plans.items()
                if name in self.config.routes
            },
            "state": store_snapshot(self.state_store),
        }

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The answer to ``request`` (not streamed); the error that ended it raised."""
        return (await self.complete_outcome(request)).result()

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        """The embeddings of ``request``; the error that ended it raised."""
        return (await self.embed_outcome(request)).result()

    def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        """The events of ``request``, streamed (the contract: :mod:`router._streaming`)."""
        return self.stream_outcome(request).events

    async def complete_outcome(self, request: ChatRequest) -> Outcome[ChatResponse]:
        """:meth:`complete`'s outcome: the answer or the error, and the request's audit record."""
        out: Outcome[ChatResponse] = Outcome()
        try:
            out.response = await self._complete(request, out)
        except E.RouterError as err:
            out.error = err
        return out

    async def embed_outcome(self, request: EmbeddingRequest) -> Outcome[EmbeddingResponse]:
        """:meth:`embed`'s outcome: the answer or the error, and the request's audit record."""
        out: Outcome[EmbeddingResponse] = Outcome()
        try:
            out.response = await self._embed(request, out)
        except E.RouterError as err:
            out.error = err
        return out

    def stream_outcome(self, request: ChatRequest) -> StreamOutcome:
        """:meth:`stream`'s outcome: the events to iterate, and the request's audit record."""
        out = StreamOutcome()
        out.events = stream_events(self._requests, self._planner, self, request, out)
        return out

    async def _complete(self, request: ChatRequest, out: Outcome[ChatResponse]) -> ChatResponse:
        if request.stream:
            request = replace(request, stream=False)
        planned = None
        if self._planner is not None:
            planned = await self._planner.plan(self, request)
            if planned is not None and planned.delegate is not None:
                return delegated(await planned.delegate(request), out)
        requests = self._requests
        run = requests.start(request, out, streamed=False, planned=planned)

        async def attempt(rt: DeploymentRuntime, options: CallOptions) -> ChatResponse:
            req = request if run.prepare is None else run.prepare(rt.name, request, run.audit.decisions)
            return await rt.adapter.complete(rt.deployment, req, options)

        try:
            won = await run.run(attempt, _discard_response)
        except E.RouterError as err:
            requests.finish(run, None, err)
            raise
        resp = won.result
        requests.answered(run, won, resp)
        resp.latency_s = won.record.latency_s
        return resp

    async def _embed(self, request: EmbeddingRequest, out: Outcome[EmbeddingResponse]) -> EmbeddingResponse:
        requests = self._requests
        run = requests.start(request, out, streamed=False)

        async def attempt(rt: DeploymentRuntime, options: CallOptions) -> EmbeddingResponse:
            return await rt.adapter.embed(rt.deployment, request, options)

        try:
            won = await run.run(attempt, _discard_response, hedge=False)
        except E.RouterError as err:
            requests.finish(run, None, err)
            raise
        resp = won.result
        requests.answered(run, won, resp)
        return resp

    async def aclose(self) -> None:
        for adapter in self._adapters.values():
            await adapter.aclose()
        await self.state_store.aclose()

    async def __aenter__(self) -> Router:
        return self

    async def __aexit__(
        self, et: type[BaseException] | None, ev: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.aclose()

    # --- internals ---------------------------------------------------------------------------------

    def _breaker_changed(self, model: str, old: str, new: str) -> None:
        for listener in self._listeners:
            try:
                listener.on_breaker_change(model, old, new)
            except Exception:
                log.exception("router listener %r failed in on_breaker_change", listener)
