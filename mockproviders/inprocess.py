"""The in-process front end: the mock without a socket, for httpx2-based SDKs.

Two ways in:

- :class:`MockTransport`, an ``httpx2`` transport (async and sync) that feeds the core::

      client = openai.AsyncOpenAI(api_key="sk-test", base_url="http://mock/openai/v1",
                                  http_client=httpx2.AsyncClient(transport=MockTransport(core)))

  Requests to the real API hosts (``https://api.openai.com/v1`` …) or to any host with a
  ``/openai``, ``/anthropic`` or ``/mistral`` path prefix reach the matching provider.
- :func:`mock_providers`, a context manager that answers the three providers' base URLs (the
  real API hosts by default) in process, so SDK clients constructed normally (no
  ``http_client``) reach the mock; other hosts are untouched. It patches the default httpx2 (and
  httpx) transports, see :mod:`mockproviders.intercept` for how and why.

Transport faults: :class:`~mockproviders.types.AbortConnection` becomes ``httpx2.ReadError``
("reset") or ``httpx2.RemoteProtocolError`` ("close"), as httpcore reports them on a socket;
``MockRequest.hold`` sleeps the request's read timeout on the core's clock, then raises
``httpx2.ReadTimeout``.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import httpx2

from mockproviders.config import MockConfig
from mockproviders.core import MockCore
from mockproviders.journal import Journal
from mockproviders.types import AbortConnection, MockResponse, StreamEvent

DEFAULT_BASE_URLS = {
    "openai": "https://api.openai.com/v1",
    "anthropic": "https://api.anthropic.com",
    "mistral": "https://api.mistral.ai",
}
_PROVIDER_SUFFIX = {"openai": "/v1", "anthropic": "", "mistral": ""}


def _abort_error(exc: AbortConnection, request: httpx2.Request, *, mid_body: bool) -> httpx2.TransportError:
    if exc.mode == "reset":
        return httpx2.ReadError("[Errno 104] Connection reset by peer", request=request)
    if mid_body:
        msg = "peer closed connection without sending complete message body (incomplete chunked read)"
    else:
        msg = "Server disconnected without sending a response."
    return httpx2.RemoteProtocolError(msg, request=request)


class _AsyncEvents(httpx2.AsyncByteStream):
    def __init__(self, events: AsyncIterator[StreamEvent], request: httpx2.Request) -> None:
        self._events = events
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        try:
            async for event in self._events:
                yield event.encode()
        except AbortConnection as exc:
            raise _abort_error(exc, self._request, mid_body=True) from None

    async def aclose(self) -> None:
        closer = getattr(self._events, "aclose", None)
        if closer is not None:
            await closer()


class _SyncEvents(httpx2.SyncByteStream):
    def __init__(
        self, events: AsyncIterator[StreamEvent], request: httpx2.Request, run: Callable[[Any], Any]
    ) -> None:
        self._events = events
        self._request = request
        self._run = run

    def __iter__(self) -> Iterator[bytes]:
        async def step() -> StreamEvent | None:
            try:
                return await anext(self._events)
            except StopAsyncIteration:
                return None

        while True:
            try:
                event = self._run(step())
            except AbortConnection as exc:
                raise _abort_error(exc, self._request, mid_body=True) from None
            if event is None:
                return
            yield event.encode()

    def close(self) -> None:
        closer = getattr(self._events, "aclose", None)
        if closer is not None:
            self._run(closer())


class MockTransport(httpx2.AsyncBaseTransport, httpx2.BaseTransport):
    """An httpx2 transport answering from a :class:`MockCore` (a new default one if None).

    ``base_urls`` maps a provider to the base URL its SDK client uses, when that is neither the
    real API's nor one with the provider's path prefix.
    """

    def __init__(self, core: MockCore | None = None, *, base_urls: Mapping[str, str] | None = None) -> None:
        self.core = core if core is not None else MockCore()
        urls = {**DEFAULT_BASE_URLS, **(base_urls or {})}
        mounts = []
        for provider, url in urls.items():
            url = url.rstrip("/")
            suffix = _PROVIDER_SUFFIX[provider]
            if suffix and url.endswith(suffix):
                url = url[: -len(suffix)]
            mounts.append((url, provider))
        self._mounts = sorted(mounts, key=lambda m: -len(m[0]))
        self._thread_loop: asyncio.AbstractEventLoop | None = None
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def provider_for(self, url: str) -> str | None:
        """The provider whose base URL ``url`` is under, or None."""
        full = url.split("?", 1)[0].split("#", 1)[0]
        for prefix, provider in self._mounts:
            if full.startswith(prefix) and (len(full) == len(prefix) or full[len(prefix)] == "/"):
                return provider
        return None

    def mock_path(self, url: httpx2.URL) -> str:
        """The core's path for ``url``: ``/<provider>/<provider-relative path>``."""
        full = str(url.copy_with(query=None, fragment=None))
        query = f"?{url.query.decode()}" if url.query else ""
        for prefix, provider in self._mounts:
            if full.startswith(prefix) and (len(full) == len(prefix) or full[len(prefix)] == "/"):
                return f"/{provider}{full[len(prefix) :]}{query}"
        return url.path + query

    def _hold(self, request: httpx2.Request) -> Callable[[], Awaitable[None]]:
        timeout = request.extensions.get("timeout") or {}
        read = timeout.get("read") if isinstance(timeout, dict) else None

        async def hold() -> None:
            if read is None:
                await asyncio.Event().wait()  # no read timeout: the client waits for ever
            else:
                await self.core.clock.sleep(float(read))
            raise httpx2.ReadTimeout("The read operation timed out", request=request)

        return hold

    async def _answer(self, request: httpx2.Request, body: bytes) -> MockResponse:
        try:
            return await self.core.dispatch(
                request.method, self.mock_path(request.url), request.headers, body, hold=self._hold(request)
            )
        except AbortConnection as exc:
            raise _abort_error(exc, request, mid_body=False) from None

    async def handle_async_request(self, request: httpx2.Request) -> httpx2.Response:
        body = await request.aread()
        answer = await self._answer(request, body)
        if answer.stream is None:
            return httpx2.Response(
                answer.status, headers=answer.headers, content=answer.body or b"", request=request
            )
        return httpx2.Response(
            answer.status,
            headers=answer.headers,
            stream=_AsyncEvents(answer.stream, request),
            request=request,
        )

    # -- sync clients: the core runs on a private event loop in a daemon thread ----------------

    def _run(self, coro: Any) -> Any:
        with self._lock:
            if self._thread_loop is None:
                loop = asyncio.new_event_loop()
                thread = threading.Thread(target=loop.run_forever, name="mockproviders-sync", daemon=True)
                thread.start()
                self._thread_loop, self._thread = loop, thread
        return asyncio.run_coroutine_threadsafe(coro, self._thread_loop).result()

    def handle_request(self, request: httpx2.Request) -> httpx2.Response:
        body = request.read()
        answer: MockResponse = self._run(self._answer(request, body))
        if answer.stream is None:
            return httpx2.Response(
                answer.status, headers=answer.headers, content=answer.body or b"", request=request
            )
        return httpx2.Response(
            answer.status,
            headers=answer.headers,
            stream=_SyncEvents(answer.stream, request, self._run),
            request=request,
        )

    def close(self) -> None:
        with self._lock:
            loop, self._thread_loop = self._thread_loop, None
            thread, self._thread = self._thread, None
        if loop is not None and thread is not None:
            loop.call_soon_threadsafe(loop.stop)
            thread.join()
            loop.close()

    async def aclose(self) -> None:
        self.close()


@dataclass
class InProcessMock:
    """What :func:`mock_providers` yields: the core, its journal and the transport answering."""

    core: MockCore
    transport: MockTransport
    base_urls: dict[str, str]

    @property
    def journal(self) -> Journal:
        return self.core.journal


@contextlib.contextmanager
def mock_providers(
    core: MockCore | None = None,
    *,
    config: MockConfig | None = None,
    seed: int | None = None,
    base_urls: Mapping[str, str] | None = None,
) -> Iterator[InProcessMock]:
    """Answer the providers' base URLs (the real ones by default) from ``core`` in this process.

    Any httpx2 or httpx client with the default transport reaches the mock, however and whenever
    it was made; requests to other URLs go on as before. ``base_urls`` adds or replaces a
    provider's URL (e.g. ``{"openai": "https://gateway.example/openai/v1"}``).
    """
    from mockproviders.intercept import Interception

    if core is None:
        core = MockCore(config, seed=seed)
    transport = MockTransport(core, base_urls=base_urls)
    urls = {**DEFAULT_BASE_URLS, **(base_urls or {})}
    try:
        with Interception(transport):
            yield InProcessMock(core=core, transport=transport, base_urls=urls)
    finally:
        transport.close()
