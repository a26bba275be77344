"""The contract between the mock's request-handling core, its two front ends, and fault layers.

This is the mock's public extension point: ``chaos`` (and any other fault layer) builds on the
names here, :class:`Interceptor`, :class:`MockRequest`, :class:`MockResponse`, :class:`StreamEvent`.

One core (``MockCore``) turns a :class:`MockRequest` into a :class:`MockResponse`. Two front ends
feed it: the aiohttp server (real sockets) and the in-process httpx2/respx transport (no socket).
Between the front end and the core sits a chain of :class:`Interceptor` objects; ``chaos`` adds
its fault layer there, so every fault works the same in both front ends.

Transport-level behaviour that is not an HTTP response (resetting the connection, holding the
request until the client gives up) is expressed by raising :class:`AbortConnection` or awaiting
:meth:`MockRequest.hold`; each front end translates it to what its clients really see (a TCP
reset on a socket; ``httpx2.ReadError``/``ReadTimeout`` in process).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from turnout.sse import encode_event

Provider = Literal["openai", "anthropic", "mistral"]
Endpoint = Literal[
    "chat", "messages", "responses", "count_tokens", "embeddings", "models", "files", "batches", "other"
]
EventKind = Literal["start", "content", "finish", "usage", "done", "ping", "error", "raw"]


class AbortConnection(Exception):
    """Raised by a handler or interceptor to drop the connection instead of answering.

    ``mode`` is ``"reset"`` (TCP RST, the client sees a connection reset) or ``"close"`` (a plain
    close, mid-body if a body had begun: the client sees an incomplete message).
    """

    def __init__(self, mode: Literal["reset", "close"] = "close", reason: str = "") -> None:
        super().__init__(reason or mode)
        self.mode = mode
        self.reason = reason


@dataclass(slots=True)
class StreamEvent:
    """One server-sent event of a streamed answer, before encoding.

    ``kind`` tells a fault layer what the event is without parsing provider JSON: ``start``
    (OpenAI role chunk, Anthropic ``message_start``/``content_block_start``), ``content`` (carries
    ``tokens`` tokens of answer text or tool arguments), ``finish`` (finish reason), ``usage``,
    ``done`` (the terminator: ``[DONE]`` or ``message_stop``), ``ping``, ``error`` (in-band
    error), ``raw`` (bytes written as they are, e.g. a malformed event).
    """

    kind: EventKind
    data: str
    event: str | None = None  # Anthropic's ``event:`` line; None for data-only SSE
    tokens: int = 0
    raw: bytes | None = None

    def encode(self) -> bytes:
        if self.raw is not None:
            return self.raw
        return encode_event(self.data, self.event or None)

    @classmethod
    def json_event(
        cls, kind: EventKind, payload: Any, *, event: str | None = None, tokens: int = 0
    ) -> StreamEvent:
        return cls(kind=kind, data=json.dumps(payload, separators=(",", ":")), event=event, tokens=tokens)


@dataclass(slots=True)
class AnswerPatch:
    """Changes a fault layer asks the core to make to the scripted answer before rendering it."""

    content: str | None = None  # replace the text ("" for an empty answer)
    finish_reason: str | None = None  # provider-neutral: stop, length, content_filter, tool_calls
    tool_arguments: str | None = None  # raw arguments text for every tool call (e.g. invalid JSON)


@dataclass(slots=True)
class MockRequest:
    """A request as the core sees it, whatever front end it came through."""

    provider: Provider
    endpoint: Endpoint
    method: str
    path: str  # provider-relative, e.g. "/v1/chat/completions"
    headers: Mapping[str, str]  # lower-case names
    body: bytes
    index: int  # 0-based arrival order across all providers since start or reset
    received_at: float  # the core clock's time at arrival
    json: Any = None  # parsed body, or None if absent or not JSON
    model: str | None = None
    api_key: str | None = None
    stream: bool = False
    patch: AnswerPatch | None = None  # set by a fault layer, applied by the core
    annotations: dict[str, Any] = field(default_factory=dict)  # copied into the journal entry
    hold: Callable[[], Awaitable[None]] | None = None  # front end's "wait until the client gives up"
    request_id: str = ""  # the id the core will send back (x-request-id / request-id); set on arrival
    query: str = ""  # the URL's query string, without "?" (list endpoints read limit, after, ...)


@dataclass(slots=True)
class MockResponse:
    """An answer: a whole body, or a stream of events sent as ``text/event-stream``."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None
    stream: AsyncIterator[StreamEvent] | None = None

    @classmethod
    def json_body(cls, status: int, payload: Any, headers: Mapping[str, str] | None = None) -> MockResponse:
        hdrs = {"content-type": "application/json", **(headers or {})}
        return cls(status=status, headers=hdrs, body=json.dumps(payload, separators=(",", ":")).encode())


Handler = Callable[[MockRequest], Awaitable[MockResponse]]


class Interceptor(Protocol):
    """Sits between a front end and the core; may answer, delay, abort, or pass on and transform."""

    async def __call__(self, request: MockRequest, call_next: Handler) -> MockResponse: ...


class Clock(Protocol):
    """Time source and sleeper; tests inject a fake one so nothing sleeps for real."""

    def now(self) -> float: ...

    async def sleep(self, seconds: float) -> None: ...
