"""An in-memory transport: scripted replies, no sockets, time on an injected clock.

For tests of the router (and of code built on it) that need an upstream's answers, failures and
timing but not a network. Give the transport the router's clock, and every delay, pause and
timeout below runs on it: with a :class:`router.clock.FakeClock`, a 30 s stall costs no real time.

::

    from router import Router
    from router.clock import FakeClock
    from router.transport import MemoryTransport, Pause, Reply

    clock = FakeClock()
    upstream = MemoryTransport(clock=clock)
    upstream.add("/chat/completions", Reply.fail("refused"), Reply.json({...}))  # in order; the last repeats
    upstream.add("api.anthropic.com", Reply.sse(("message_start", {...}), Pause(5.0), ..., delay=0.2))
    router = Router(config, clock=clock, transport=upstream)

A :class:`Reply` is a status, headers and a body given as pieces, each read as it "arrives";
a :class:`Pause` between pieces is time spent on the clock. After its pieces the body ends
(``end="complete"``), is cut (``"cut"``: :class:`~router.errors.StreamCut`) or never ends
(``"hang"``). ``Reply.fail`` answers nothing: ``"refused"`` and ``"disconnect"``
(:class:`~router.errors.ConnectFailed`), ``"connect_timeout"`` (waits out the connect limit,
then :class:`~router.errors.ConnectTimeout`), ``"hang"`` (waits out the request's timeout, then
:class:`~router.errors.ReadTimeout`; without one, until cancelled). A wait longer than the
caller's limit spends exactly the limit, then raises, as a real server's silence would.

Every request is kept in :attr:`MemoryTransport.requests` (``request.json()`` parses its body),
every answer in :attr:`MemoryTransport.responses` (``outcome``: released, closed, or neither).
A :class:`~router.clock.FakeClock` moves on each wait in the order the waits run, not by their
length: concurrent waits (a hedge racing a slow reply) want a real clock and short delays.
"""

from __future__ import annotations

import asyncio
import json
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from multidict import CIMultiDict, CIMultiDictProxy

from router import errors as E
from router.clock import SYSTEM_CLOCK, Clock
from router.transport.base import Request

__all__ = ["MemoryResponse", "MemoryTransport", "Pause", "Reply"]

End = Literal["complete", "cut", "hang"]
Failure = Literal["refused", "disconnect", "connect_timeout", "hang"]


@dataclass(frozen=True, slots=True)
class Pause:
    """Silence of ``seconds`` on the clock, between two pieces of a body."""

    seconds: float

    def __post_init__(self) -> None:
        if not self.seconds >= 0:
            raise ValueError(f"a pause lasts >= 0 seconds, not {self.seconds!r}")


@dataclass(frozen=True, slots=True)
class Reply:
    """One scripted answer (or failure); build it with the class methods or by hand."""

    status: int = 200
    headers: Mapping[str, str] = field(default_factory=dict)
    chunks: tuple[bytes | Pause, ...] = ()  # the body, piece by piece
    delay: float = 0.0  # before the status and headers
    end: End = "complete"  # after the pieces
    failure: Failure | None = None  # instead of any answer

    @classmethod
    def json(
        cls, payload: Any, status: int = 200, *, headers: Mapping[str, str] | None = None, delay: float = 0.0
    ) -> Reply:
        """A JSON body in one piece."""
        body = json.dumps(payload).encode()
        return cls(status, {"content-type": "application/json", **(headers or {})}, (body,), delay)

    @classmethod
    def sse(
        cls,
        *items: bytes | str | Mapping[str, Any] | tuple[str, Any] | Pause,
        status: int = 200,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        end: End = "complete",
    ) -> Reply:
        """A server-sent-event stream, one piece per item: a mapping is sent as ``data: <json>``,
        a string as ``data: <string>`` (``"[DONE]"``), ``(name, data)`` as ``event: <name>`` with
        its data, bytes as they are, and a :class:`Pause` waits."""
        chunks: list[bytes | Pause] = []
        for item in items:
            if isinstance(item, Pause | bytes):
                chunks.append(item)
                continue
            name = None
            if isinstance(item, tuple):
                name, item = item
            data = item if isinstance(item, str) else json.dumps(item)
            chunks.append(((f"event: {name}\n" if name else "") + f"data: {data}\n\n").encode())
        return cls(
            status, {"content-type": "text/event-stream", **(headers or {})}, tuple(chunks), delay, end
        )

    @classmethod
    def fail(cls, failure: Failure, *, delay: float = 0.0) -> Reply:
        """No answer: the connection is refused, closed, or never answers (see the module)."""
        return cls(failure=failure, delay=delay)


