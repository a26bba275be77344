"""The HTTP half of every adapter: one keep-alive pool per provider, one attempt per call.

A provider module supplies pure functions (a :class:`Codec`); :class:`HttpAdapter` does the I/O,
enforces the attempt's limits and turns error statuses and cut streams into :mod:`router.errors`
classes (a :class:`~router.transport.Transport` raises those classes itself for failures of the
exchange; the adapter names the provider and model on them). The I/O goes through the given
transport, by default a keep-alive :class:`~router.transport.HttpPool` of the adapter's own.
Limits are measured on the router's :class:`~router.clock.Clock` and handed to the transport as
durations:

- ``connect``: establishing a new connection (a pooled one is reused at once);
- ``read`` (non-streaming): the whole answer, headers and body;
- ``first_token`` (streaming): from the request until the first content delta;
- ``idle`` (streaming): between meaningful events once content has begun (pings do not count);
- ``total``: the request's remaining budget; no wait goes past it.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from router import errors as E
from router.adapters.base import AdapterEvent, CallOptions, Deployment, StreamAccumulator
from router.classify import classify_response, malformed
from router.clock import SYSTEM_CLOCK, Clock
from router.transport import MAX_BODY, HttpPool, Request, Response, Transport
from router.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEnd,
    TextDelta,
    ToolCallDelta,
)
from turnout import safejson
from turnout.sse import SSEEvent, SSEParser

# What a codec's translation raises on a reply of an unexpected shape (a number where text was
# due, ``1e400`` tokens): a malformed reply, which falls back like any other, never a crash.
_SHAPE = (TypeError, ValueError, KeyError, IndexError, AttributeError, OverflowError)


def _translate(fn: Callable[[Any, Deployment], Any], body: Any, deployment: Deployment) -> Any:
    try:
        return fn(body, deployment)
    except _SHAPE as exc:
        raise malformed(
            f"unexpected reply shape ({type(exc).__name__}: {exc})",
            provider=deployment.provider,
            model=deployment.name,
        ) from None


@dataclass(frozen=True, slots=True)
class Codec:
    """A provider's pure functions: paths, headers, and translation to and from its format."""

    kind: str
    chat_path: Callable[[Deployment], str]
    auth_headers: Callable[[str | None], dict[str, str]]
    to_wire: Callable[[ChatRequest, Deployment], dict[str, Any]]
    from_wire: Callable[[Any, Deployment], ChatResponse]
    parse_event: Callable[[SSEEvent, StreamAccumulator], list[TextDelta | ToolCallDelta]]
    terminator: str  # named in the error when a stream ends without it
    # A stream whose body ended cleanly after a chunk with a finish reason is complete without
    # its terminator: OpenAI-style servers that omit `data: [DONE]` (some do) are not cut.
    complete_on_finish: bool = False
    embeddings_path: Callable[[Deployment], str] | None = None
    embed_to_wire: Callable[[EmbeddingRequest, Deployment], dict[str, Any]] | None = None
    embed_from_wire: Callable[[Any, Deployment], EmbeddingResponse] | None = None


def _min(*values: float | None) -> float | None:
    present = [v for v in values if v is not None]
    return min(present) if present else None


def _left(deadline: float | None, clock: Clock) -> float | None:
    return None if deadline is None else deadline - clock.now()


