"""The sidecar's hot handlers (chat, messages, responses, embeddings) on either server. The chat
handler is the hot path: parse once, call, write once. The other endpoints: :mod:`router.sidecar.admin`."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from aiohttp import hdrs, web

from router.errors import RouterError
from router.outcome import Outcome
from router.sidecar import messages, responses
from router.sidecar.errors import Answer, Scrubber, json_answer, router_error_answer, stream_error_body
from router.sidecar.lifecycle import RouterHolder
from router.sidecar.parsing import decode_json
from router.sidecar.state import State
from router.sidecar.wire import (
    ChunkWriter,
    chat_body,
    embeddings_json,
    error_frame,
    parse_chat,
    parse_embeddings,
)
from router.types import (
    AuditRecord,
    ChatRequest,
    ChatResponse,
    EmbeddingResponse,
    StreamEnd,
    StreamStart,
    TextDelta,
    ToolCallDelta,
)

if TYPE_CHECKING:
    from router.sidecar.lifecycle import Generation


class Exchange(Protocol):
    """What the hot handlers need of a server: the request, and ways to answer it."""

    started: bool  # a streamed answer has begun (its status and headers are sent)
    status: int  # the answer's status, once answered (0 before)

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None: ...

    async def start(self, status: int, headers: dict[str, str], first: bytes) -> None: ...

    async def write(self, data: bytes) -> None: ...

    async def end(self, last: bytes = b"") -> None: ...


R = TypeVar("R")

H_MODEL = "x-turnout-model"
H_PROVIDER = "x-turnout-provider"
H_ROUTE = "x-turnout-route"
H_ATTEMPTS = "x-turnout-attempts"
H_OVERHEAD = "x-turnout-overhead-ms"
H_REQUEST_ID = "x-request-id"
_JSON = "application/json"
_META = "x-turnout-meta-"
_META_LEN = len(_META)
_SSE_HEADERS = {
    hdrs.CONTENT_TYPE: "text/event-stream",
    hdrs.CACHE_CONTROL: "no-cache",
    "X-Accel-Buffering": "no",
}


class _EventStream(web.StreamResponse):
    """An SSE response whose headers leave with its first frame, in one write.

    aiohttp's StreamResponse sends its headers on ``prepare()``, in a write (a syscall, a packet)
    of their own. The router yields StreamStart only once the first content has arrived, and that
    content follows at once, so waiting for it costs no time to first token.
    """

    _send_headers_immediately = False


# The hot endpoints' paths, as both servers route them (router.sidecar.front.FAST_PATHS).
PATHS = {
    "/v1/chat/completions": "chat",
    "/v1/embeddings": "embeddings",
    "/v1/messages": "messages",
    "/v1/messages/count_tokens": "count_tokens",
    "/v1/responses": "responses",
}


class AiohttpExchange:
    """One request on aiohttp's server, answered through the same calls as the front door's
    :class:`router.sidecar.front.Exchange` (the handlers below serve both)."""

    __slots__ = ("body", "headers", "request", "response", "started", "status")

    def __init__(self, request: web.Request, body: bytes) -> None:
        self.request = request
        self.headers: Mapping[str, str] = request.headers
        self.body = body
        self.response: web.StreamResponse | None = None
        self.started = False
        self.status = 0

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.status = status
        self.response = web.Response(status=status, headers=headers, body=body)

    async def start(self, status: int, headers: dict[str, str], first: bytes) -> None:
        self.started = True
        self.status = status
        response = self.response = _EventStream(status=status, headers=headers)
        await response.prepare(self.request)
        if first:
            await response.write(first)

    async def write(self, data: bytes) -> None:
        assert self.response is not None
        await self.response.write(data)

    async def end(self, last: bytes = b"") -> None:
        assert self.response is not None
        await self.response.write_eof(last)


def upstream_seconds(record: AuditRecord | None, fallback: float) -> float:
    """Time spent waiting on providers (tries and deliberate waits) for one request."""
    if record is None:
        return fallback
    return sum(a.latency_s + a.wait_s for a in record.attempts if a.outcome != "skipped")


def _answer_headers(resp: ChatResponse | EmbeddingResponse) -> dict[str, str]:
    return {
        hdrs.CONTENT_TYPE: _JSON,
        H_MODEL: resp.model,
        H_PROVIDER: resp.provider,
        H_ROUTE: resp.route,
        H_ATTEMPTS: str(resp.attempts),
        H_REQUEST_ID: resp.request_id,
    }


def _record_headers(record: AuditRecord | None) -> dict[str, str]:
    if record is None:
        return {}
    return {H_REQUEST_ID: record.request_id, H_ROUTE: record.route, H_ATTEMPTS: str(len(record.attempts))}


def _acquire(state: State) -> Generation:
    assert state.holder is not None
    return state.holder.acquire()


def _meta(headers: Mapping[str, str]) -> dict[str, str] | None:
    """X-Turnout-Meta-<key> headers as {key: value}, or None (the usual case) without a dict."""
    meta = None
    for k, v in headers.items():
        if k[:_META_LEN].lower() == _META:
            if meta is None:
                meta = {}
            meta[k[_META_LEN:].lower()] = v
    return meta


class StreamWriter(Protocol):
    """Turns one stream's events into a front end's frames (bytes)."""

    def text(self, text: str) -> bytes: ...

    def tool(self, ev: ToolCallDelta) -> bytes: ...

    def end(self, resp: ChatResponse) -> bytes: ...

    def error(self, frame: bytes) -> bytes: ...


@dataclass(frozen=True, slots=True)
class FrontEnd:
    """One API shape over the router: how its requests, answers, streams and errors look.

    ``parse`` gives the ChatRequest and whatever the answer must echo (``opts``); ``error``
    shapes any refusal (bad request, auth, limits) as ``(status, message, code, param=,
    headers=)``; ``router_error`` a router failure before output; ``stream_error`` the frame that
    ends a stream which failed after output began.
    """

    name: str
    parse: Callable[[dict[str, Any]], tuple[ChatRequest, Any]]
    body: Callable[[ChatResponse, Any], bytes]
    writer: Callable[[StreamStart, Any], StreamWriter]
    error: Callable[..., Answer]
    router_error: Callable[[RouterError, Scrubber], Answer]
    stream_error: Callable[[BaseException, Scrubber], bytes]


def _chat_body(resp: ChatResponse, include_usage: bool) -> bytes:
    return chat_body(resp, "chatcmpl-" + resp.request_id, int(time.time()))


def _chat_writer(ev: StreamStart, include_usage: bool) -> ChunkWriter:
    return ChunkWriter(
        "chatcmpl-" + ev.request_id, int(time.time()), ev.provider_model or ev.model, include_usage
    )


def _chat_stream_error(err: BaseException, scrub: Scrubber) -> bytes:
    return error_frame(stream_error_body(err, scrub))


CHAT = FrontEnd(
    "chat", parse_chat, _chat_body, _chat_writer, json_answer, router_error_answer, _chat_stream_error
)
MESSAGES = FrontEnd(
    messages.NAME,
    messages.parse,
    messages.answer_body,
    messages.EventWriter,
    messages.error_answer,
    messages.router_error,
    messages.stream_error,
)
RESPONSES = FrontEnd(
    responses.NAME,
    responses.parse,
    responses.answer_body,
    responses.EventWriter,
    json_answer,
    router_error_answer,
    responses.stream_error,
)


async def converse(front: FrontEnd, state: State, ex: Exchange) -> None:
    """A chat-shaped request in ``front``'s API on either server: parse once, call, write once."""
    t0 = time.perf_counter()
    req, opts = front.parse(decode_json(ex.body))
    meta = _meta(ex.headers)
    if meta:  # X-Turnout-Meta-<key> headers: routing hints, as the body's metadata (router.patterns)
        req.metadata = {**req.metadata, **meta}
    auth = ex.headers.get("Authorization")  # the caller's key, for budgets per API key
    if auth is not None and auth[:7].lower() == "bearer ":
        req.caller_key = auth[7:].strip()
    else:
        req.caller_key = ex.headers.get("x-api-key")  # Anthropic's clients
    gen = _acquire(state)
    try:
        if req.stream:
            await _stream(front, ex, state, gen, req, opts, t0)
            return
        out = await gen.router.complete_outcome(req)
        resp = _answered(front, ex, state, out)
        if resp is None:
            return
        headers = _answer_headers(resp)
        overhead = time.perf_counter() - t0 - upstream_seconds(out.audit, resp.latency_s)
        headers[H_OVERHEAD] = f"{max(overhead, 0.0) * 1000:.3f}"
        state.metrics.observe_overhead(max(overhead, 0.0))
        ex.respond(200, headers, front.body(resp, opts))
    finally:
        RouterHolder.release(gen)


