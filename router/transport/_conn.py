"""One keep-alive HTTP/1.1 connection of :class:`router.transport.pool.HttpPool`, parsed by httptools.

The connection is an ``asyncio.Protocol``: llhttp's callbacks fill the answer's status, headers
and body as bytes arrive, and the pool's caller waits on :meth:`_Conn._wait` for news. Bodies are
decompressed (gzip, deflate zlib-wrapped or raw) and bounded by ``max_body`` as they come.
A failure is kept as a :mod:`router.errors` class and raised to whoever waits next.
"""

from __future__ import annotations

import asyncio
import collections
import zlib
from collections.abc import Callable
from typing import Any, cast

import httptools
from multidict import CIMultiDict, CIMultiDictProxy

from router import errors as E

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
        self.error: E.RouterError | None = None

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast(asyncio.Transport, transport)  # uvloop's are not subclasses

    def data_received(self, data: bytes) -> None:
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserUpgrade:
            self._fail(E.ConnectFailed("the server switched protocols"))
        except httptools.HttpParserError as exc:
            self._fail(E.ConnectFailed(f"invalid HTTP reply ({exc})"))

    def eof_received(self) -> bool:
        return False  # close our side too: a half-closed connection is no use to us

    def connection_lost(self, exc: BaseException | None) -> None:
        self.closed = True
        if self.complete or self.error is not None:
            return
        if self._headers is None:
            if self._waiter is not None:  # an exchange was under way
                why = f" ({exc})" if exc else ""
                self._fail(E.ConnectFailed(f"the server closed the connection before answering{why}"))
            return
        # A body with neither a length nor chunking ends with the connection.
        if self._close_delimited():
            self._finish()
        else:
            why = f" ({exc})" if exc else ""
            self._fail(E.StreamCut(f"the answer was cut: the connection closed before its end{why}"))

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
                self._fail(E.StreamCut(f"the answer was cut: cannot decompress it ({exc})"))
                return
            if not body:
                return
        self._received += len(body)
        if len(body) > room:
            self._fail(E.ReplyTooLarge(f"the answer is too large: its body passes {self.max_body} bytes"))
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
                self._fail(E.StreamCut("the answer was cut: its compressed stream ends early"))
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

    def _fail(self, error: E.RouterError) -> None:
        if self.error is None:
            self.error = error
        self.close()
        self._wake()

    def _wake(self) -> None:
        waiter = self._waiter
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    async def _wait(self, deadline: float | None) -> None:
        """Until the parser has news; :class:`~router.errors.ReadTimeout` at ``deadline`` (loop time).

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
        waiter.set_exception(E.ReadTimeout("read timeout: no answer within the limit"))
