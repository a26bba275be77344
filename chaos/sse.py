"""Server-sent events from an upstream, cut into frames and tagged like the mock's own events.

The proxy reads an upstream stream chunk by chunk; :class:`FrameCutter` returns each complete frame
as soon as its blank line arrives, as a :class:`~mockproviders.types.StreamEvent` whose ``raw``
is the frame's exact bytes (so passing it on changes nothing) and whose ``kind`` and ``tokens``
are inferred from OpenAI, Anthropic or Mistral frames, so the same stream faults apply.
"""

from __future__ import annotations

import json
import re
from typing import Any

from mockproviders.tokens import count_tokens
from mockproviders.types import EventKind, StreamEvent
from turnout.sse import SSEParser

_BOUNDARY = re.compile(rb"\r\n\r\n|\n\n|\r\r")
_ANTHROPIC_KINDS: dict[str, EventKind] = {
    "message_start": "start",
    "content_block_start": "start",
    "content_block_delta": "content",
    "content_block_stop": "content",
    "message_delta": "finish",
    "message_stop": "done",
    "ping": "ping",
    "error": "error",
}


class FrameCutter:
    """Incremental: ``feed`` bytes as they arrive, get back the frames they completed."""

    def __init__(self) -> None:
        self._buffer = b""

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        self._buffer += chunk
        events: list[StreamEvent] = []
        while True:
            m = _BOUNDARY.search(self._buffer)
            if m is None:
                return events
            frame, self._buffer = self._buffer[: m.end()], self._buffer[m.end() :]
            events.append(parse_frame(frame))

    def flush(self) -> StreamEvent | None:
        """What is left at the end of the stream (a frame with no blank line after it), if any."""
        rest, self._buffer = self._buffer, b""
        return StreamEvent(kind="raw", data="", raw=rest) if rest else None


def parse_frame(frame: bytes) -> StreamEvent:
    """One frame (with its blank line) as a tagged event that re-encodes to the same bytes.

    The fields are read by turnout's one SSE parser (:mod:`turnout.sse`); a frame it refuses (not
    UTF-8, past its size cap) is passed on as it is, tagged ``raw``."""
    try:
        events = SSEParser().feed(frame)
    except ValueError:
        return StreamEvent(kind="raw", data="", raw=frame)
    if not events:  # comments only (a keep-alive), or fields without data: clients see nothing
        return StreamEvent(kind="ping", data="", raw=frame)
    ev = events[0]
    kind, tokens = infer_kind(ev.event, ev.data)
    return StreamEvent(kind=kind, data=ev.data, event=ev.event, tokens=tokens, raw=frame)


def infer_kind(event_name: str | None, data: str) -> tuple[EventKind, int]:
    """(kind, tokens) of a frame from its ``event:`` name and ``data``."""
    if data.strip() == "[DONE]":
        return "done", 0
    try:
        payload: Any = json.loads(data)
    except ValueError:
        return "raw", 0
    anthropic_type = payload.get("type") if isinstance(payload, dict) else None
    if event_name is not None or anthropic_type in _ANTHROPIC_KINDS:
        name = event_name or anthropic_type
        kind = _ANTHROPIC_KINDS.get(str(name), "raw")
        tokens = 0
        if kind == "content" and isinstance(payload, dict):
            delta = payload.get("delta") or {}
            piece = delta.get("text") or delta.get("partial_json") or delta.get("thinking") or ""
            tokens = count_tokens(piece) if isinstance(piece, str) else 0
        return kind, tokens
    if not isinstance(payload, dict):
        return "raw", 0
    if "error" in payload or payload.get("object") == "error":
        return "error", 0
    choices = payload.get("choices")
    if not choices:
        return ("usage", 0) if payload.get("usage") else ("raw", 0)
    choice = choices[0] if isinstance(choices[0], dict) else {}
    if choice.get("finish_reason"):
        return "finish", 0
    delta = choice.get("delta") or {}
    text = delta.get("content") or delta.get("refusal")
    if isinstance(text, str) and text:
        return "content", count_tokens(text)
    if delta.get("tool_calls"):
        return "content", 1
    return "start", 0
