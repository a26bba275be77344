"""A :class:`~mockproviders.server.MockServer` on an event loop of its own in a daemon thread, for
callers that are not on an event loop the server could share: sync tests (``requests``, sync
SDK clients), tests run by anyio, or code with a loop of its own::

    with ThreadedMockServer(MockServer()) as server:
        requests.post(server.base_urls["openai"] + "/chat/completions", json=..., timeout=10)
"""

from __future__ import annotations

import asyncio
import threading
from typing import Any

from mockproviders.server import MockServer

_START_TIMEOUT = 30.0  # seconds to bind and start, or to shut down; a healthy machine takes ms


class ThreadedMockServer:
    """Starts ``server`` on a private loop in a daemon thread on enter; stops both on exit."""

    def __init__(self, server: MockServer) -> None:
        self.server = server
        self._loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None

    def _call(self, coro: Any) -> Any:
        assert self._loop is not None
        return asyncio.run_coroutine_threadsafe(coro, self._loop).result(timeout=_START_TIMEOUT)

    def __enter__(self) -> MockServer:
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(
            target=self._loop.run_forever, name="mockproviders-server", daemon=True
        )
        self._thread.start()
        try:
            self._call(self.server.start())
        except BaseException:
            self._stop_loop()
            raise
        return self.server

    def __exit__(self, *exc: object) -> None:
        try:
            self._call(self.server.close())
        finally:
            self._stop_loop()

    def _stop_loop(self) -> None:
        loop, thread = self._loop, self._thread
        self._loop = self._thread = None
        if loop is None or thread is None:
            return
        loop.call_soon_threadsafe(loop.stop)
        thread.join()
        loop.close()
