"""Faults after the 200, in streams: they wrap ``response.stream`` and act on tagged events.

Positions are counted in answer tokens (the ``tokens`` of ``content`` events) or, for
``malformed_event``, in events. When the answer is shorter than the position, the fault happens
just before the end of the answer (the ``finish``/``usage``/``done`` events), so a rule that
fires always shows. Only streamed requests can get these faults.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from typing import ClassVar, Literal

from pydantic import Field

from chaos.faults._base import Fault, FaultContext, FaultParams, register
from chaos.faults._bodies import stream_error_event
from mockproviders.types import AbortConnection, Handler, MockRequest, MockResponse, StreamEvent
from turnout.durations import Duration

Events = AsyncIterator[StreamEvent]
_TAIL = frozenset({"finish", "usage", "done"})


async def _aclose(it: Events) -> None:
    close = getattr(it, "aclose", None)
    if close is not None:
        await close()


class StreamFault(Fault[FaultParams]):
    """Base of the stream faults: ``transform`` rewrites the event stream."""

    family = "stream"
    streams_only = True

    def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        raise NotImplementedError

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        response = await call_next(request)
        if response.stream is not None and response.status < 300:
            response.stream = _closing(response.stream, lambda inner: self.transform(inner, request, ctx))
        return response


async def _closing(inner: Events, make: Callable[[Events], Events]) -> Events:
    # Closes the original stream however the fault's generator ends (cut, error, client gone).
    try:
        async for event in make(inner):
            yield event
    finally:
        await _aclose(inner)


def _at_position(event: StreamEvent, sent_tokens: int, after_tokens: int) -> bool:
    """Whether the fault positioned ``after_tokens`` tokens in happens before ``event``."""
    return (event.kind == "content" and sent_tokens >= after_tokens) or event.kind in _TAIL


class DelayParams(FaultParams):
    delay: Duration
    jitter: Duration = 0.0


@register
class SlowFirstToken(StreamFault):
    """The headers come at once, the first token after ``delay`` (+ seeded jitter)."""

    name = "slow_first_token"
    Params: ClassVar[type[FaultParams]] = DelayParams

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        p: DelayParams = self.params  # type: ignore[assignment]
        waited = False
        async for event in events:
            if not waited and (event.kind == "content" or event.kind in _TAIL):
                waited = True
                await ctx.clock.sleep(p.delay + p.jitter * ctx.draw("jitter"))
            yield event


class CutParams(FaultParams):
    after_tokens: int = Field(default=3, ge=0)
    mode: Literal["close", "reset"] = "close"


@register
class Cut(StreamFault):
    """The stream stops after ``after_tokens`` tokens with no terminator: the connection closes."""

    name = "cut"
    Params: ClassVar[type[FaultParams]] = CutParams

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        p: CutParams = self.params  # type: ignore[assignment]
        sent = 0
        async for event in events:
            if _at_position(event, sent, p.after_tokens):
                raise AbortConnection(p.mode, f"chaos: cut after {sent} tokens")
            yield event
            sent += event.tokens if event.kind == "content" else 0


class StallParams(FaultParams):
    after_tokens: int = Field(default=3, ge=0)
    duration: Duration = 30.0
    then: Literal["resume", "close"] = "close"


@register
class Stall(StreamFault):
    """After ``after_tokens`` tokens nothing comes for ``duration``; then the stream resumes or closes."""

    name = "stall"
    Params: ClassVar[type[FaultParams]] = StallParams

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        p: StallParams = self.params  # type: ignore[assignment]
        sent, stalled = 0, False
        async for event in events:
            if not stalled and _at_position(event, sent, p.after_tokens):
                stalled = True
                await ctx.clock.sleep(p.duration)
                if p.then == "close":
                    raise AbortConnection("close", f"chaos: stalled after {sent} tokens")
            yield event
            sent += event.tokens if event.kind == "content" else 0


class MalformedParams(FaultParams):
    at: int = Field(default=2, ge=0, description="0-based event position")
    payload: str | None = Field(default=None, description="raw frame; default: a data line of broken JSON")
    replace: bool = Field(
        default=False, description="replace the event at that position instead of inserting"
    )


@register
class MalformedEvent(StreamFault):
    """A frame that is not valid SSE JSON at event position ``at``; SDKs fail to decode it."""

    name = "malformed_event"
    Params: ClassVar[type[FaultParams]] = MalformedParams

    def _frame(self, request: MockRequest) -> StreamEvent:
        p: MalformedParams = self.params  # type: ignore[assignment]
        if p.payload is not None:
            raw = p.payload if p.payload.endswith("\n\n") else p.payload + "\n\n"
        elif request.provider == "anthropic":
            raw = 'event: content_block_delta\ndata: {"type": "content_block_delta", "delta": {"te\n\n'
        else:
            raw = 'data: {"choices": [{"delta": {"content": "unterminated\n\n'
        return StreamEvent(kind="raw", data="", raw=raw.encode())

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        p: MalformedParams = self.params  # type: ignore[assignment]
        done = False
        position = 0
        async for event in events:
            if not done and (position >= p.at or event.kind == "done"):
                done = True
                yield self._frame(request)
                if p.replace and event.kind != "done":
                    position += 1
                    continue
            yield event
            position += 1
        if not done:
            yield self._frame(request)


@register
class DropTerminator(StreamFault):
    """No ``data: [DONE]`` (OpenAI, Mistral) or ``message_stop`` (Anthropic) at the end."""

    name = "drop_terminator"

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        async for event in events:
            if event.kind != "done":
                yield event


class ErrorEventParams(FaultParams):
    after_tokens: int = Field(default=3, ge=0)
    type: str | None = Field(default=None, description="error type; default overloaded/server error")
    message: str | None = None


@register
class ErrorEvent(StreamFault):
    """An in-band error event in the provider's format after ``after_tokens`` tokens; the
    stream then ends. The OpenAI SDK raises ``APIError`` from its iterator, Anthropic's an
    ``APIStatusError``-like error carrying ``error.type``."""

    name = "error_event"
    Params: ClassVar[type[FaultParams]] = ErrorEventParams

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        p: ErrorEventParams = self.params  # type: ignore[assignment]
        event_out = stream_error_event(request.provider, p.type, p.message)
        sent = 0
        async for event in events:
            if _at_position(event, sent, p.after_tokens):
                yield event_out
                return
            yield event
            sent += event.tokens if event.kind == "content" else 0
        yield event_out


class PingFloodParams(FaultParams):
    count: int = Field(default=50, ge=1, description="pings sent before each affected event")
    every_token: bool = Field(default=False, description="before every content event, not only the first")
    interval: Duration = Field(default=0.0, description="pause between pings")


def ping_event(provider: str) -> StreamEvent:
    """Anthropic's ``ping`` event; an SSE comment line for data-only providers (ignored by SDKs)."""
    if provider == "anthropic":
        return StreamEvent(kind="ping", data=json.dumps({"type": "ping"}), event="ping")
    return StreamEvent(kind="ping", data="", raw=b": ping\n\n")


