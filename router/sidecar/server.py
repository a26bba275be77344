"""The sidecar app on a socket, as ``turnout serve`` runs it: the front door, aiohttp behind it.

:class:`SidecarServer` listens with :class:`router.sidecar.front.Front` (the hot endpoints served
directly) and hands every other connection to the app's aiohttp server. ``turnout serve``, the
drills' sidecar mode and the tests all start the sidecar through it, so they exercise the same
stack. It mirrors the parts of ``aiohttp.test_utils.TestServer`` the tests use (``start_server``,
``make_url``, ``close``, ``async with``).
"""

from __future__ import annotations

import asyncio
import socket
from types import TracebackType
from typing import Self

from aiohttp import web
from yarl import URL

from router.sidecar.app import DISPATCH
from router.sidecar.front import Front
from router.sidecar.state import STATE

__all__ = ["SidecarServer"]


class SidecarServer:
    def __init__(
        self,
        app: web.Application,
        host: str = "127.0.0.1",
        port: int = 0,
        *,
        backlog: int = 1024,
        reuse_port: bool = False,
        sock: socket.socket | None = None,
    ):
        self.app = app
        self.reuse_port = reuse_port  # share the port with other processes (turnout serve --workers)
        self.sock = sock  # a listening socket to serve on instead of binding one
        self.host = host
        self.port = port
        self.backlog = backlog
        self.runner: web.AppRunner | None = None
        self.front: Front | None = None
        self._server: asyncio.Server | None = None

    async def start_server(self) -> Self:
        settings = self.app[STATE].settings.server
        self.runner = web.AppRunner(
            self.app,
            access_log=None,
            handler_cancellation=True,  # a client that goes away cancels the upstream call
            shutdown_timeout=settings.drain_timeout,
            handle_signals=False,
        )
        await self.runner.setup()  # the app's start-up: the router is built here
        assert self.runner.server is not None
        self.front = Front(
            self.app[DISPATCH],
            self.runner.server,
            max_body=settings.max_body_bytes,
            head_timeout=settings.head_timeout,
            body_timeout=settings.body_timeout,
            max_connections=settings.max_connections,
        )
        self.app[STATE].on_server_settings.append(self.front.apply)
        loop = asyncio.get_running_loop()
        if self.sock is not None:
            self._server = await loop.create_server(self.front, sock=self.sock, backlog=self.backlog)
        else:
            self._server = await loop.create_server(
                self.front, self.host, self.port, backlog=self.backlog, reuse_port=self.reuse_port or None
            )
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    start = start_server

    def make_url(self, path: str) -> URL:
        return URL(f"http://{self.host}:{self.port}{path}")

    def stop_accepting(self) -> None:
        """No new connections; idle kept-alive ones close, busy ones after their answer."""
        if self._server is not None:
            self._server.close()
        if self.front is not None:
            self.front.shutdown()

    async def close(self, timeout: float | None = None) -> None:
        """Stop; answers under way on the front door's connections get ``timeout`` (default: the
        settings' ``drain_timeout``) to finish, aiohttp's get ``drain_timeout`` in the app's
        shutdown; then the app shuts down."""
        self.stop_accepting()
        if self.front is not None:
            if timeout is None:
                timeout = self.app[STATE].settings.server.drain_timeout
            await self.front.drain(timeout)
        if self.runner is not None:
            await self.runner.cleanup()
            self.runner = None
        self._server = None  # closed above; its listening socket is gone

    async def __aenter__(self) -> Self:
        return await self.start_server()

    async def __aexit__(
        self, et: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