async def chat(state: State, ex: Exchange) -> None:
    """``POST /v1/chat/completions``."""
    await converse(CHAT, state, ex)


async def anthropic_messages(state: State, ex: Exchange) -> None:
    """``POST /v1/messages``: Anthropic's Messages API over the same router."""
    await converse(MESSAGES, state, ex)


async def openai_responses(state: State, ex: Exchange) -> None:
    """``POST /v1/responses``: OpenAI's Responses API over the same router."""
    await converse(RESPONSES, state, ex)


async def count_tokens(state: State, ex: Exchange) -> None:
    """``POST /v1/messages/count_tokens``: the router's estimate, in Anthropic's answer shape."""
    count = messages.count_tokens(decode_json(ex.body))
    ex.respond(200, {hdrs.CONTENT_TYPE: _JSON}, b'{"input_tokens": %d}' % count)


def _error(front: FrontEnd, ex: Exchange, state: State, err: RouterError, record: AuditRecord | None) -> None:
    status, headers, body = front.router_error(err, state.scrub)
    headers.update(_record_headers(record))
    ex.respond(status, headers, body)


def _answered(front: FrontEnd, ex: Exchange, state: State, out: Outcome[R]) -> R | None:
    """The outcome's response; or None, its error answered in ``front``'s shape."""
    if out.response is None:
        assert out.error is not None
        _error(front, ex, state, out.error, out.audit)
    return out.response


