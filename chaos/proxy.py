"""``turnout proxy``: a reverse proxy that applies the chaos engine's fault rules to any upstream.

Everything the rules leave alone passes through untouched: method, path, query, headers (less
the hop-by-hop ones) and body; answers are streamed back chunk by chunk as they arrive, never
buffered whole. Server-sent event streams are cut into frames by :class:`chaos.sse.FrameCutter`
and tagged like the mock's events, so the same stream faults apply mid-stream; a frame no fault
touches is forwarded byte for byte.

The provider of a request (for error shapes and targeting) comes from ``--provider``, else from
a path prefix (``/openai/…``, ``/anthropic/…``, ``/mistral/…``, the mock's layout), else from the
path (``/v1/messages`` is Anthropic; anything else OpenAI-style). Two honest limits: answers
cannot be patched here, so ``completion`` faults never apply through the proxy (the engine
treats them as not applicable: not counted, not journaled as applied); and a streamed request
is forwarded without ``accept-encoding``, so the proxy can read the frames it may have to cut.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from dataclasses import dataclass

import aiohttp
from aiohttp import web
from multidict import CIMultiDict
from yarl import URL

from chaos.control import add_control_routes
from chaos.engine import FAULT_HEADER, FAULT_PARAMS_HEADER, ChaosEngine
from chaos.sse import FrameCutter
from mockproviders.core import parse_body
from mockproviders.providers import PROVIDERS
from mockproviders.server import drop_connection
from mockproviders.types import AbortConnection, MockRequest, MockResponse, Provider, StreamEvent

HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "proxy-authenticate",
        "proxy-authorization",
        "proxy-connection",
        "te",
        "trailer",
        "trailers",
        "transfer-encoding",
        "upgrade",
    }
)
ENGINE_KEY = web.AppKey("chaos_engine", ChaosEngine)
_SESSION_KEY = web.AppKey("chaos_upstream_session", aiohttp.ClientSession)
_HOLD_POLL = 0.05


@dataclass(slots=True)
class ProxiedResponse(MockResponse):
    """An upstream answer that is not an event stream: its body chunks, forwarded as they come."""

    chunks: AsyncIterator[bytes] | None = None
    length: int | None = None


def _strip(headers: Mapping[str, str], also: frozenset[str] = frozenset()) -> CIMultiDict[str]:
    """Headers without hop-by-hop ones (including those the Connection header names)."""
    named = {t.strip().lower() for v in headers.get("connection", "").split(",") if (t := v.strip())}
    drop = HOP_BY_HOP | named | also
    out: CIMultiDict[str] = CIMultiDict()
    for k, v in headers.items():
        if k.lower() not in drop:
            out.add(k, v)
    return out


def infer_provider(path: str, default: Provider | None) -> tuple[Provider, str]:
    """(provider, provider-relative path) for ``path`` (see the module docstring)."""
    head, _, rest = path.lstrip("/").partition("/")
    if head in PROVIDERS:
        return PROVIDERS[head].name, "/" + rest
    if default is not None:
        return default, path
    return ("anthropic" if path.startswith("/v1/messages") else "openai"), path


class ChaosProxy:
    """The proxy's request handler, bound to an engine and an upstream base URL."""

    def __init__(self, engine: ChaosEngine, upstream: str, provider: Provider | None = None) -> None:
        self.engine = engine
        self.upstream = upstream.rstrip("/")
        self.provider = provider

    def _request(self, request: web.Request, body: bytes) -> MockRequest:
        provider, rel = infer_provider(request.path, self.provider)
        api = PROVIDERS[provider]
        headers = {k.lower(): v for k, v in request.headers.items()}
        data, model, stream = parse_body(body)

        async def hold() -> None:
            # aiohttp signals no event when a client leaves while its handler runs: poll the socket.
            while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
                await asyncio.sleep(_HOLD_POLL)

        return MockRequest(
            provider=provider,
            endpoint=api.endpoint(request.method, rel),
            method=request.method,
            path=rel,
            headers=headers,
            body=body,
            index=len(self.engine.journal),
            received_at=self.engine.clock.now(),
            json=data,
            model=model,
            api_key=api.api_key(headers),
            stream=stream,
            hold=hold,
        )

    async def handle(self, request: web.Request) -> web.StreamResponse:
        body = await request.read()
        mreq = self._request(request, body)
        session = request.app[_SESSION_KEY]

        async def forward(r: MockRequest) -> MockResponse:
            return await self._forward(session, request, r)

        try:
            answer = await self.engine(mreq, forward)
        except AbortConnection as exc:
            drop_connection(request, exc.mode)
            return web.Response(status=500)  # never reaches the client: the socket is gone
        return await self._render(request, answer)

    async def _forward(
        self, session: aiohttp.ClientSession, request: web.Request, r: MockRequest
    ) -> MockResponse:
        also = {"host", "content-length"}
        if self.engine.header_faults:
            also |= {FAULT_HEADER, FAULT_PARAMS_HEADER}
        if r.stream:
            also.add("accept-encoding")
        headers = _strip(request.headers, frozenset(also))
        # encoded=True: forward the path and query exactly as received (no re-quoting by yarl).
        url = URL(self.upstream + request.raw_path, encoded=True)
        try:
            upstream = await session.request(
                request.method, url, headers=headers, data=r.body or None, allow_redirects=False
            )
        except (aiohttp.ClientError, OSError) as exc:
            message = f"turnout proxy: upstream {self.upstream} failed: {exc.__class__.__name__}: {exc}"
            return MockResponse.json_body(502, {"error": {"message": message, "type": "upstream_error"}})
        out_headers = dict(_strip(upstream.headers, frozenset({"content-length"})))
        if upstream.content_type == "text/event-stream":
            return MockResponse(upstream.status, out_headers, stream=_events(upstream))
        return ProxiedResponse(
            upstream.status, out_headers, chunks=_chunks(upstream), length=upstream.content_length
        )

    async def _render(self, request: web.Request, answer: MockResponse) -> web.StreamResponse:
        if isinstance(answer, ProxiedResponse) and answer.chunks is not None:
            response = web.StreamResponse(status=answer.status, headers=answer.headers)
            if answer.length is not None:
                response.content_length = answer.length
            source: AsyncIterator[bytes] = answer.chunks
        elif answer.stream is not None:
            response = web.StreamResponse(status=answer.status, headers=answer.headers)
            source = _encode(answer.stream)
        else:
            return web.Response(status=answer.status, headers=answer.headers, body=answer.body)
        try:
            await response.prepare(request)
            async for chunk in source:
                await response.write(chunk)
            await response.write_eof()
        except AbortConnection as exc:
            drop_connection(request, exc.mode)
        except ConnectionError:
            pass  # the client went away mid-stream
        finally:
            close = getattr(source, "aclose", None)
            if close is not None:
                await close()
        return response


