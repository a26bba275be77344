"""The default transport: the router's own lean HTTP/1.1 client, keep-alive pools on asyncio + httptools.

Why not aiohttp's client: on the sidecar's hot path it was the largest single cost. Measured on
this project's 2-core machine, a pass-through hop built on ``aiohttp.ClientSession`` added about
0.7 ms at concurrency 1 where the same hop on this client added about 0.35 ms (two throwaway
pass-through proxies, same run; CHANGELOG.md has the figures and ``bench/bench_router.py`` the
router's). The router needs little of what a general client does: no cookies, redirects,
proxies, multipart or auth flows; one method (POST), bodies known in advance, JSON or
server-sent events back. So this module does just that:

- one pool per adapter, keyed by origin; idle connections are reused (most recent first) and
  dropped once the server closes them or they sit idle past ``keepalive``;
- at most ``limit`` requests in flight per pool (further ones wait their turn);
- the status line and headers parsed by httptools (llhttp); Content-Length, chunked and
  close-delimited bodies; gzip and deflate (zlib-wrapped or raw) answers decompressed;
  informational answers (``100 Continue``, ``103 Early Hints``) skipped;
- every answer's body bounded by ``max_body`` bytes after decompression
  (:class:`~router.errors.ReplyTooLarge`); a compressed body that ends before its compressed
  stream does is cut (:class:`~router.errors.StreamCut`);
- idle connections closed by a sweep once they pass ``keepalive``, not only when next wanted;
- the request's ``timeout`` and ``connect_timeout``, and each read's ``timeout``, enforced with
  one timer on the event loop per wait.

Failures are the router's own errors (:mod:`router.transport.base` lists them), each saying how
far the exchange got. A response whose body was not read to the end closes its connection
rather than reuse it.
"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Mapping
from urllib.parse import urlsplit

from multidict import CIMultiDictProxy

from router import errors as E
from router.transport._conn import MAX_BODY, _Conn, _Origin
from router.transport.base import Request

__all__ = ["MAX_BODY", "HttpPool", "HttpResponse"]


class HttpResponse:
    """An answer on one of the pool's connections (meets :class:`router.transport.base.Response`).

    Call :meth:`release` (body read to the end: the connection goes back to the pool) or
    :meth:`close` (anything else: the connection is dropped).
    """

    __slots__ = ("_conn", "_pool", "_settled", "headers", "status")

    def __init__(self, conn: _Conn, pool: HttpPool) -> None:
        self._conn = conn
        self._pool = pool
        self._settled = False
        self.status = conn.status
        assert conn._headers is not None
        self.headers: CIMultiDictProxy[str] = conn._headers

    async def read(self, timeout: float | None = None) -> bytes:
        """The whole body (:class:`~router.errors.StreamCut` if it is cut,
        :class:`~router.errors.ReadTimeout` once ``timeout`` seconds have passed)."""
        conn = self._conn
        deadline = None if timeout is None else asyncio.get_running_loop().time() + timeout
        parts: list[bytes] = []
        while True:
            if conn._body:
                parts.append(conn.take())
            if conn.complete:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            await conn._wait(deadline)

    async def readany(self, timeout: float | None = None) -> bytes:
        """What has arrived since the last call, waiting for some; ``b""`` at the end."""
        conn = self._conn
        while True:
            if conn._body:
                return conn.take()
            if conn.complete:
                return b""
            await conn._wait(None if timeout is None else asyncio.get_running_loop().time() + timeout)

    def release(self) -> None:
        """Done with the answer: its connection is reused (once the body's end is in)."""
        if not self._settled:
            self._settled = True
            self._pool._release(self._conn, drain=True)

    def close(self) -> None:
        """Done with the answer, which may be unfinished or broken: its connection is dropped."""
        if not self._settled:
            self._settled = True
            self._conn.close()
            self._pool._release(self._conn, drain=False)


class HttpPool:
    """Keep-alive connections to any number of origins, for one event loop at a time.

    The default :class:`router.transport.base.Transport`: one per provider adapter.
    """

    def __init__(
        self,
        *,
        limit: int = 256,
        keepalive: float = 15.0,
        drain_timeout: float = 2.0,
        ssl_context: ssl.SSLContext | None = None,
        max_body: int = MAX_BODY,
    ) -> None:
        self.limit = limit
        self.keepalive = keepalive
        self.max_body = max_body
        self._sweep: asyncio.TimerHandle | None = None
        self.drain_timeout = drain_timeout
        self._ssl_context = ssl_context
        self._idle: dict[_Origin, list[_Conn]] = {}
        self._targets: dict[str, tuple[_Origin, bytes]] = {}
        self._slots: asyncio.Semaphore | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    def _ssl(self) -> ssl.SSLContext:
        if self._ssl_context is None:
            self._ssl_context = ssl.create_default_context()
        return self._ssl_context

    def _target(self, url: str) -> tuple[_Origin, bytes]:
        """(origin, the request line's head), parsed once per URL."""
        found = self._targets.get(url)
        if found is None:
            parts = urlsplit(url)
            if parts.scheme not in ("http", "https") or not parts.hostname:
                raise ValueError(f"not an http(s) URL: {url!r}")
            port = parts.port or (443 if parts.scheme == "https" else 80)
            default = port == (443 if parts.scheme == "https" else 80)
            host = parts.hostname if ":" not in parts.hostname else f"[{parts.hostname}]"
            host_header = host if default else f"{host}:{port}"
            path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
            head = f"POST {path} HTTP/1.1\r\nhost: {host_header}\r\naccept-encoding: gzip, deflate\r\n"
            found = ((parts.scheme, parts.hostname, port), head.encode("latin-1"))
            if len(self._targets) < 1024:
                self._targets[url] = found
        return found

    def _bind(self) -> asyncio.Semaphore:
        loop = asyncio.get_running_loop()
        if self._loop is not loop:  # a new loop: connections of an old one are of no use
            if self._loop is not None and not self._loop.is_closed():
                for conns in self._idle.values():
                    for conn in conns:
                        conn.close()
            self._idle.clear()
            self._loop = loop
            self._slots = asyncio.Semaphore(self.limit)
        assert self._slots is not None
        return self._slots

    async def handle_async_request(self, request: Request) -> HttpResponse:
        """Send the request's body and return once the answer's status and headers are in.

        ``request.connect_timeout`` bounds making a new connection
        (:class:`~router.errors.ConnectTimeout`); ``request.timeout`` bounds the whole call
        (:class:`~router.errors.ReadTimeout` once the request is out). A bad URL or a header
        value holding a line break is refused before anything is sent (``ValueError``)."""
        return await self.post(
            request.url,
            request.body,
            request.headers,
            connect_timeout=request.connect_timeout,
            timeout=request.timeout,
        )

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float | None = None,
        timeout: float | None = None,
    ) -> HttpResponse:
        """:meth:`handle_async_request` without building a :class:`Request`."""
        origin, head = self._target(url)
        lines = [head]
        for name, value in headers.items():
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        lines.append(b"content-length: %d\r\n\r\n" % len(body))
        lines.append(body)
        slots = self._bind()
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if slots.locked():  # at the limit: wait for a slot, within the deadline
            try:
                async with asyncio.timeout_at(deadline):
                    await slots.acquire()
            except TimeoutError:
                raise E.ReadTimeout(f"read timeout: no free connection within {timeout}s") from None
        else:
            await slots.acquire()  # returns at once
        try:
            if deadline is not None:
                left = deadline - loop.time()
                connect_timeout = left if connect_timeout is None else min(connect_timeout, left)
            conn = await self._connect(origin, connect_timeout)
        except BaseException:
            slots.release()
            raise
        conn.max_body = self.max_body
        try:
            conn.transport.writelines(lines)  # type: ignore[union-attr]
            while conn._headers is None:
                await conn._wait(deadline)
        except E.ReadTimeout:
            conn.close()
            slots.release()
            # The request is out: what timed out is the wait for the answer, not the connect.
            raise E.ReadTimeout("read timeout: the request was sent but no answer came in time") from None
        except E.RouterError:
            if conn._headers is None:
                conn.close()
                slots.release()
                raise
            # The head is in and the body already failed (cut, too large): the reader sees it.
        except BaseException:
            conn.close()
            slots.release()
            raise
        return HttpResponse(conn, self)

    async def _connect(self, origin: _Origin, connect_timeout: float | None) -> _Conn:
        idle = self._idle.get(origin)
        if idle:
            now = asyncio.get_running_loop().time()
            while idle:
                conn = idle.pop()
                if conn.closed:
                    continue
                if now - conn.idle_since > self.keepalive:
                    conn.close()
                    continue
                conn._reset()
                return conn
        scheme, host, port = origin
        tls = self._ssl() if scheme == "https" else None
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(connect_timeout):
                _, conn = await loop.create_connection(
                    _Conn, host, port, ssl=tls, server_hostname=host if tls else None
                )
        except TimeoutError:
            raise E.ConnectTimeout(
                f"connect timeout: no connection to {host}:{port} within {connect_timeout}s"
            ) from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            raise E.ConnectFailed(f"cannot connect to {host}:{port}: {exc}") from exc
        conn.origin = origin
        return conn

    def _release(self, conn: _Conn, *, drain: bool) -> None:
        """Frees a slot; the connection goes back to the pool if its exchange ended cleanly.

        ``drain``: the caller read all it needed (a stream's end event) but the body's own end
        (a chunked body's last chunk) may still be on its way: the rest is read and dropped, and
        the connection pooled once it is in, or closed if it takes longer than ``drain_timeout``.
        """
        if self._slots is not None:
            self._slots.release()
        if conn.reusable():
            self._pool_idle(conn)
        elif drain and not conn.closed and conn.error is None and not conn.complete:
            conn.take()  # drop what is buffered (and resume reading if paused)
            conn.on_done = self._pool_idle
            asyncio.get_running_loop().call_later(self.drain_timeout, self._drain_expired, conn)
        else:
            conn.close()

    def _pool_idle(self, conn: _Conn) -> None:
        if conn.reusable():
            loop = asyncio.get_running_loop()
            conn.idle_since = loop.time()
            self._idle.setdefault(conn.origin, []).append(conn)
            if self._sweep is None:
                self._sweep = loop.call_later(self.keepalive, self._close_stale)
        else:
            conn.close()

    def _close_stale(self) -> None:
        """Close connections idle past ``keepalive``; again later while any stay pooled."""
        self._sweep = None
        if self._loop is None or self._loop.is_closed():
            return
        now = self._loop.time()
        left = False
        for origin, conns in list(self._idle.items()):
            fresh = [c for c in conns if not c.closed and now - c.idle_since <= self.keepalive]
            for c in conns:
                if c not in fresh:
                    c.close()
            if fresh:
                self._idle[origin] = fresh
                left = True
            else:
                del self._idle[origin]
        if left:
            self._sweep = self._loop.call_later(self.keepalive / 2, self._close_stale)

    @staticmethod
    def _drain_expired(conn: _Conn) -> None:
        if conn.on_done is not None:  # still not at the body's end: not worth waiting for
            conn.on_done = None
            conn.close()

    async def aclose(self) -> None:
        if self._sweep is not None:
            self._sweep.cancel()
            self._sweep = None
        for conns in self._idle.values():
            for conn in conns:
                conn.close()
        self._idle.clear()
