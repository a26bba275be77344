"""The sidecar's front door: a lean HTTP/1.1 protocol for the hot path, aiohttp for the rest.

Why: measured on this project's 2-core machine, aiohttp's server spent about twice the CPU per
request of a plain asyncio protocol for the same pass-through (about 400 against 200 µs, two
throwaway proxies in one run; CHANGELOG.md), and at concurrency 1 that CPU is added latency.
So ``turnout serve`` listens with :class:`FrontProtocol`, which serves the two hot endpoints itself,
``POST /v1/chat/completions`` and ``POST /v1/embeddings``, when the request is a plain one:

- HTTP/1.1, a ``Content-Length`` body within the size limit, no ``Transfer-Encoding``,
  ``Expect`` or ``Upgrade``, an exact path (no query), header lines without control bytes.

Anything else (other paths, other methods, chunked bodies, ``Expect: 100-continue``, malformed
heads, oversize bodies) hands the connection, at that request's first byte, to aiohttp's server
running the full application, which then owns the connection: its parser, validation, error
pages, limits and routes apply unchanged. The hot endpoints answer through the same handler code
on either path (:mod:`router.sidecar.handlers`, through :class:`Exchange`).

On the fast path, as with aiohttp's ``handler_cancellation``: a client that disconnects cancels
its request's task (and so the upstream call); connections are kept alive, closed after
``keepalive_timeout`` idle seconds, and closed at once on ``Connection: close``.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import Awaitable, Callable
from http import HTTPStatus
from typing import Any

from multidict import CIMultiDict

from router.sidecar.errors import json_answer
from turnout.logs import get_logger

__all__ = ["Exchange", "Front", "FrontProtocol"]

log = get_logger("turnout.sidecar")

# The endpoints served here: path -> the handler's name in the dispatch table (the three front
# ends' hot paths: OpenAI chat and embeddings, Anthropic Messages, OpenAI Responses).
FAST_PATHS = {
    b"/v1/chat/completions": "chat",
    b"/v1/embeddings": "embeddings",
    b"/v1/messages": "messages",
    b"/v1/messages/count_tokens": "count_tokens",
    b"/v1/responses": "responses",
}
MAX_HEAD = 16 * 1024  # a longer head goes to aiohttp, which rejects it properly
MAX_HEADER_LINES = 100  # more header lines: aiohttp's (its own limits then apply)
MAX_LENGTH_DIGITS = 15  # a longer Content-Length is refused (400), as one not all ASCII digits
# A control byte other than TAB (a bare CR or LF included) once the head's CRLFs are replaced by
# TABs: not plain, aiohttp's. (One alternation with lookarounds cost 14 us a head; this 2.5 us.)
_IRREGULAR = re.compile(rb"[\x00-\x08\x0a-\x1f\x7f]")
_TOKEN_CHARS = b"!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"  # RFC 9110
_HANDED = frozenset({"transfer-encoding", "upgrade"})
_REASONS = {s.value: s.phrase.encode() for s in HTTPStatus}


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data) if data else b""  # an empty chunk would end the body


class Exchange:
    """One request as the handlers see it on the fast path: headers, body, and ways to answer.

    The aiohttp path has the same methods (``router.sidecar.handlers.AiohttpExchange``).
    """

    __slots__ = ("_proto", "body", "close", "headers", "started", "status")

    def __init__(self, proto: FrontProtocol, headers: CIMultiDict[str], body: bytes, close: bool) -> None:
        self._proto = proto
        self.headers = headers
        self.body = body
        self.close = close
        self.started = False  # a streamed answer has begun (its status is sent)
        self.status = 0  # the answer's status, once answered

    def _head(self, status: int, headers: dict[str, str], framing: bytes) -> bytes:
        if self._proto.front.closing:  # shutting down: this connection ends with this answer
            self.close = True
        lines = [f"{k}: {v}\r\n" for k, v in headers.items()]
        text = "".join(lines)
        if "\n" in text.replace("\r\n", "") or text.count("\r") != len(lines):
            raise ValueError("a response header value holds a line break")
        return (
            b"HTTP/1.1 %d %s\r\n" % (status, _REASONS.get(status, b"Unknown"))
            + text.encode()
            + framing
            + (b"connection: close\r\n\r\n" if self.close else b"\r\n")
        )

    def respond(self, status: int, headers: dict[str, str], body: bytes) -> None:
        """A whole answer."""
        self.status = status
        self._proto.write(self._head(status, headers, b"content-length: %d\r\n" % len(body)) + body)

    async def start(self, status: int, headers: dict[str, str], first: bytes) -> None:
        """Begin a streamed (chunked) answer with its first piece."""
        self.started = True
        self.status = status
        await self._proto.send(self._head(status, headers, b"transfer-encoding: chunked\r\n") + _chunk(first))

    async def write(self, data: bytes) -> None:
        """A further piece; pieces written in the same turn of the loop leave in one send (a
        provider's packet often carries many events). The first piece, with the status, leaves
        at once: time to first token is not traded for it."""
        if data:
            await self._proto.send_later(_chunk(data))

    async def end(self, last: bytes = b"") -> None:
        await self._proto.send(_chunk(last) + b"0\r\n\r\n")


Dispatch = Callable[[str, Exchange], Awaitable[None]]


class Front:
    """What every connection shares: the fast handlers, aiohttp's server for the rest, the limits."""

    def __init__(
        self,
        dispatch: Dispatch,
        fallback: Callable[[], asyncio.Protocol],
        *,
        max_body: int,
        keepalive_timeout: float = 75.0,
        head_timeout: float = 10.0,
        body_timeout: float = 60.0,
        max_connections: int = 4096,
    ) -> None:
        self.dispatch = dispatch
        self.fallback = fallback  # aiohttp's web.Server: a protocol per connection handed over
        self.max_body = max_body
        self.keepalive_timeout = keepalive_timeout
        self.head_timeout = head_timeout  # a request's first byte to the end of its head
        self.body_timeout = body_timeout  # the end of the head to the end of the body
        self.max_connections = max_connections  # open ones, handed over or not
        self.tick = min(keepalive_timeout, head_timeout, body_timeout) / 4
        self.open = 0
        self.refused = 0  # connections closed at once: over max_connections
        self.timed_out = 0  # requests answered 408: head or body not in time
        self.connections: set[FrontProtocol] = set()
        self.closing = False
        self.served = 0  # requests answered here
        self.handed_over = 0  # connections given to aiohttp

    def __call__(self) -> FrontProtocol:
        return FrontProtocol(self)

    def lost(self) -> None:
        self.open -= 1

    def apply(self, server: Any) -> None:
        """A reload's new limits (``router.sidecar.settings.ServerSettings``), for what comes next."""
        self.head_timeout = server.head_timeout
        self.body_timeout = server.body_timeout
        self.max_connections = server.max_connections
        self.tick = min(self.keepalive_timeout, self.head_timeout, self.body_timeout) / 4

    def shutdown(self) -> None:
        """Stop keeping connections alive: idle ones close now, busy ones after their answer."""
        self.closing = True
        for conn in list(self.connections):
            if conn.task is None:
                conn.close()

    async def drain(self, timeout: float) -> bool:
        """After :meth:`shutdown`: wait up to ``timeout`` for the answers under way, then close
        what is left (cancelling those requests). False if some had to be cut."""
        self.shutdown()
        tasks = [conn.task for conn in self.connections if conn.task is not None]
        if tasks:
            await asyncio.wait(tasks, timeout=timeout)
        cut = False
        for conn in list(self.connections):
            cut |= conn.task is not None
            conn.close()
        return not cut


class FrontProtocol(asyncio.Protocol):
    """One client connection, served request by request until it is handed to aiohttp."""

    def __init__(self, front: Front) -> None:
        self.front = front
        self.transport: asyncio.Transport | None = None
        self.buf = bytearray()
        self.task: asyncio.Task[None] | None = None
        self._pending: tuple[str, CIMultiDict[str], int, int, bool] | None = None
        self._writable: asyncio.Future[None] | None = None
        self._queued: list[bytes] = []  # pieces to leave together (send_later)
        self._paused_writing = False
        self._paused_reading = False
        self._idle: asyncio.TimerHandle | None = None
        self._last = 0.0  # loop time of the last request's end (or the connection's start)
        self._began = 0.0  # loop time of the buffered request's first byte
        self._head_at = 0.0  # loop time its head was complete
        self._lost = False

    # -- asyncio.Protocol ------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]
        front = self.front
        front.open += 1
        if front.open > front.max_connections:
            front.refused += 1
            self._lost = True  # nothing is read from it, nothing is written
            transport.close()
            return
        front.connections.add(self)
        self._arm_idle()

    def data_received(self, data: bytes) -> None:
        if not self.buf and self.task is None:
            self._began = asyncio.get_running_loop().time()
        self.buf += data
        if self.task is None:
            self._next()
        elif len(self.buf) > MAX_HEAD + self.front.max_body and not self._paused_reading:
            self._paused_reading = True  # a client sending far ahead of our answers waits
            assert self.transport is not None
            self.transport.pause_reading()

    def eof_received(self) -> bool:
        return False  # as aiohttp does: the client's end of sending is its end; close, cancel

    def connection_lost(self, exc: BaseException | None) -> None:
        self._lost = True
        self.front.lost()
        self.front.connections.discard(self)
        if self._idle is not None:
            self._idle.cancel()
        if self.task is not None:
            self.task.cancel()  # the client went away: stop its upstream call
        self._wake_writer()

    def pause_writing(self) -> None:
        self._paused_writing = True

    def resume_writing(self) -> None:
        self._paused_writing = False
        self._wake_writer()

    # -- writing -----------------------------------------------------------------------------------

    def _wake_writer(self) -> None:
        waiter = self._writable
        if waiter is not None and not waiter.done():
            waiter.set_result(None)

    def write(self, data: bytes) -> None:
        """Write now (after anything queued by :meth:`send_later`)."""
        if self._lost:
            raise ConnectionResetError("the client closed the connection")
        assert self.transport is not None
        if self._queued:
            self._queued.append(data)
            data = b"".join(self._queued)
            self._queued.clear()
        self.transport.write(data)

    async def send(self, data: bytes) -> None:
        """Write now, then wait while the client is slower than us (flow control)."""
        self.write(data)
        await self._writable_again()

    async def send_later(self, data: bytes) -> None:
        """Queue ``data`` to leave with whatever else is written before the loop's next turn."""
        if self._lost:
            raise ConnectionResetError("the client closed the connection")
        if not self._queued:
            asyncio.get_running_loop().call_soon(self._flush)
        self._queued.append(data)
        await self._writable_again()

    def _flush(self) -> None:
        if self._queued and not self._lost and self.transport is not None:
            data = b"".join(self._queued)
            self._queued.clear()
            self.transport.write(data)
        else:
            self._queued.clear()

    async def _writable_again(self) -> None:
        while self._paused_writing and not self._lost:
            self._writable = asyncio.get_running_loop().create_future()
            try:
                await self._writable
            finally:
                self._writable = None
        if self._lost:
            raise ConnectionResetError("the client closed the connection")

    def close(self) -> None:
        if self.transport is not None:
            self._flush()
            self.transport.close()

    # -- reading requests --------------------------------------------------------------------------

    def _arm_idle(self) -> None:
        loop = asyncio.get_running_loop()
        self._last = loop.time()
        self._idle = loop.call_at(self._last + self.front.tick, self._idle_timeout)

    def _idle_timeout(self) -> None:
        """One timer per connection, re-armed: close it when idle for ``keepalive_timeout``;
        answer 408 and close it when a request's head or body is not in within its limit."""
        loop = asyncio.get_running_loop()
        now = loop.time()
        front = self.front
        # Without a request begun, look again within a quarter of the shortest limit: a request
        # that begins meanwhile is then timed out at most that late (no timer moved per request).
        tick = front.tick
        if self.task is not None:
            due = now + tick  # an answer under way: nothing to time yet
        elif not self.buf:
            due = self._last + front.keepalive_timeout
            if now >= due:
                self.close()
                return
            due = min(due, now + tick)
        else:
            head = self._pending is None
            due = self._began + front.head_timeout if head else self._head_at + front.body_timeout
            if now >= due:
                front.timed_out += 1
                what = "request head" if head else "request body"
                limit = front.head_timeout if head else front.body_timeout
                self._refuse(408, f"The {what} did not arrive within {limit:g} seconds.", "request_timeout")
                return
        self._idle = loop.call_at(due, self._idle_timeout)

    def _refuse(self, status: int, message: str, code: str) -> None:
        """Answer an error and close: the rest of what this client sent is not read."""
        self.buf.clear()
        self._pending = None
        if not self._lost and self.transport is not None:
            exchange = Exchange(self, CIMultiDict(), b"", True)
            exchange.respond(*json_answer(status, message, code))
        self.close()

    def _next(self) -> None:
        """Start the next complete request in the buffer, or hand the connection over."""
        pending = self._pending
        if pending is None:
            pending = self._parse_head()
            if pending is None:
                return
            self._pending = pending
            self._head_at = asyncio.get_running_loop().time()
        kind, headers, start, total, close = pending
        if len(self.buf) < total:
            return  # the body is still arriving
        body = bytes(self.buf[start:total])
        del self.buf[:total]
        self._pending = None
        self.front.served += 1
        self.task = asyncio.get_running_loop().create_task(self._serve(kind, headers, body, close))

    def _parse_head(self) -> tuple[str, CIMultiDict[str], int, int, bool] | None:
        buf = self.buf
        end = buf.find(b"\r\n\r\n")
        if end < 0:
            # Not complete; a bare LF (so no CRLF CRLF may ever come) or a long head is not plain.
            if len(buf) > MAX_HEAD or buf.count(b"\n") != buf.count(b"\r\n"):
                self._handoff()
            return None
        head = bytes(buf[:end])
        lines = head.split(b"\r\n")
        if end > MAX_HEAD or len(lines) > MAX_HEADER_LINES + 1:
            self._handoff()  # aiohttp applies its own limits (and answers 431/400)
            return None
        request_line = lines[0].split(b" ")
        kind = FAST_PATHS.get(request_line[1]) if len(request_line) == 3 else None
        if (
            kind is None
            or request_line[0] != b"POST"
            or request_line[2] != b"HTTP/1.1"
            or _IRREGULAR.search(head.replace(b"\r\n", b"\t")) is not None
        ):
            self._handoff()
            return None
        headers: CIMultiDict[str] = CIMultiDict()
        length = -1
        close = False
        expect = False
        for line in lines[1:]:
            raw_name, colon, raw_value = line.partition(b":")
            if not colon or not raw_name or raw_name.translate(None, _TOKEN_CHARS):
                # obs-fold, a missing colon, a space or any non-token byte in the name: aiohttp
                # answers 400 (found by the differential fuzz against aiohttp's parser)
                self._handoff()
                return None
            name = raw_name.decode("latin-1").lower()
            raw_value = raw_value.strip()
            # As aiohttp decodes values, so that both paths see the same text (API keys included).
            value = raw_value.decode("utf-8", "surrogateescape")
            if name == "content-length":
                # bytes.isdigit is ASCII-only (str.isdigit accepts "²", and int("²") raised).
                if length >= 0 or not raw_value.isdigit() or len(raw_value) > MAX_LENGTH_DIGITS:
                    self._refuse(400, f"Invalid Content-Length: {value[:40]!r}.", "invalid_request")
                    return None
                length = int(raw_value)
            elif name == "expect":
                expect = True
            elif name in _HANDED:
                self._handoff()
                return None
            elif name == "connection":
                close = "close" in value.lower()
            headers.add(name, value)
        if expect:
            if length > self.front.max_body:  # refused before the client sends it: no 100 first
                self._refuse(
                    413,
                    f"Request body too large: {length} bytes, the limit is {self.front.max_body} bytes.",
                    "body_too_large",
                )
            else:
                self._handoff()
            return None
        if "host" not in headers:  # RFC 9112 section 3.2: HTTP/1.1 without Host is a 400
            self._refuse(400, "The request has no Host header.", "invalid_request")
            return None
        if length < 0 or length > self.front.max_body:
            self._handoff()  # no length (a 411/400 there) or too large (413 there)
            return None
        return kind, headers, end + 4, end + 4 + length, close or self.front.closing

    def _handoff(self) -> None:
        """Give this connection, from the current request on, to aiohttp's server."""
        transport = self.transport
        assert transport is not None
        self.front.connections.discard(self)
        self.front.handed_over += 1
        if self._idle is not None:
            self._idle.cancel()
        proto = _Counted(self.front.fallback(), self.front)
        transport.set_protocol(proto)
        proto.connection_made(transport)
        data, self.buf = bytes(self.buf), bytearray()
        if data:
            proto.data_received(data)
        if self._paused_reading:
            self._paused_reading = False
            transport.resume_reading()

    async def _serve(self, kind: str, headers: CIMultiDict[str], body: bytes, close: bool) -> None:
        exchange = Exchange(self, headers, body, close)
        try:
            await self.front.dispatch(kind, exchange)
        except (asyncio.CancelledError, ConnectionResetError):
            return  # the client went away; nothing more to write
        except Exception:  # the handlers answer every error themselves; this is a last resort
            log.exception("unhandled error serving %s", kind)
            if not exchange.started and not self._lost:
                exchange.close = True
                exchange.respond(*json_answer(500, "Internal error in the sidecar.", "internal_error"))
            self.close()
            return
        finally:
            self.task = None
        if exchange.close or self.front.closing:
            self.close()
            return
        if self._paused_reading:
            self._paused_reading = False
            assert self.transport is not None
            self.transport.resume_reading()
        self._last = self._began = asyncio.get_running_loop().time()
        if self.buf:
            self._next()


class _Counted(asyncio.Protocol):
    """aiohttp's protocol for a handed-over connection, counted in ``Front.open`` until it ends."""

    def __init__(self, inner: asyncio.Protocol, front: Front) -> None:
        self.inner = inner
        self.front = front
        self.data_received = inner.data_received  # type: ignore[method-assign]
        self.eof_received = inner.eof_received  # type: ignore[method-assign]
        self.pause_writing = inner.pause_writing  # type: ignore[method-assign]
        self.resume_writing = inner.resume_writing  # type: ignore[method-assign]

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.inner.connection_made(transport)

    def connection_lost(self, exc: Exception | None) -> None:
        self.front.lost()
        self.inner.connection_lost(exc)