class MemoryResponse:
    """A scripted answer being read (meets :class:`router.transport.base.Response`)."""

    __slots__ = ("_chunks", "_clock", "_end", "headers", "outcome", "status")

    def __init__(self, reply: Reply, clock: Clock) -> None:
        self.status = reply.status
        self.headers: CIMultiDictProxy[str] = CIMultiDictProxy(CIMultiDict(reply.headers))
        self._chunks = list(reply.chunks)
        self._end = reply.end
        self._clock = clock
        self.outcome: Literal["released", "closed"] | None = None

    async def readany(self, timeout: float | None = None) -> bytes:
        """The next piece, after any pause before it; ``b""`` at the body's end."""
        clock = self._clock
        start = clock.now()
        chunks = self._chunks
        while chunks:
            piece = chunks[0]
            if isinstance(piece, bytes):
                chunks.pop(0)
                return piece
            left = None if timeout is None else timeout - (clock.now() - start)
            if left is not None and piece.seconds > left:  # the rest of the pause is still to come
                chunks[0] = Pause(piece.seconds - max(left, 0.0))
            await _wait(clock, piece.seconds, left)
            chunks.pop(0)
        if self._end == "cut":
            raise E.StreamCut("the answer was cut: the connection closed before its end")
        if self._end == "hang":
            await _wait(clock, math.inf, None if timeout is None else timeout - (clock.now() - start))
        return b""

    async def read(self, timeout: float | None = None) -> bytes:
        """The whole body."""
        clock = self._clock
        start = clock.now()
        parts: list[bytes] = []
        while True:
            piece = await self.readany(None if timeout is None else timeout - (clock.now() - start))
            if not piece:
                return b"".join(parts)
            parts.append(piece)

    def release(self) -> None:
        if self.outcome is None:
            self.outcome = "released"

    def close(self) -> None:
        if self.outcome is None:
            self.outcome = "closed"


async def _wait(clock: Clock, seconds: float, timeout: float | None) -> None:
    """``seconds`` on the clock; past ``timeout``, exactly the timeout, then ReadTimeout."""
    if timeout is not None and seconds > timeout:
        if timeout > 0:
            await clock.sleep(timeout)
        raise E.ReadTimeout("read timeout: no answer within the limit")
    if seconds == math.inf:
        await asyncio.Event().wait()  # never answers: only cancellation ends it
    elif seconds > 0:
        await clock.sleep(seconds)


class MemoryTransport:
    """Scripted replies by URL (meets :class:`router.transport.base.Transport`).

    :meth:`add` scripts the replies for URLs containing a string, used in order, the last one
    for every later request; ``handler`` answers any request no script matches. A request that
    neither answers raises ``LookupError`` (a test's mistake, never a provider failure).
    """

    def __init__(
        self, handler: Callable[[Request], Reply] | None = None, *, clock: Clock = SYSTEM_CLOCK
    ) -> None:
        self.handler = handler
        self.clock = clock
        self.requests: list[Request] = []
        self.responses: list[MemoryResponse] = []
        self._scripts: list[tuple[str, list[Reply]]] = []

    def add(self, match: str, *replies: Reply) -> MemoryTransport:
        """Answer URLs containing ``match`` with ``replies`` in order (scripts added first win)."""
        if not replies:
            raise ValueError("add() needs at least one Reply")
        self._scripts.append((match, list(replies)))
        return self

    def _reply(self, request: Request) -> Reply:
        for match, replies in self._scripts:
            if match in request.url:
                return replies.pop(0) if len(replies) > 1 else replies[0]
        if self.handler is not None:
            return self.handler(request)
        raise LookupError(f"MemoryTransport: no reply scripted for {request.url}")

    async def handle_async_request(self, request: Request) -> MemoryResponse:
        self.requests.append(request)
        reply = self._reply(request)
        clock, timeout = self.clock, request.timeout
        failure = reply.failure
        if failure == "refused":
            raise E.ConnectFailed(f"cannot connect to {request.url}: connection refused (scripted)")
        if failure == "connect_timeout":
            limits = [t for t in (request.connect_timeout, timeout) if t is not None]
            if not limits:
                await _wait(clock, math.inf, None)
            await clock.sleep(min(limits))
            raise E.ConnectTimeout(f"connect timeout: no connection within {min(limits)}s (scripted)")
        start = clock.now()
        await _wait(clock, reply.delay, timeout)
        if failure == "disconnect":
            raise E.ConnectFailed("the server closed the connection before answering (scripted)")
        if failure == "hang":
            await _wait(clock, math.inf, None if timeout is None else timeout - (clock.now() - start))
        response = MemoryResponse(reply, clock)
        self.responses.append(response)
        return response