async def _stream(
    front: FrontEnd,
    ex: Exchange,
    state: State,
    gen: Generation,
    req: Any,
    opts: Any,
    t0: float,
) -> None:
    """Stream events as ``front``'s frames. The status and headers leave with the first frame:
    the router yields StreamStart only once the first content has arrived, and that content
    follows at once, so holding them back costs no time to first token (and a write per stream)."""
    streaming = gen.router.stream_outcome(req)  # its audit record is there once it has one
    events = streaming.events
    head: dict[str, str] | None = None  # the answer's headers, known at StreamStart
    writer: StreamWriter | None = None
    ended = False

    async def emit(frame: bytes) -> None:
        if ex.started:
            await ex.write(frame)
        else:
            assert head is not None
            await ex.start(200, head, frame)

    try:
        async for ev in events:
            if type(ev) is TextDelta:
                assert writer is not None
                await emit(writer.text(ev.text))
            elif type(ev) is StreamStart:
                head = {
                    **_SSE_HEADERS,
                    H_MODEL: ev.model,
                    H_PROVIDER: ev.provider,
                    H_ROUTE: ev.route,
                    H_ATTEMPTS: str(ev.attempts),
                    H_REQUEST_ID: ev.request_id,
                    # up to the first token: the headers leave with it
                    H_OVERHEAD: f"{max(time.perf_counter() - t0 - ev.upstream_s, 0.0) * 1000:.3f}",
                }
                writer = front.writer(ev, opts)
            elif type(ev) is StreamEnd:
                assert writer is not None
                last = writer.end(ev.response)
                if not ex.started:
                    await emit(last)
                    last = b""
                # The last frames and the end of the chunked body in one write; nothing follows.
                await ex.end(last)
                ended = True
                break
            else:  # ToolCallDelta
                assert writer is not None
                await emit(writer.tool(ev))  # type: ignore[arg-type]
    except RouterError as err:
        if head is None or writer is None:  # nothing sent yet: an ordinary error response
            _error(front, ex, state, err, streaming.audit)
            return
        await emit(writer.error(front.stream_error(err, state.scrub)))
    except (asyncio.CancelledError, ConnectionResetError):
        raise  # the client went away: the finally below closes the upstream stream
    except Exception as err:
        if head is None or writer is None:
            raise
        await emit(writer.error(front.stream_error(err, state.scrub)))
    finally:
        aclose = getattr(events, "aclose", None)
        if aclose is not None:
            await aclose()
    if head is None:  # a stream that ended without a start: the router broke its contract
        raise RuntimeError("router stream ended before it started")
    if not ended:
        if not ex.started:
            await ex.start(200, head, b"")
        await ex.end()


async def embed(state: State, ex: Exchange) -> None:
    """``POST /v1/embeddings`` on either server."""
    t0 = time.perf_counter()
    req, fmt = parse_embeddings(decode_json(ex.body))
    gen = _acquire(state)
    try:
        out = await gen.router.embed_outcome(req)
        resp = _answered(CHAT, ex, state, out)
        if resp is None:
            return
        headers = _answer_headers(resp)
        overhead = time.perf_counter() - t0 - upstream_seconds(out.audit, 0.0)
        headers[H_OVERHEAD] = f"{max(overhead, 0.0) * 1000:.3f}"
        ex.respond(200, headers, json.dumps(embeddings_json(resp, fmt)).encode())
    finally:
        RouterHolder.release(gen)


Handler = Callable[[State, Exchange], Awaitable[None]]

# The hot endpoints by the name the front door dispatches on (router.sidecar.front.FAST_PATHS),
# with the front end whose shape their refusals and errors take.
HOT: dict[str, tuple[Handler, FrontEnd]] = {
    "chat": (chat, CHAT),
    "embeddings": (embed, CHAT),
    "messages": (anthropic_messages, MESSAGES),
    "count_tokens": (count_tokens, MESSAGES),
    "responses": (openai_responses, RESPONSES),
}