@register
class PingFlood(StreamFault):
    """Many keep-alive pings instead of tokens: a stream that is alive but says nothing."""

    name = "ping_flood"
    Params: ClassVar[type[FaultParams]] = PingFloodParams

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        p: PingFloodParams = self.params  # type: ignore[assignment]
        flooded = False
        async for event in events:
            if event.kind == "content" and (p.every_token or not flooded):
                flooded = True
                for _ in range(p.count):
                    if p.interval:
                        await ctx.clock.sleep(p.interval)
                    yield ping_event(request.provider)
            yield event


@register
class DropUsage(StreamFault):
    """The usage never comes: OpenAI's usage chunk (``stream_options.include_usage``) is dropped;
    Mistral's final chunk loses its ``usage``. Anthropic always reports usage in
    ``message_start``, so its streams are not targeted."""

    name = "drop_usage"

    def applies_to(self, request: MockRequest) -> bool:
        return request.provider != "anthropic" and super().applies_to(request)

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        async for event in events:
            if event.kind == "usage":
                continue
            if event.kind == "finish" and '"usage"' in event.data:
                event = _without_usage(event)
            yield event


def _without_usage(event: StreamEvent) -> StreamEvent:
    try:
        payload = json.loads(event.data)
    except ValueError:
        return event
    if isinstance(payload, dict) and payload.pop("usage", None) is not None:
        return StreamEvent(
            kind=event.kind, data=json.dumps(payload, separators=(",", ":")), event=event.event
        )
    return event


class BandwidthParams(FaultParams):
    bytes_per_second: float = Field(gt=0)


@register
class Bandwidth(StreamFault):
    """Events are delayed so the stream never goes faster than ``bytes_per_second``."""

    name = "bandwidth"
    Params: ClassVar[type[FaultParams]] = BandwidthParams

    async def transform(self, events: Events, request: MockRequest, ctx: FaultContext) -> Events:
        p: BandwidthParams = self.params  # type: ignore[assignment]
        async for event in events:
            await ctx.clock.sleep(len(event.encode()) / p.bytes_per_second)
            yield event