async def _encode(events: AsyncIterator[StreamEvent]) -> AsyncIterator[bytes]:
    async for event in events:
        yield event.encode()


async def _chunks(upstream: aiohttp.ClientResponse) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.content.iter_any():
            yield chunk
    finally:
        upstream.release()


async def _events(upstream: aiohttp.ClientResponse) -> AsyncIterator[StreamEvent]:
    parser = FrameCutter()
    try:
        async for chunk in upstream.content.iter_any():
            for event in parser.feed(chunk):
                yield event
        rest = parser.flush()
        if rest is not None:
            yield rest
    except aiohttp.ClientPayloadError as exc:
        # The upstream cut its stream: cut ours the same way rather than end it cleanly.
        raise AbortConnection("close", f"upstream stream broke: {exc}") from exc
    finally:
        upstream.release()


def create_proxy_app(
    upstream: str,
    engine: ChaosEngine | None = None,
    *,
    provider: Provider | None = None,
    client_max_size: int = 256 * 1024 * 1024,
) -> web.Application:
    """An aiohttp app proxying to ``upstream`` through ``engine`` (a fresh one if None), with
    the ``/_chaos/`` control API. One upstream session lives as long as the app."""
    engine = engine if engine is not None else ChaosEngine()
    engine.can_patch = False  # an upstream's answer is passed on, never rewritten
    proxy = ChaosProxy(engine, upstream, provider)
    app = web.Application(client_max_size=client_max_size)
    app[ENGINE_KEY] = engine

    async def session_ctx(app: web.Application) -> AsyncIterator[None]:
        timeout = aiohttp.ClientTimeout(total=None, sock_connect=30)
        connector = aiohttp.TCPConnector(limit=0)
        async with aiohttp.ClientSession(
            timeout=timeout, connector=connector, auto_decompress=False
        ) as session:
            app[_SESSION_KEY] = session
            yield

    app.cleanup_ctx.append(session_ctx)
    add_control_routes(app, engine)
    app.router.add_route("*", "/{tail:.*}", proxy.handle)
    return app
