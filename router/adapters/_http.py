"""The HTTP half of every adapter: one keep-alive pool per provider, one attempt per call.

A provider module supplies pure functions (a :class:`Codec`); :class:`HttpAdapter` does the I/O,
enforces the attempt's limits and turns transport failures, error statuses and cut streams into
:mod:`router.errors` classes. Limits are enforced here on the event loop's clock:

- ``connect``: establishing a new connection (a pooled one is reused at once);
- ``read`` (non-streaming): the whole answer, headers and body;
- ``first_token`` (streaming): from the request until the first content delta;
- ``idle`` (streaming): between meaningful events once content has begun (pings do not count);
- ``total``: the request's remaining budget; no wait goes past it.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any

from router import errors as E
from router.adapters.base import AdapterEvent, CallOptions, Deployment, StreamAccumulator
from router.classify import classify_exception, classify_response, malformed
from router.transport import MAX_BODY, ConnectError, ConnectTimeout, HttpPool, Response
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

_TRANSPORT = (OSError, asyncio.TimeoutError)  # router.transport's errors are ConnectionErrors
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


class HttpAdapter:
    """One provider over one :class:`router.transport.HttpPool` (at most ``connections`` in flight)."""

    def __init__(self, codec: Codec, *, connections: int = 256, max_reply_bytes: int = MAX_BODY) -> None:
        self.codec = codec
        self.connections = connections
        self._pool = HttpPool(limit=connections, max_body=max_reply_bytes)

    async def aclose(self) -> None:
        await self._pool.aclose()

    def _where(self, deployment: Deployment) -> dict[str, Any]:
        return {"provider": deployment.provider, "model": deployment.name}

    async def _post_json(
        self, deployment: Deployment, url: str, payload: dict[str, Any], options: CallOptions
    ) -> Any:
        """POST and read a whole JSON answer; raises the classified error for anything else."""
        data = json.dumps(payload, separators=(",", ":")).encode()
        limit = _min(options.read, options.total)
        deadline = asyncio.get_running_loop().time() + limit if limit is not None else None
        phase = "connect"
        resp: Response | None = None
        try:
            resp = await self._pool.post(
                url, data, deployment.headers, connect_timeout=options.connect, deadline=deadline
            )
            phase = "read"
            if options.on_headers is not None:
                options.on_headers(resp.headers)
            body = await resp.read(deadline)
            status = resp.status
            resp.release()
        except BaseException as exc:
            if resp is not None:
                resp.close()
            if not isinstance(exc, _TRANSPORT):
                raise
            raise classify_exception(exc, **self._where(deployment), phase=phase) from exc
        if status >= 300:
            raise classify_response(self.codec.kind, status, body, resp.headers, **self._where(deployment))
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
        codec, where = self.codec, self._where(deployment)
        wire = codec.to_wire(request, deployment)
        wire["stream"] = True
        data = json.dumps(wire, separators=(",", ":")).encode()
        loop = asyncio.get_running_loop()
        start = loop.time()
        hard = start + options.total if options.total is not None else None
        first = _min(options.first_token, options.read)
        deadline = _min(start + first if first is not None else None, hard)

        def expired(begun: bool) -> E.RouterError:
            if hard is not None and loop.time() >= hard - 1e-3:
                return E.AttemptTimeout("the request's time budget ran out", **where)
            if begun:
                return E.StreamStalled(f"no event for {options.idle}s after output began", **where)
            return E.FirstTokenTimeout(f"no first token within {first}s", **where)

        try:
            resp = await self._pool.post(
                deployment.chat_url,
                data,
                deployment.headers,
                connect_timeout=options.connect,
                deadline=deadline,
            )
        except (ConnectTimeout, ConnectError) as exc:
            raise classify_exception(exc, **where, phase="connect") from exc
        except TimeoutError:
            raise expired(False) from None
        except _TRANSPORT as exc:
            raise classify_exception(exc, **where, phase="connect") from exc
        done = False
        try:
            if options.on_headers is not None:
                options.on_headers(resp.headers)
            if resp.status >= 300:
                try:
                    body = await resp.read(deadline)
                except _TRANSPORT:
                    body = b""
                raise classify_response(codec.kind, resp.status, body, resp.headers, **where)
            acc = StreamAccumulator(deployment)
            parser = SSEParser()
            begun = False
            idle = options.idle
            while not acc.done:
                try:
                    chunk = await resp.readany(deadline)
                except TimeoutError:
                    raise expired(begun) from None
                except _TRANSPORT as exc:
                    raise E.StreamCut(f"connection lost mid-stream ({type(exc).__name__})", **where) from exc
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
                        deadline = _min(loop.time() + idle if idle is not None else None, hard)
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
