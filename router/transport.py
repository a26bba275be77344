"""A lean HTTP/1.1 client for the router's calls to providers: keep-alive pools on asyncio + httptools.

Why not aiohttp's client: on the sidecar's hot path it was the largest single cost. Measured on
this project's 2-core machine, a pass-through hop built on ``aiohttp.ClientSession`` added about
0.7 ms at concurrency 1 where the same hop on this client added about 0.35 ms (two throwaway
pass-through proxies, same run; CHANGELOG.md has the figures and ``bench/bench_router.py`` the
router's). The router needs little of what a general client does: no
cookies, redirects, proxies, multipart or auth flows; one method (POST), bodies known in
advance, JSON or server-sent events back. So this module does just that:

- one pool per adapter, keyed by origin; idle connections are reused (most recent first) and
  dropped once the server closes them or they sit idle past ``keepalive``;
- at most ``limit`` requests in flight per pool (further ones wait their turn);
- the status line and headers parsed by httptools (llhttp); Content-Length, chunked and
  close-delimited bodies; gzip and deflate (zlib-wrapped or raw) answers decompressed;
  informational answers (``100 Continue``, ``103 Early Hints``) skipped;
- every answer's body bounded by ``max_body`` bytes after decompression (:class:`TooLarge`);
  a compressed body that ends before its compressed stream does is cut (:class:`PayloadError`);
- idle connections closed by a sweep once they pass ``keepalive``, not only when next wanted;
- the caller's time limits stay the caller's (``asyncio.timeout`` around the awaits); this
  module bounds only the connect.

A failure raises one of the :class:`TransportError` classes below, each saying how far the
exchange got, which :func:`router.classify.classify_exception` turns into the router's errors.
A response whose body was not read to the end closes its connection rather than reuse it.
"""

from __future__ import annotations

import asyncio
import collections
import ssl
import zlib
from collections.abc import Callable, Mapping
from typing import Any, cast
from urllib.parse import urlsplit

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

__all__ = [
    "ConnectError",
    "ConnectTimeout",
    "Disconnected",
    "HeadTimeout",
    "HttpPool",
    "PayloadError",
    "ProtocolError",
    "Response",
    "TooLarge",
    "TransportError",
]


class TransportError(ConnectionError):
    """Base of the failures below: the exchange with the server did not complete."""


class ConnectError(TransportError):
    """No connection could be made (refused, unreachable, DNS, TLS handshake)."""


class ConnectTimeout(TransportError, TimeoutError):
    """The connection was not established within the connect limit."""


class Disconnected(TransportError):
    """The server closed the connection before the answer's status line and headers."""


class PayloadError(TransportError):
    """The answer's body was cut: the connection ended before its announced end."""


class ProtocolError(TransportError):
    """The server's reply is not valid HTTP/1.1."""


class TooLarge(TransportError):
    """The answer's body is larger than the pool's ``max_body`` (after decompression)."""


class HeadTimeout(TransportError, TimeoutError):
    """The request was sent, but the answer's status line and headers did not come in time."""


_Origin = tuple[str, str, int]  # scheme, host, port
_READ_HIGH_WATER = 256 * 1024  # pause the socket when this much body is buffered unread
MAX_BODY = 64 << 20  # the default bound on one answer's body, decompressed


