"""Process-wide interception of the providers' API hosts at the HTTP transport level.

While an :class:`Interception` is active, every request an ``httpx2`` client sends to one of its
base URLs (``https://api.openai.com/v1``, ``https://api.anthropic.com``, ``https://api.mistral.ai``
by default) is answered by a :class:`~mockproviders.inprocess.MockTransport`; requests to any other
URL go on exactly as before. The same holds for the classic ``httpx`` package when it is installed
(it is a separate package with its own classes; when ``httpx2.alias_httpx()`` made them one, it
is patched once).

Why here: the official SDKs (openai, anthropic, mistralai) build their clients on
``httpx2.Client``/``AsyncClient`` with the default ``HTTPTransport``/``AsyncHTTPTransport``, also
behind a proxy (a mount is an ``HTTPTransport`` too). Replacing those two classes'
``handle_request``/``handle_async_request`` therefore catches every such client, including ones
built before the test started (the lookup happens per request, not per client), and needs no
``import httpx`` aliasing. It sits above httpcore, which is where respx patches by default, so a
test's own respx mocks of other hosts keep working: those requests fall through to the original
method, which calls the (respx-patched) connection pool. Clients with a transport of their own
(``http_client=httpx2.Client(transport=...)``, an aiohttp-backed client) are not intercepted;
point them at ``mock_server``'s URL instead.
"""

from __future__ import annotations

import importlib.util
import sys
import threading
from collections.abc import AsyncIterator, Iterator
from types import ModuleType
from typing import Any

import httpx2

from mockproviders.inprocess import MockTransport

_lock = threading.Lock()
_active: list[Interception] = []
_patched: list[tuple[type, str, Any]] = []


class Interception:
    """Routes the base URLs of ``transport`` to it while entered (nesting: the innermost wins)."""

    def __init__(self, transport: MockTransport) -> None:
        self.transport = transport

    def __enter__(self) -> Interception:
        with _lock:
            if not _active:
                _install()
            _active.append(self)
        return self

    def __exit__(self, *exc: object) -> None:
        with _lock:
            if self in _active:
                _active.remove(self)
            if not _active:
                _uninstall()


def active_transport(url: str) -> MockTransport | None:
    """The innermost active interception's transport if it serves ``url``."""
    for interception in reversed(tuple(_active)):  # a copy: another thread may enter or leave
        if interception.transport.provider_for(url) is not None:
            return interception.transport
    return None


# -- httpx2 ----------------------------------------------------------------------------------


def _install() -> None:
    sync_orig = httpx2.HTTPTransport.handle_request
    async_orig = httpx2.AsyncHTTPTransport.handle_async_request

    def handle_request(self: httpx2.HTTPTransport, request: httpx2.Request) -> httpx2.Response:
        mock = active_transport(str(request.url))
        if mock is None:
            return sync_orig(self, request)
        return mock.handle_request(request)

    async def handle_async_request(
        self: httpx2.AsyncHTTPTransport, request: httpx2.Request
    ) -> httpx2.Response:
        mock = active_transport(str(request.url))
        if mock is None:
            return await async_orig(self, request)
        return await mock.handle_async_request(request)

    _patch(httpx2.HTTPTransport, "handle_request", handle_request)
    _patch(httpx2.AsyncHTTPTransport, "handle_async_request", handle_async_request)
    classic = _classic_httpx()
    if classic is not None:
        _install_classic(classic)


def _patch(cls: type, name: str, new: Any) -> None:
    _patched.append((cls, name, cls.__dict__[name]))
    setattr(cls, name, new)


def _uninstall() -> None:
    while _patched:
        cls, name, original = _patched.pop()
        setattr(cls, name, original)


# -- the classic httpx package ---------------------------------------------------------------


def _classic_httpx() -> ModuleType | None:
    """The real ``httpx`` module if it is installed and not an alias of httpx2."""
    module = sys.modules.get("httpx")
    if module is None:
        if importlib.util.find_spec("httpx") is None:
            return None
        import httpx as module  # by now a test runs: whoever wanted to alias it has done so
    return None if module is httpx2 else module


def _to_httpx2(request: Any, body: bytes) -> httpx2.Request:
    return httpx2.Request(
        request.method,
        str(request.url),
        headers=list(request.headers.raw),
        content=body,
        extensions=dict(request.extensions),
    )


def _classic_error(httpx: ModuleType, exc: httpx2.TransportError, request: Any) -> Exception:
    cls = getattr(httpx, type(exc).__name__, None) or httpx.TransportError
    return cls(str(exc), request=request)


def _install_classic(httpx: ModuleType) -> None:
    sync_orig = httpx.HTTPTransport.handle_request
    async_orig = httpx.AsyncHTTPTransport.handle_async_request

    class SyncStream(httpx.SyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: httpx2.Response, request: Any) -> None:
            self._inner, self._request = inner, request

        def __iter__(self) -> Iterator[bytes]:
            try:
                yield from self._inner.stream  # type: ignore[misc]
            except httpx2.TransportError as exc:
                raise _classic_error(httpx, exc, self._request) from None

        def close(self) -> None:
            self._inner.close()

    class AsyncStream(httpx.AsyncByteStream):  # type: ignore[name-defined]
        def __init__(self, inner: httpx2.Response, request: Any) -> None:
            self._inner, self._request = inner, request

        async def __aiter__(self) -> AsyncIterator[bytes]:
            try:
                async for chunk in self._inner.stream:  # type: ignore[union-attr]
                    yield chunk
            except httpx2.TransportError as exc:
                raise _classic_error(httpx, exc, self._request) from None

        async def aclose(self) -> None:
            await self._inner.aclose()

    def handle_request(self: Any, request: Any) -> Any:
        mock = active_transport(str(request.url))
        if mock is None:
            return sync_orig(self, request)
        try:
            answer = mock.handle_request(_to_httpx2(request, request.read()))
        except httpx2.TransportError as exc:
            raise _classic_error(httpx, exc, request) from None
        return httpx.Response(
            answer.status_code,
            headers=answer.headers.raw,
            stream=SyncStream(answer, request),
            request=request,
        )

    async def handle_async_request(self: Any, request: Any) -> Any:
        mock = active_transport(str(request.url))
        if mock is None:
            return await async_orig(self, request)
        try:
            answer = await mock.handle_async_request(_to_httpx2(request, await request.aread()))
        except httpx2.TransportError as exc:
            raise _classic_error(httpx, exc, request) from None
        return httpx.Response(
            answer.status_code,
            headers=answer.headers.raw,
            stream=AsyncStream(answer, request),
            request=request,
        )

    _patch(httpx.HTTPTransport, "handle_request", handle_request)
    _patch(httpx.AsyncHTTPTransport, "handle_async_request", handle_async_request)
