"""A streamed request, from its first attempt to its end: the stream relay of :class:`~router.Router`.

The contract: nothing reaches the caller until the first text has arrived (a tool call is
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
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, replace
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
from router._requests import Requests, delegated
from router._runtime import DeploymentRuntime
from router.adapters import AdapterEvent, CallOptions
from router.outcome import StreamOutcome
from router.ratelimit import estimate_tokens
from router.types import ChatRequest, StreamEnd, StreamEvent, StreamStart, TextDelta, ToolCallDelta, Usage

if TYPE_CHECKING:
    from router.patterns.planner import Planner

__all__ = ["aclose", "stream_events"]


@dataclass(slots=True)
class Opened:
    """A stream attempt that produced its first content (or ended): what it sent so far."""

    head: list[AdapterEvent]
    rest: AsyncIterator[AdapterEvent] | None  # None once the stream was read whole (buffered)
    ttft: float | None


async def aclose(it: AsyncIterator[Any] | None) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


async def discard_stream(opened: Opened) -> Usage | None:
    await aclose(opened.rest)
    end = opened.head[-1] if opened.head else None
    return end.response.usage if isinstance(end, StreamEnd) else None


async def stream_events(
    requests: Requests, planner: Planner | None, service: Any, request: ChatRequest, outcome: StreamOutcome
) -> AsyncIterator[StreamEvent]:
    """The events of one streamed request (see the module docstring); its audit record on ``outcome``.
    ``service``: what the planner plans with (the router)."""
    clock = requests.clock
    if not request.stream:
        request = replace(request, stream=True)
    planned = None
    if planner is not None:
        planned = await planner.plan(service, request)
        if planned is not None and planned.delegate is not None:  # a pattern: answered whole
            resp = delegated(await planned.delegate(replace(request, stream=False)), outcome)
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
    run = requests.start(request, outcome, streamed=True, planned=planned)
    buffered = run.plan.buffer_stream
    try:
        won = await run.run(stream_attempt(run, request, buffered), discard_stream)
    except E.RouterError as err:
        requests.finish(run, None, err)
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
    open_won: Won[Opened] | None = won  # the attempt whose record is still open
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
                    gap = (clock.now() - cut_at) * 1000
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
            await aclose(opened.rest)
            partial = "".join(sent)
            cut_attempt(run, won, exc, chars)
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
                plan = continuation_plan(run.plan, won.rt.name, requests.deployments, broke)
                if plan is None:
                    why = "no deployment left in the chain can continue it"
            if plan is None:
                run.audit.continuation = "impossible" if cut is None else "failed"
                run.audit.decisions.append(f"{won.rt.name}: {exc.kind.value} after output began; {why}")
                raise interrupted(requests, run, won, first, partial) from exc
            cut, cut_at = first, clock.now()
            run.audit.decisions.append(
                f"{won.rt.name}: {exc.kind.value} after {len(partial)} characters; "
                f"continuing on {list(plan.chain)}"
            )
            run.continue_on(plan)
        except (GeneratorExit, asyncio.CancelledError):
            await aclose(opened.rest)
            if open_won is not None:
                open_won.record.outcome = "cancelled"
                open_won.rt.stream_breaker.release_probe()
                run.finish_record(open_won.record, open_won.rt, None)
                open_won.rt.limiter.refund(open_won.estimate)
            requests.finish(run, None, E.RouterError("the caller stopped reading the stream"))
            raise
        if end is not None:
            break
        # Continue: a fresh walk of the continuation plan (run.continue_on above).
        continued += 1
        partial = "".join(sent)
        try:
            won = await run.run(
                stream_attempt(run, continuation_request(request, partial), False),
                discard_stream,
            )
        except E.RouterError as again:
            run.audit.continuation = "failed"
            run.audit.decisions.append(f"continuation failed: {again.message}")
            raise interrupted(requests, run, won, cut or again, partial) from again
        except asyncio.CancelledError:  # the engine recorded the attempt in flight
            requests.finish(run, None, E.RouterError("the caller stopped reading the stream"))
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
    await aclose(opened.rest)
    run.stream_done(won.rt)
    resp = end.response
    requests.answered(run, won, resp)
    resp.latency_s = won.record.latency_s
    resp.ttft_s = opened.ttft
    if splice is not None:  # continued: the whole text, usage and cost over every attempt
        resp.content = "".join(sent)
        resp.usage = replace(run.audit.usage)
        resp.cost_usd = run.audit.cost_usd
        resp.latency_s = run.audit.latency_s
        resp.ttft_s = first_ttft
    yield StreamEnd(resp)


def stream_attempt(
    run: RequestRun, request: ChatRequest, buffered: bool
) -> Callable[[DeploymentRuntime, CallOptions], Awaitable[Opened]]:
    """One streaming attempt, read up to its first content (or whole, when ``buffered``)."""
    clock = run.clock

    async def attempt(rt: DeploymentRuntime, options: CallOptions) -> Opened:
        started = clock.now()
        req = request if run.prepare is None else run.prepare(rt.name, request, run.audit.decisions)
        events = rt.adapter.stream(rt.deployment, req, options)
        head: list[AdapterEvent] = []
        ttft = None
        try:
            async for ev in events:
                head.append(ev)
                if isinstance(ev, StreamEnd):
                    await aclose(events)  # read whole: close it now (see the end of stream())
                    return Opened(head, None, ttft)
                if ttft is None:
                    ttft = clock.now() - started
                # A tool call is held until text comes or the stream ends: its arguments
                # cannot be spliced onto a continuation, so a stream cut inside one is
                # retried whole while nothing has reached the caller.
                if not buffered and isinstance(ev, TextDelta):
                    return Opened(head, events, ttft)
        except BaseException:
            await aclose(events)
            raise
        raise E.StreamCut(
            "the stream ended without an end event", provider=rt.deployment.provider, model=rt.name
        )

    return attempt


def cut_attempt(run: RequestRun, won: Won[Any], exc: E.RouterError, chars: int) -> None:
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


def interrupted(
    requests: Requests, run: RequestRun, won: Won[Any], exc: E.RouterError, partial: str
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
    requests.finish(run, None, err)
    return err
