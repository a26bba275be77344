"""Request handlers of the sidecar. The chat handler is the hot path: parse once, call, write once."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any, Protocol

from aiohttp import hdrs, web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from router.errors import RouterError
from router.sidecar.errors import router_error_answer, stream_error_body
from router.sidecar.lifecycle import RouterHolder
from router.sidecar.state import CURRENT_RECORD, STATE, State, reload
from router.sidecar.wire import (
    ChunkWriter,
    chat_body,
    decode_json,
    embeddings_json,
    error_frame,
    parse_chat,
    parse_embeddings,
)
from router.types import AuditRecord, ChatResponse, EmbeddingResponse, StreamEnd, StreamStart, TextDelta

if TYPE_CHECKING:
    from router.sidecar.lifecycle import Generation


class Exchange(Protocol):
    """What the hot handlers need of a server: the request, and ways to answer it."""

    started: bool  # a streamed answer has begun (its status and headers are sent)

    @property
    def headers(self) -> Mapping[str, str]: ...

    @property
    def body(self) -> bytes: ...

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None: ...

    async def start(self, status: int, headers: dict[str, str], first: bytes) -> None: ...

    async def write(self, data: bytes) -> None: ...

    async def end(self, last: bytes = b"") -> None: ...


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


def _state(request: web.Request) -> State:
    return request.app[STATE]


class AiohttpExchange:
    """One request on aiohttp's server, answered through the same calls as the front door's
    :class:`router.sidecar.front.Exchange` (the handlers below serve both)."""

    __slots__ = ("body", "headers", "request", "response", "started")

    def __init__(self, request: web.Request, body: bytes) -> None:
        self.request = request
        self.headers: Mapping[str, str] = request.headers
        self.body = body
        self.response: web.StreamResponse | None = None
        self.started = False

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        self.response = web.Response(status=status, headers=headers, body=body)

    async def start(self, status: int, headers: dict[str, str], first: bytes) -> None:
        self.started = True
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


def _begin(state: State) -> tuple[Generation, list[AuditRecord | None], Any]:
    assert state.holder is not None
    slot: list[AuditRecord | None] = [None]
    token = CURRENT_RECORD.set(slot)
    return state.holder.acquire(), slot, token


def _meta(headers: Mapping[str, str]) -> dict[str, str] | None:
    """X-Turnout-Meta-<key> headers as {key: value}, or None (the usual case) without a dict."""
    meta = None
    for k, v in headers.items():
        if k[:_META_LEN].lower() == _META:
            if meta is None:
                meta = {}
            meta[k[_META_LEN:].lower()] = v
    return meta


async def chat(state: State, ex: Exchange) -> None:
    """``POST /v1/chat/completions`` on either server: parse once, call, write once."""
    t0 = time.perf_counter()
    req, include_usage = parse_chat(decode_json(ex.body))
    meta = _meta(ex.headers)
    if meta:  # X-Turnout-Meta-<key> headers: routing hints, as the body's metadata (router.patterns)
        req.metadata = {**req.metadata, **meta}
    auth = ex.headers.get("Authorization")
    if auth is not None and auth[:7].lower() == "bearer ":  # the caller's key: budgets per API key
        req.caller_key = auth[7:].strip()
    gen, slot, token = _begin(state)
    try:
        if req.stream:
            await _stream(ex, state, gen, req, include_usage, slot)
            return
        try:
            resp = await gen.router.complete(req)
        except RouterError as err:
            _error(ex, state, err, slot[0])
            return
        headers = _answer_headers(resp)
        overhead = time.perf_counter() - t0 - upstream_seconds(slot[0], resp.latency_s)
        headers[H_OVERHEAD] = f"{max(overhead, 0.0) * 1000:.3f}"
        state.metrics.observe_overhead(max(overhead, 0.0))
        ex.respond(200, headers, chat_body(resp, "chatcmpl-" + resp.request_id, int(time.time())))
    finally:
        CURRENT_RECORD.reset(token)
        RouterHolder.release(gen)


def _error(ex: Exchange, state: State, err: RouterError, record: AuditRecord | None) -> None:
    status, headers, body = router_error_answer(err, state.scrub)
    headers.update(_record_headers(record))
    ex.respond(status, headers, body)


async def _stream(
    ex: Exchange,
    state: State,
    gen: Generation,
    req: Any,
    include_usage: bool,
    slot: list[AuditRecord | None],
) -> None:
    """Stream events as OpenAI chunks. The status and headers leave with the first frame: the
    router yields StreamStart only once the first content has arrived, and that content follows
    at once, so holding them back costs no time to first token (and a write per stream)."""
    events = gen.router.stream(req)
    head: dict[str, str] | None = None  # the answer's headers, known at StreamStart
    writer: ChunkWriter | None = None
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
                }
                writer = ChunkWriter(
                    "chatcmpl-" + ev.request_id,
                    int(time.time()),
                    ev.provider_model or ev.model,
                    include_usage,
                )
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
        if head is None:  # nothing sent yet: an ordinary error response, with its status
            _error(ex, state, err, slot[0])
            return
        await emit(error_frame(stream_error_body(err, state.scrub)))
    except (asyncio.CancelledError, ConnectionResetError):
        raise  # the client went away: the finally below closes the upstream stream
    except Exception as err:
        if head is None:
            raise
        await emit(error_frame(stream_error_body(err, state.scrub)))
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
    req, fmt = parse_embeddings(decode_json(ex.body))
    gen, slot, token = _begin(state)
    try:
        try:
            resp = await gen.router.embed(req)
        except RouterError as err:
            _error(ex, state, err, slot[0])
            return
        ex.respond(200, _answer_headers(resp), json.dumps(embeddings_json(resp, fmt)).encode())
    finally:
        CURRENT_RECORD.reset(token)
        RouterHolder.release(gen)


async def chat_completions(request: web.Request) -> web.StreamResponse:
    ex = AiohttpExchange(request, await request.read())
    await chat(_state(request), ex)
    assert ex.response is not None
    return ex.response


async def embeddings(request: web.Request) -> web.StreamResponse:
    ex = AiohttpExchange(request, await request.read())
    await embed(_state(request), ex)
    assert ex.response is not None
    return ex.response


# The hot endpoints by the name the front door dispatches on (router.sidecar.front.FAST_PATHS).
HOT: dict[str, Callable[[State, Exchange], Awaitable[None]]] = {"chat": chat, "embeddings": embed}


async def models(request: web.Request) -> web.Response:
    state = _state(request)
    assert state.holder is not None
    data = [
        {"id": name, "object": "model", "created": state.started, "owned_by": "turnout"}
        for name in state.holder.current.router.route_names()
    ]
    return web.json_response({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def serviceable_routes(router: Any) -> list[str]:
    """Routes (and single deployments) with at least one deployment whose breaker is not open."""
    fn = getattr(router, "serviceable_routes", None)
    if callable(fn):
        return list(fn())
    snap = router.snapshot()
    deployments = snap.get("deployments", {})

    def usable(name: str) -> bool:
        breaker = deployments.get(name, {}).get("breaker", {})
        return breaker.get("state") != "open" or (breaker.get("retry_in_s") or 0) <= 0

    chains = {name: route.get("chain", []) for name, route in snap.get("routes", {}).items()}
    return [name for name in router.route_names() if any(usable(m) for m in chains.get(name, [name]))]


async def readyz(request: web.Request) -> web.Response:
    state = _state(request)
    if not state.ready or state.holder is None:
        return web.json_response({"status": "not ready", "reason": "no configuration loaded"}, status=503)
    routes = serviceable_routes(state.holder.current.router)
    if not routes:
        return web.json_response({"status": "not ready", "reason": "no route is serviceable"}, status=503)
    return web.json_response({"status": "ready", "routes": routes, "generation": state.holder.current.number})


async def metrics(request: web.Request) -> web.Response:
    state = _state(request)
    body = generate_latest(state.metrics.scrape)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def admin_state(request: web.Request) -> web.Response:
    state = _state(request)
    assert state.holder is not None
    gen = state.holder.current
    firing = [a.payload() for a in state.watcher.firing()] if state.watcher else []
    body = {
        "generation": gen.number,
        "inflight": state.active,
        "routes": gen.router.route_names(),
        "router": gen.router.snapshot(),
        "alerts": firing,
    }
    return web.Response(text=state.scrub(json.dumps(body, default=str)), content_type=_JSON)


async def admin_reload(request: web.Request) -> web.Response:
    ok, message = await reload(request.app)
    if not ok:
        return web.json_response(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_config",
                }
            },
            status=400,
        )
    hook = _state(request).on_admin_reload
    if hook is not None:
        hook()
    return web.json_response({"status": "reloaded", "message": message})


def add_routes(app: web.Application) -> None:
    app.router.add_post("/v1/chat/completions", chat_completions)
    app.router.add_post("/v1/embeddings", embeddings)
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/state", admin_state)
    app.router.add_post("/admin/reload", admin_reload)
