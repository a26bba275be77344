"""The aiohttp front end: the mock on a real socket, plus its admin routes under ``/_mock/``.

Routes: ``/openai/{...}``, ``/anthropic/{...}``, ``/mistral/{...}`` (any method) go to the core;
``GET /_mock/health``, ``GET /_mock/journal`` (``?since=INDEX``), ``DELETE /_mock/journal``
(clear it), ``POST /_mock/reset`` (journal, arrival count, rate limits and prompt cache).
Other paths are free for other layers (``chaos`` mounts ``/_chaos/``).

Transport faults: :class:`~mockproviders.types.AbortConnection` ``"reset"`` sets SO_LINGER 0
and aborts (the client sees ECONNRESET); ``"close"`` closes the socket, mid-body if the body had
begun (the client sees an incomplete chunked message). ``MockRequest.hold`` waits until the client
disconnects.
"""

from __future__ import annotations

import asyncio
import socket
import struct
from collections.abc import Sequence
from types import TracebackType
from typing import Self

from aiohttp import web

from mockproviders.config import MockConfig
from mockproviders.core import MockCore
from mockproviders.types import AbortConnection, Clock, Interceptor

CORE_KEY = web.AppKey("mockproviders_core", MockCore)
PROVIDER_PREFIXES = ("openai", "anthropic", "mistral")
BASE_PATHS = {"openai": "/openai/v1", "anthropic": "/anthropic", "mistral": "/mistral"}
_HOLD_POLL = 0.05  # seconds between checks that a held client is still there


def create_app(
    config: MockConfig | None = None,
    *,
    seed: int | None = None,
    interceptors: Sequence[Interceptor] = (),
    clock: Clock | None = None,
    core: MockCore | None = None,
) -> web.Application:
    """An aiohttp application serving all three providers; pass ``core`` to share one."""
    if core is None:
        core = MockCore(config, seed=seed, clock=clock, interceptors=interceptors)
    app = web.Application()
    app[CORE_KEY] = core
    app.router.add_get("/_mock/health", _health)
    app.router.add_get("/_mock/journal", _journal)
    app.router.add_delete("/_mock/journal", _clear_journal)
    app.router.add_post("/_mock/reset", _reset)
    for prefix in PROVIDER_PREFIXES:
        app.router.add_route("*", f"/{prefix}/{{tail:.*}}", _handle)
    return app


async def _handle(request: web.Request) -> web.StreamResponse:
    core = request.app[CORE_KEY]
    body = await request.read()

    async def hold() -> None:
        # aiohttp signals no disconnect to a handler that is not cancelled on it, so poll.
        while request.transport is not None and not request.transport.is_closing():  # noqa: ASYNC110
            await asyncio.sleep(_HOLD_POLL)

    try:
        answer = await core.dispatch(request.method, request.path_qs, request.headers, body, hold=hold)
    except AbortConnection as exc:
        drop_connection(request, exc.mode)
        return web.Response(status=500)  # never reaches the client: aiohttp sees a closed socket
    if answer.stream is None:
        return web.Response(status=answer.status, headers=answer.headers, body=answer.body)
    response = web.StreamResponse(status=answer.status, headers=answer.headers)
    await response.prepare(request)
    try:
        async for event in answer.stream:
            await response.write(event.encode())
    except AbortConnection as exc:
        drop_connection(request, exc.mode)
    except ConnectionError:
        pass  # the client went away mid-stream; nothing left to tell it
    return response


def drop_connection(request: web.Request, mode: str) -> None:
    """Close the client's socket: with a FIN (``close``) or an RST (``reset``)."""
    transport = request.transport
    if transport is None:
        return
    if mode == "reset":
        sock = transport.get_extra_info("socket")
        if sock is not None:
            # SO_LINGER with a zero timeout makes close() send RST instead of FIN.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        transport.abort()
    else:
        transport.close()


async def _health(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    return web.json_response({"status": "ok", "requests": len(core.journal), "seed": core.seed})


async def _journal(request: web.Request) -> web.Response:
    core = request.app[CORE_KEY]
    since = request.query.get("since", "0")
    if not (since.isascii() and since.isdigit() and len(since) <= 18):
        return web.json_response({"error": "since must be a non-negative integer"}, status=400)
    start = int(since)
    entries = [e.to_dict() for e in core.journal if e.index >= start]
    return web.json_response({"entries": entries})


async def _clear_journal(request: web.Request) -> web.Response:
    request.app[CORE_KEY].journal.clear()
    return web.Response(status=204)


async def _reset(request: web.Request) -> web.Response:
    request.app[CORE_KEY].reset()
    return web.Response(status=204)


class MockServer:
    """Runs the mock on a socket inside the current event loop (port 0 picks a free port).

    Use as ``async with MockServer() as server:``; ``server.base_urls["openai"]`` is the URL to
    give an SDK, ``server.core`` the core (journal, interceptors).
    """

    def __init__(
        self,
        config: MockConfig | None = None,
        *,
        seed: int | None = None,
        interceptors: Sequence[Interceptor] = (),
        clock: Clock | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        app: web.Application | None = None,
    ) -> None:
        self.app = (
            app if app is not None else create_app(config, seed=seed, interceptors=interceptors, clock=clock)
        )
        self.host = host
        self.port = port
        self._runner: web.AppRunner | None = None

    @property
    def core(self) -> MockCore:
        return self.app[CORE_KEY]

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def base_urls(self) -> dict[str, str]:
        return {p: self.url + path for p, path in BASE_PATHS.items()}

    async def start(self) -> Self:
        self._runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        server = site._server
        if self.port == 0 and server is not None:
            sockets = getattr(server, "sockets", None) or []
            self.port = sockets[0].getsockname()[1]
        return self

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