class _Conn(asyncio.Protocol):
    """One keep-alive connection; carries at most one exchange at a time."""

    __slots__ = (
        "_body",
        "_buffered",
        "_decoder",
        "_headers",
        "_informational",
        "_parser",
        "_paused",
        "_raw_headers",
        "_received",
        "_waiter",
        "closed",
        "complete",
        "error",
        "idle_since",
        "keep_alive",
        "max_body",
        "on_done",
        "origin",
        "status",
        "transport",
    )

    def __init__(self) -> None:
        self.transport: asyncio.Transport | None = None
        self.closed = False
        self.idle_since = 0.0
        self.origin: _Origin = ("", "", 0)
        self.max_body = MAX_BODY
        # One parser for the connection's life: llhttp starts on the next message by itself.
        self._parser = httptools.HttpResponseParser(self)
        self._reset()

    def _reset(self) -> None:
        self._raw_headers: list[tuple[bytes, bytes]] = []
        self._headers: CIMultiDictProxy[str] | None = None
        self._body: collections.deque[bytes] = collections.deque()
        self._buffered = 0
        self._received = 0  # body bytes of this answer so far, decompressed
        self._informational = False
        self._paused = False
        self._decoder: Any = None
        self._waiter: asyncio.Future[None] | None = None
        self.on_done: Callable[[_Conn], None] | None = None  # set while the rest is drained
        self.status = 0
        self.keep_alive = False
        self.complete = False
        self.error: TransportError | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(ProtocolError("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(ProtocolError(f"invalid HTTP reply ({exc})"))

    def eof_received(self) -> bool:
        return False  # close our side too: a half-closed connection is no use to us

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.complete or self.error is not None:
            return
        if self._headers is None:
            if self._waiter is not None:  # an exchange was under way
                why = f" ({exc})" if exc else ""
                self._fail(Disconnected(f"the server closed the connection before answering{why}"))
            return
        # A body with neither a length nor chunking ends with the connection.
        if self._close_delimited():
            self._finish()
        else:
            why = f" ({exc})" if exc else ""
            self._fail(PayloadError(f"the connection closed before the answer's end{why}"))

    # -- httptools callbacks ---------------------------------------------------------------------

    def on_header(self, name: bytes, value: bytes) -> None:
        self._raw_headers.append((name, value))

    def on_headers_complete(self) -> None:
        status = self._parser.get_status_code()
        if 100 <= status < 200:  # 100 Continue, 103 Early Hints: not the answer, which follows
            self._informational = True
            self._raw_headers = []
            return
        self.status = status
        headers: CIMultiDict[str] = CIMultiDict()
        for name, value in self._raw_headers:
            headers.add(name.decode("latin-1"), value.decode("latin-1"))
        self._headers = CIMultiDictProxy(headers)
        encoding = headers.get("content-encoding", "").lower()
        if encoding in ("gzip", "x-gzip"):
            self._decoder = "gzip"  # the decompressor is made when the first bytes come
        elif encoding == "deflate":
            self._decoder = "deflate"  # zlib-wrapped or raw: told apart by the first bytes
        self._wake()

    def on_body(self, body: bytes) -> None:
        if self.on_done is not None:
            return  # released before its end: the rest is read and dropped
        room = self.max_body - self._received
        if self._decoder is not None:
            if isinstance(self._decoder, str):
                self._decoder = zlib.decompressobj(_wbits(self._decoder, body))
            try:
                body = self._decoder.decompress(body, room + 1)  # never expands past the bound
            except zlib.error as exc:
                self._fail(PayloadError(f"cannot decompress the answer ({exc})"))
                return
            if not body:
                return
        self._received += len(body)
        if len(body) > room:
            self._fail(TooLarge(f"the answer's body is larger than {self.max_body} bytes"))
            return
        self._body.append(body)
        self._buffered += len(body)
        if self._buffered > _READ_HIGH_WATER and not self._paused and self.transport is not None:
            self._paused = True
            self.transport.pause_reading()
        self._wake()

    def on_message_complete(self) -> None:
        if self._informational:
            self._informational = False
            return
        self.keep_alive = self._parser.should_keep_alive()  # llhttp forgets it once the call returns
        self._finish()

    # -- internals -------------------------------------------------------------------------------

    def _close_delimited(self) -> bool:
        headers = self._headers
        return (
            headers is not None
            and "content-length" not in headers
            and ("chunked" not in headers.get("transfer-encoding", "").lower())
        )

    def _finish(self) -> None:
        decoder = self._decoder
        if decoder is not None and not isinstance(decoder, str) and self.on_done is None:
            if not decoder.eof:
                self._fail(PayloadError("the compressed answer ends before its compressed stream does"))
                return
            tail = decoder.flush()
            if tail:
                self._body.append(tail)
        self.complete = True
        self._wake()
        done = self.on_done
        if done is not None:
            self.on_done = None
            done(self)

    def _fail(self, error: TransportError) -> None:
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, deadline: float | None) -> None:
        """Until the parser has news; ``TimeoutError`` at ``deadline`` (loop time).

        A timer on the waiter rather than ``asyncio.timeout``: the same limit at a third of the
        cost, and a stream waits once per chunk."""
        if self.error is not None:
            raise self.error
        loop = asyncio.get_running_loop()
        self._waiter = waiter = loop.create_future()
        timer = loop.call_at(deadline, _expire, waiter) if deadline is not None else None
        try:
            await waiter
        finally:
            self._waiter = None
            if timer is not None:
                timer.cancel()
        if self.error is not None:
            raise self.error

    def close(self) -> None:
        self.closed = True
        if self.transport is not None:
            self.transport.close()

    def reusable(self) -> bool:
        return self.complete and self.keep_alive and not self.closed

    def take(self) -> bytes:
        """Everything buffered so far."""
        body = self._body
        data = body.popleft() if len(body) == 1 else b"".join(body)
        body.clear()
        self._buffered = 0
        if self._paused and self.transport is not None:
            self._paused = False
            self.transport.resume_reading()
        return data


def _wbits(encoding: str, first: bytes) -> int:
    """zlib's window bits for a body: gzip, or deflate as sent (zlib-wrapped per RFC 9110, or the
    raw stream some servers send, told apart by the zlib header's check bits)."""
    if encoding == "gzip":
        return 16 + zlib.MAX_WBITS
    wrapped = len(first) >= 2 and first[0] & 0x0F == 8 and (first[0] << 8 | first[1]) % 31 == 0
    return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS


def _expire(waiter: asyncio.Future[None]) -> None:
    if not waiter.done():
        waiter.set_exception(TimeoutError())


class Response:
    """An answer: status and headers at once; the body read whole or as it arrives.

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

    async def read(self, deadline: float | None = None) -> bytes:
        """The whole body (raises :class:`PayloadError` if it is cut, ``TimeoutError`` at
        ``deadline``, a time on the event loop's clock)."""
        conn = self._conn
        parts: list[bytes] = []
        while True:
            if conn._body:
                parts.append(conn.take())
            if conn.complete:
                return parts[0] if len(parts) == 1 else b"".join(parts)
            await conn._wait(deadline)

    async def readany(self, deadline: float | None = None) -> bytes:
        """What has arrived since the last call, waiting for some; ``b""`` at the end."""
        conn = self._conn
        while True:
            if conn._body:
                return conn.take()
            if conn.complete:
                return b""
            await conn._wait(deadline)

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
    """Keep-alive connections to any number of origins, for one event loop at a time."""

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

    async def post(
        self,
        url: str,
        body: bytes,
        headers: Mapping[str, str],
        *,
        connect_timeout: float | None = None,
        deadline: float | None = None,
    ) -> Response:
        """Send ``body`` and return once the answer's status and headers are in.

        ``connect_timeout`` bounds making a new connection (:class:`ConnectTimeout`);
        ``deadline`` (loop time) bounds the whole call (``TimeoutError``)."""
        origin, head = self._target(url)
        lines = [head]
        for name, value in headers.items():
            if "\n" in value or "\r" in value:
                raise ValueError(f"header {name!r} holds a line break")
            lines.append(f"{name}: {value}\r\n".encode("latin-1"))
        lines.append(b"content-length: %d\r\n\r\n" % len(body))
        lines.append(body)
        slots = self._bind()
        if slots.locked():  # at the limit: wait for a slot, within the deadline
            async with asyncio.timeout_at(deadline):
                await slots.acquire()
        else:
            await slots.acquire()  # returns at once
        try:
            if deadline is not None:
                left = deadline - asyncio.get_running_loop().time()
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
        except TimeoutError as exc:
            conn.close()
            slots.release()
            if isinstance(exc, TransportError):
                raise
            # The request is out: what timed out is the wait for the answer, not the connect.
            raise HeadTimeout("the request was sent but no answer came within the limit") from None
        except TransportError:
            if conn._headers is None:
                conn.close()
                slots.release()
                raise
            # The head is in and the body already failed (cut, too large): the reader sees it.
        except BaseException:
            conn.close()
            slots.release()
            raise
        return Response(conn, self)

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
            raise ConnectTimeout(f"no connection to {host}:{port} within {connect_timeout}s") from None
        except OSError as exc:  # refused, unreachable, DNS (gaierror), TLS (SSLError)
            raise ConnectError(f"cannot connect to {host}:{port}: {exc}") from exc
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
