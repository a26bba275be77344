"""The public :class:`Router`: complete, stream and embed through configured routes.

Streaming contract: nothing reaches the caller until the first text has arrived (a tool call is
held until the stream ends), so a failure before it fails over invisibly;
:class:`~router.types.StreamStart` then names the model that answers. A failure after that is
continued when it can be (:mod:`router._continuation`): a deployment that can continue is given
the text already sent as an assistant prefill, and only the rest is relayed, so the caller still
sees one stream with one :class:`~router.types.StreamEnd`. When nothing can continue it (no such
deployment left, a tool call under way, a refusal in-band), the iteration ends with
:class:`~router.errors.StreamInterrupted` (its ``partial`` holds the text already sent) naming
the first failure, never with a :class:`~router.types.StreamEnd`: a cut stream is never a
success. A route with ``buffer_stream: true`` collects each attempt whole before sending
anything, so even a mid-stream failure fails over cleanly (at the cost of time to first token).
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import os
import random
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import TracebackType
from typing import TYPE_CHECKING, Any

from router import errors as E
from router._continuation import (
    CONTINUABLE,
    MAX_CONTINUATIONS,
    Splice,
    continuation_plan,
    continuation_request,
)
from router._engine import RequestRun, Won
from router._runtime import DeploymentRuntime, RoutePlan, build_runtime
from router.adapters import Adapter, AdapterEvent, CallOptions
from router.clock import SYSTEM_CLOCK, Clock
from router.config import RouterConfig, load_config
from router.hooks import RouterListener
from router.ratelimit import estimate_tokens
from router.state.build import build_store, store_snapshot
from router.transport import Transport
from router.types import (
    AuditRecord,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    Usage,
)

if TYPE_CHECKING:
    from router.patterns.planner import Planned, Planner

__all__ = ["Router"]

log = logging.getLogger("turnout.router")


@dataclass(slots=True)
class _Opened:
    """A stream attempt that produced its first content (or ended): what it sent so far."""

    head: list[AdapterEvent]
    rest: AsyncIterator[AdapterEvent] | None  # None once the stream was read whole (buffered)
    ttft: float | None


async def _aclose(it: AsyncIterator[Any] | None) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


async def _discard_stream(opened: _Opened) -> Usage | None:
    await _aclose(opened.rest)
    end = opened.head[-1] if opened.head else None
    return end.response.usage if isinstance(end, StreamEnd) else None


async def _discard_response(resp: ChatResponse | EmbeddingResponse) -> Usage | None:
    return resp.usage


def _chars(request: ChatRequest) -> int:
    n = sum(len(m.text) for m in request.messages)
    if request.system:
        n += (
            len(request.system)
            if isinstance(request.system, str)
            else sum(len(p.text) for p in request.system)
        )
    return n


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
        self._rate_limit_wait = config.defaults.rate_limit_wait
        self._ids = itertools.count(1)
        self._id_prefix = os.urandom(4).hex() + "-"
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

            self._planner = planner_from_config(config, self)

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
        return f"{self._id_prefix}{next(self._ids):x}"

    def publish(self, audit: AuditRecord) -> None:
        """Hand a record made outside the engine (a pattern's summary) to the listeners."""
        self._notify_request(audit)

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
        if request.stream:
            request = replace(request, stream=False)
        planned = None
        if self._planner is not None:
            planned = await self._planner.plan(self, request)
            if planned is not None and planned.delegate is not None:
                return await planned.delegate(request)
        run = self._start(request, streamed=False, planned=planned)

        async def attempt(rt: DeploymentRuntime, options: CallOptions) -> ChatResponse:
            req = request if run.prepare is None else run.prepare(rt.name, request, run.audit.decisions)
            return await rt.adapter.complete(rt.deployment, req, options)

        try:
            won = await run.run(attempt, _discard_response)
        except E.RouterError as err:
            self._finish(run, None, err)
            raise
        resp = won.result
        self._settle_success(run, won, resp.usage)
        resp.latency_s = won.record.latency_s
        resp.cost_usd = won.record.cost_usd
        resp.request_id = run.audit.request_id
        resp.route = run.plan.name
        resp.attempts = run.attempts
        self._finish(run, won.rt.name, None)
        return resp

    async def embed(self, request: EmbeddingRequest) -> EmbeddingResponse:
        run = self._start(request, streamed=False)

        async def attempt(rt: DeploymentRuntime, options: CallOptions) -> EmbeddingResponse:
            return await rt.adapter.embed(rt.deployment, request, options)

        try:
            won = await run.run(attempt, _discard_response, hedge=False)
        except E.RouterError as err:
            self._finish(run, None, err)
            raise
        resp = won.result
        self._settle_success(run, won, resp.usage)
        resp.cost_usd = won.record.cost_usd
        resp.request_id = run.audit.request_id
        resp.route = run.plan.name
        resp.attempts = run.attempts
        self._finish(run, won.rt.name, None)
        return resp

    async def stream(self, request: ChatRequest) -> AsyncIterator[StreamEvent]:
        if not request.stream:
            request = replace(request, stream=True)
        planned = None
        if self._planner is not None:
            planned = await self._planner.plan(self, request)
            if planned is not None and planned.delegate is not None:  # a pattern: answered whole
                resp = await planned.delegate(replace(request, stream=False))
                yield StreamStart(
                    resp.model,
                    resp.provider,
                    resp.provider_model,
                    resp.request_id,
                    resp.route,
                    resp.attempts,
                    resp.latency_s,
                )
                if resp.content:
                    yield TextDelta(resp.content)
                yield StreamEnd(resp)
                return
        run = self._start(request, streamed=True, planned=planned)
        buffered = run.plan.buffer_stream
        try:
            won = await run.run(self._stream_attempt(run, request, buffered), _discard_stream)
        except E.RouterError as err:
            self._finish(run, None, err)
            raise
        dep = won.rt.deployment
        upstream = won.record.wait_s + (won.result.ttft or 0.0)
        for a in run.audit.attempts:
            if a is not won.record and a.outcome != "skipped":
                upstream += a.latency_s + a.wait_s
        yield StreamStart(
            dep.name, dep.provider, dep.model, run.audit.request_id, run.plan.name, run.attempts, upstream
        )
        sent: list[str] = []  # every piece of text the caller has, over all attempts
        splice: Splice | None = None  # set while relaying a continuation
        cut_at: float | None = None  # when the stream last broke, until the continuation's first text
        cut: E.RouterError | None = None  # the failure the stream was first continued from
        open_won: Won[_Opened] | None = won  # the attempt whose record is still open
        first_ttft = won.result.ttft
        continued = 0
        broke: set[str] = set()  # deployments whose continuation of this stream broke as well
        chars = 0  # text this attempt produced, for its usage estimate
        tools = False  # a tool call's arguments were being streamed on this attempt

        def step(ev: TextDelta | ToolCallDelta) -> TextDelta | ToolCallDelta | None:
            """What the caller gets of one event (None: nothing), and what it tells."""
            nonlocal chars, cut_at, tools
            if isinstance(ev, TextDelta):
                if splice is not None:
                    text = splice.feed(ev.text)
                    if not text:
                        return None
                    ev = TextDelta(text)
                    if cut_at is not None:
                        gap = (self.clock.now() - cut_at) * 1000
                        run.audit.decisions.append(f"continuation: text again {gap:.1f} ms on")
                        cut_at = None
                sent.append(ev.text)
                chars += len(ev.text)
            else:
                tools = True
            return ev

        while True:
            opened = won.result
            won.record.ttft_s = opened.ttft
            won.record.streamed = True
            end: StreamEnd | None = None
            tools = False
            try:
                # The events read while opening the attempt, then the rest of its stream (two
                # loops, not a wrapping generator: no extra await per event on the hot path).
                for ev in opened.head:
                    if isinstance(ev, StreamEnd):
                        end = ev
                        break
                    out = step(ev)
                    if out is not None:
                        yield out
                if end is None and opened.rest is not None:
                    async for ev in opened.rest:
                        if isinstance(ev, StreamEnd):
                            end = ev
                            break
                        out = step(ev)
                        if out is not None:
                            yield out
                if end is None:
                    raise E.StreamCut(
                        "the stream ended without an end event",
                        provider=won.rt.deployment.provider,
                        model=won.rt.name,
                    )
                rest = splice.flush() if splice is not None else ""
                if rest:  # held back as a possible echo of the prefill: it was text
                    sent.append(rest)
                    yield TextDelta(rest)
            except E.RouterError as exc:
                await _aclose(opened.rest)
                partial = "".join(sent)
                self._cut_attempt(run, won, exc, chars)
                chars = 0
                open_won = None
                first = cut if cut is not None else exc
                plan = None
                why = ""
                if exc.kind not in CONTINUABLE:
                    why = f"{exc.kind.value} is not a failure to continue from"
                elif tools:
                    why = "a tool call was cut (its arguments cannot be spliced)"
                elif continued >= MAX_CONTINUATIONS:
                    why = f"continued {continued} times already"
                else:
                    if splice is not None:  # a continuation broke too: not this deployment again
                        broke.add(won.rt.name)
                    plan = continuation_plan(run.plan, won.rt.name, self._deployments, broke)
                    if plan is None:
                        why = "no deployment left in the chain can continue it"
                if plan is None:
                    run.audit.continuation = "impossible" if cut is None else "failed"
                    run.audit.decisions.append(f"{won.rt.name}: {exc.kind.value} after output began; {why}")
                    raise self._interrupted(run, won, first, partial) from exc
                cut, cut_at = first, self.clock.now()
                run.audit.decisions.append(
                    f"{won.rt.name}: {exc.kind.value} after {len(partial)} characters; "
                    f"continuing on {list(plan.chain)}"
                )
                run.plan = plan
            except (GeneratorExit, asyncio.CancelledError):
                await _aclose(opened.rest)
                if open_won is not None:
                    open_won.record.outcome = "cancelled"
                    open_won.rt.stream_breaker.release_probe()
                    run.finish_record(open_won.record, open_won.rt, None)
                    open_won.rt.limiter.refund(open_won.estimate)
                self._finish(run, None, E.RouterError("the caller stopped reading the stream"))
                raise
            if end is not None:
                break
            # Continue: a fresh walk of the continuation plan. What the first walk skipped is not
            # this one's to wait for or to try in panic (one that cannot continue answers afresh).
            run.blocked.clear()
            continued += 1
            partial = "".join(sent)
            try:
                won = await run.run(
                    self._stream_attempt(run, continuation_request(request, partial), False),
                    _discard_stream,
                )
            except E.RouterError as again:
                run.audit.continuation = "failed"
                run.audit.decisions.append(f"continuation failed: {again.message}")
                raise self._interrupted(run, won, cut or again, partial) from again
            except asyncio.CancelledError:  # the engine recorded the attempt in flight
                self._finish(run, None, E.RouterError("the caller stopped reading the stream"))
                raise
            open_won = won
            won.record.continued_from = len(partial)
            run.audit.continuation = "continued"
            run.audit.decisions.append(
                f"continued on {won.rt.name} (attempt {run.attempts}), {len(partial)} characters carried over"
            )
            splice = Splice(partial)
        # The adapter's stream stops at its StreamEnd but is not finished: closed here, it hands its
        # connection back now. Left to the garbage collector, the loop's finalizer hook would do it
        # later, at the cost of a task and a thread-safe wake-up per stream.
        await _aclose(opened.rest)
        run.stream_done(won.rt)
        resp = end.response
        self._settle_success(run, won, resp.usage)
        resp.latency_s = won.record.latency_s
        resp.ttft_s = opened.ttft
        resp.cost_usd = won.record.cost_usd
        resp.request_id = run.audit.request_id
        resp.route = run.plan.name
        resp.attempts = run.attempts
        self._finish(run, won.rt.name, None)
        if splice is not None:  # continued: the whole text, usage and cost over every attempt
            resp.content = "".join(sent)
            resp.usage = replace(run.audit.usage)
            resp.cost_usd = run.audit.cost_usd
            resp.latency_s = run.audit.latency_s
            resp.ttft_s = first_ttft
        yield StreamEnd(resp)

    def _stream_attempt(
        self, run: RequestRun, request: ChatRequest, buffered: bool
    ) -> Callable[[DeploymentRuntime, CallOptions], Awaitable[_Opened]]:
        """One streaming attempt, read up to its first content (or whole, when ``buffered``)."""
        clock = self.clock

        async def attempt(rt: DeploymentRuntime, options: CallOptions) -> _Opened:
            started = clock.now()
            req = request if run.prepare is None else run.prepare(rt.name, request, run.audit.decisions)
            events = rt.adapter.stream(rt.deployment, req, options)
            head: list[AdapterEvent] = []
            ttft = None
            try:
                async for ev in events:
                    head.append(ev)
                    if isinstance(ev, StreamEnd):
                        await _aclose(events)  # read whole: close it now (see the end of stream())
                        return _Opened(head, None, ttft)
                    if ttft is None:
                        ttft = clock.now() - started
                    # A tool call is held until text comes or the stream ends: its arguments
                    # cannot be spliced onto a continuation, so a stream cut inside one is
                    # retried whole while nothing has reached the caller.
                    if not buffered and isinstance(ev, TextDelta):
                        return _Opened(head, events, ttft)
            except BaseException:
                await _aclose(events)
                raise
            raise E.StreamCut(
                "the stream ended without an end event", provider=rt.deployment.provider, model=rt.name
            )

        return attempt

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

    # --- internals -------------------------------------------------------------------------------

    def _start(
        self, request: ChatRequest | EmbeddingRequest, *, streamed: bool, planned: Planned | None = None
    ) -> RequestRun:
        name = request.model if planned is None else planned.route
        plan = self._plans.get(name)
        if planned is not None and planned.chain is not None and plan is not None:
            plan = replace(plan, chain=planned.chain)
        audit = AuditRecord(
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
                self._notify_request(audit)
                raise err
        if plan is None:
            err = E.UnknownRoute(f"no route or model named {name!r}; known: {', '.join(self.route_names())}")
            audit.outcome, audit.error_kind = "error", err.kind.value
            self._notify_request(audit)
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
            self._deployments,
            clock=self.clock,
            prices=self._prices,
            listeners=self._listeners,
            audit=audit,
            rate_limit_wait=self._rate_limit_wait,
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
        self._notify_request(audit)
        raise err

    def _settle_success(self, run: RequestRun, won: Won[Any], usage: Usage | None) -> None:
        won.rt.limiter.commit(won.estimate, usage.total_tokens if usage is not None else 0)
        run.finish_record(won.record, won.rt, usage)

    def _cut_attempt(self, run: RequestRun, won: Won[Any], exc: E.RouterError, chars: int) -> None:
        """Record an attempt that failed after output began, and tell its breaker and limiter.

        Its usage is estimated from characters (about 4 a token): a cut stream reports none, but
        the provider bills what it generated. ``chars``: the text this attempt produced."""
        rt = won.rt
        run.count_failure(rt, exc.kind, after_output=True)
        rt.limiter.refund(won.estimate)
        rec = won.record
        rec.outcome, rec.error_kind, rec.status, rec.message = (
            "error",
            exc.kind.value,
            exc.status,
            exc.message,
        )
        usage = None
        if chars:
            prompt = run.text_chars() + (won.record.continued_from or 0)  # a prefill is input too
            usage = Usage(estimate_tokens(prompt, 0), estimate_tokens(chars, 0))
        run.finish_record(rec, rt, usage)
        run.errors.append(exc)

    def _interrupted(
        self, run: RequestRun, won: Won[Any], exc: E.RouterError, partial: str
    ) -> E.StreamInterrupted:
        """The error a caller sees for a stream that failed after output began (``exc``, the first
        failure), once nothing can continue it; the attempts are already recorded."""
        err = E.StreamInterrupted(
            f"the stream from {exc.model or won.rt.name} failed after output began: {exc.message}",
            partial=partial,
            cause_kind=exc.kind,
            provider=exc.provider or won.rt.deployment.provider,
            model=exc.model or won.rt.name,
            status=exc.status,
        )
        if run.audit.continuation is None:
            run.audit.decisions.append(f"{won.rt.name}: {exc.kind.value} after output began; not failed over")
        self._finish(run, None, err)
        return err

    def _finish(self, run: RequestRun, winner: str | None, err: E.RouterError | None) -> None:
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
        self._notify_request(audit)

    def _notify_request(self, audit: AuditRecord) -> None:
        for listener in self._listeners:
            try:
                listener.on_request(audit)
            except Exception:
                log.exception("router listener %r failed in on_request", listener)

    def _breaker_changed(self, model: str, old: str, new: str) -> None:
        for listener in self._listeners:
            try:
                listener.on_breaker_change(model, old, new)
            except Exception:
                log.exception("router listener %r failed in on_breaker_change", listener)