class HttpAdapter:
    """One provider over one :class:`~router.transport.Transport` (by default its own
    :class:`~router.transport.HttpPool`, at most ``connections`` in flight); limits on ``clock``."""

    def __init__(
        self,
        codec: Codec,
        *,
        connections: int = 256,
        max_reply_bytes: int = MAX_BODY,
        transport: Transport | None = None,
        clock: Clock = SYSTEM_CLOCK,
    ) -> None:
        self.codec = codec
        self.connections = connections
        self.clock = clock
        # A transport given from outside is its owner's to close; the pool made here is ours.
        self._own: HttpPool | None = None
        if transport is None:
            transport = self._own = HttpPool(limit=connections, max_body=max_reply_bytes)
        self.transport: Transport = transport

    async def aclose(self) -> None:
        if self._own is not None:
            await self._own.aclose()

    def _where(self, deployment: Deployment) -> dict[str, Any]:
        return {"provider": deployment.provider, "model": deployment.name}

    @staticmethod
    def _placed(exc: E.RouterError, deployment: Deployment) -> None:
        """Names a transport's error (raised without them) with the deployment it happened on."""
        if exc.provider is None:
            exc.provider, exc.model = deployment.provider, deployment.name

    async def _post_json(
        self, deployment: Deployment, url: str, payload: dict[str, Any], options: CallOptions
    ) -> Any:
        """POST and read a whole JSON answer; raises the classified error for anything else."""
        data = json.dumps(payload, separators=(",", ":")).encode()
        clock = self.clock
        limit = _min(options.read, options.total)
        deadline = clock.now() + limit if limit is not None else None
        resp: Response | None = None
        try:
            resp = await self.transport.handle_async_request(
                Request(url, data, deployment.headers, limit, options.connect)
            )
            if options.on_headers is not None:
                options.on_headers(resp.headers)
            body = await resp.read(_left(deadline, clock))
            status = resp.status
            resp.release()
        except E.RouterError as exc:  # the transport's, raised as the router's own errors
            if resp is not None:
                resp.close()
            self._placed(exc, deployment)
            raise
        except BaseException:
            if resp is not None:
                resp.close()
            raise
        if status >= 300:
            raise classify_response(
                self.codec.kind, status, body, resp.headers, **self._where(deployment), now_epoch=clock.wall()
            )
        try:
            return safejson.loads(body)
        except ValueError:
            raise malformed("response body is not JSON", **self._where(deployment), raw=body) from None

    async def complete(
        self, deployment: Deployment, request: ChatRequest, options: CallOptions
    ) -> ChatResponse:
        body = await self._post_json(
            deployment, deployment.chat_url, self.codec.to_wire(request, deployment), options
        )
        return _translate(self.codec.from_wire, body, deployment)

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: CallOptions
    ) -> EmbeddingResponse:
        codec = self.codec
        if codec.embed_to_wire is None or codec.embed_from_wire is None or not deployment.embeddings_url:
            raise E.NotFound(f"{codec.kind} has no embeddings API", **self._where(deployment))
        body = await self._post_json(
            deployment, deployment.embeddings_url, codec.embed_to_wire(request, deployment), options
        )
        return _translate(codec.embed_from_wire, body, deployment)

    async def stream(
        self, deployment: Deployment, request: ChatRequest, options: CallOptions
    ) -> AsyncIterator[AdapterEvent]:
        codec, where, clock = self.codec, self._where(deployment), self.clock
        wire = codec.to_wire(request, deployment)
        wire["stream"] = True
        data = json.dumps(wire, separators=(",", ":")).encode()
        start = clock.now()
        hard = start + options.total if options.total is not None else None
        first = _min(options.first_token, options.read)
        deadline = _min(start + first if first is not None else None, hard)

        def expired(begun: bool) -> E.RouterError:
            # Which limit ran out is the one the wait was given: the request's budget when it
            # was the nearer one (read from the deadline, not the clock: a test's fake clock
            # may not move while a real socket waits).
            if hard is not None and deadline is not None and deadline >= hard - 1e-3:
                return E.AttemptTimeout("the request's time budget ran out", **where)
            if begun:
                return E.StreamStalled(f"no event for {options.idle}s after output began", **where)
            return E.FirstTokenTimeout(f"no first token within {first}s", **where)

        try:
            resp = await self.transport.handle_async_request(
                Request(
                    deployment.chat_url, data, deployment.headers, _left(deadline, clock), options.connect
                )
            )
        except E.ReadTimeout:
            raise expired(False) from None
        except E.RouterError as exc:
            self._placed(exc, deployment)
            raise
        done = False
        try:
            if options.on_headers is not None:
                options.on_headers(resp.headers)
            if resp.status >= 300:
                try:
                    body = await resp.read(_left(deadline, clock))
                except E.RouterError:
                    body = b""
                raise classify_response(
                    codec.kind, resp.status, body, resp.headers, **where, now_epoch=clock.wall()
                )
            acc = StreamAccumulator(deployment)
            parser = SSEParser()
            begun = False
            idle = options.idle
            while not acc.done:
                try:
                    chunk = await resp.readany(_left(deadline, clock))
                except E.ReadTimeout:
                    raise expired(begun) from None
                except E.RouterError as exc:
                    raise E.StreamCut(f"connection lost mid-stream ({exc.message})", **where) from exc
                try:
                    events = parser.feed(chunk) if chunk else parser.close()
                except ValueError as exc:
                    raise malformed(str(exc), **where) from None
                for ev in events:
                    try:
                        deltas = codec.parse_event(ev, acc)
                    except _SHAPE as exc:
                        raise malformed(
                            f"unexpected event shape ({type(exc).__name__}: {exc})", **where
                        ) from None
                    if deltas:
                        begun = True
                        for d in deltas:
                            yield d
                    if begun and ev.event != "ping":
                        deadline = _min(clock.now() + idle if idle is not None else None, hard)
                    if acc.done:
                        break
                if not chunk:
                    break
            if not acc.done and not (codec.complete_on_finish and acc.finish_reason is not None):
                raise E.StreamCut(f"the stream ended without {codec.terminator}", **where)
            done = True
            yield StreamEnd(acc.response())
        finally:
            if done:
                resp.release()
            else:
                resp.close()  # unread bytes: the connection cannot be reused
