"""Server-sent events, both ways: one incremental parser (bytes in, events out) and one writer.

The parser follows the WHATWG event-stream rules: lines end with ``\\n``, ``\\r\\n`` or ``\\r``
(a ``\\r\\n`` may be split across two reads), a leading BOM is skipped, ``:`` starts a comment,
several ``data`` lines join with ``\\n``, one space after the colon is dropped, ``id`` is
remembered across events, ``retry`` and unknown fields are ignored, and a blank line dispatches
the event if it has data. It knows nothing about providers: whether a stream ended properly
(``[DONE]``, ``message_stop``) is the caller's question; :attr:`SSEParser.pending` says whether
bytes of an unfinished event were left over.

The router reads every streamed answer through it, so it is written for speed: a chunk with no
line end is only appended to a list, lines are decoded one at a time, and an event longer than
``max_event`` bytes (8 MiB) raises rather than growing without bound. Bytes that are not UTF-8
raise :class:`SSEDecodeError` naming their offset in the stream.

This module imports nothing from turnout's packages, so each of them can use it.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["MAX_EVENT", "SSEDecodeError", "SSEEvent", "SSEParser", "encode_event"]

MAX_EVENT = 8 << 20  # bytes in one event (or one unfinished line); more is a broken stream
_BOM = b"\xef\xbb\xbf"


@dataclass(slots=True)
class SSEEvent:
    """One dispatched event (not frozen: a frozen dataclass costs several times more to build)."""

    data: str
    event: str | None = None  # the ``event:`` field; None for data-only streams
    id: str | None = None  # the last ``id:`` seen in the stream, if any


class SSEDecodeError(ValueError):
    """The stream is not UTF-8; ``offset`` is the stream offset of the bad byte."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"SSE stream is not UTF-8 at byte {offset} ({reason})")
        self.offset = offset


class SSEParser:
    """Feed it chunks as they arrive; it returns the events each chunk completed.

    Buffering is linear: the pieces of a line that spans many chunks are kept in a list and
    joined once, when its end comes (``buf + chunk`` on every chunk was quadratic: a 200 MB line
    cost 31 s of CPU). A line or an event longer than ``max_event`` bytes raises ``ValueError``.
    """

    __slots__ = (
        "_buf",
        "_cr",
        "_data",
        "_event",
        "_fresh",
        "_id",
        "_parts",
        "_plen",
        "_size",
        "bytes_seen",
        "max_event",
    )

    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self._buf = b""
        self._parts: list[bytes] = []  # the unfinished line's later pieces, after _buf
        self._plen = 0  # their length
        self._event: str | None = None
        self._data: list[str] = []
        self._id: str | None = None
        self._size = 0  # bytes of the event's data lines so far
        self._fresh = True  # no line ended yet: a BOM may open the stream
        self._cr = False  # the last chunk ended with \r
        self.bytes_seen = 0
        self.max_event = max_event

    @property
    def pending(self) -> bool:
        """True when an event was begun but not finished by a blank line."""
        return bool(self._buf.strip() or self._parts or self._data or self._event)

    def close(self) -> list[SSEEvent]:
        """The stream ended. An event without its blank line is not dispatched, so this returns
        no events; check :attr:`pending` to learn whether one was cut off."""
        return []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk``; raises :class:`SSEDecodeError` naming the offset of bytes that are not
        UTF-8, and ``ValueError`` for an event larger than ``max_event``."""
        if self._cr and chunk:
            self._cr = False
            if chunk[0] == 10:  # the LF of a CRLF whose CR ended the last chunk
                chunk = chunk[1:]
                self.bytes_seen += 1
        if b"\n" not in chunk and b"\r" not in chunk:
            if chunk:  # no line ends here: keep the piece for when one comes
                self._parts.append(chunk)
                self._plen += len(chunk)
                self.bytes_seen += len(chunk)
                if self._size + len(self._buf) + self._plen > self.max_event:
                    raise ValueError(f"SSE event larger than {self.max_event} bytes")
            return []
        if self._parts:
            self._buf = b"".join((self._buf, *self._parts))
            self._parts.clear()
            self._plen = 0
        offset = self.bytes_seen - len(self._buf)
        self.bytes_seen += len(chunk)
        buf = self._buf + chunk if self._buf else chunk
        if self._fresh:
            self._fresh = False
            if buf.startswith(_BOM):
                buf = buf[3:]
                offset += 3
        if b"\r" in buf:
            # A trailing \r ends its line now (no waiting for the next read to dispatch an event);
            # if the next chunk opens with \n, that \n is the second half of this \r\n.
            self._cr = buf[-1] == 13
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        events: list[SSEEvent] = []
        for raw in lines:
            if not raw:
                if self._data:
                    events.append(SSEEvent("\n".join(self._data), self._event, self._id))
                    self._data = []
                    self._size = 0
                self._event = None
                offset += 1
                continue
            try:
                line = raw.decode()
            except UnicodeDecodeError as exc:
                raise SSEDecodeError(offset + exc.start, exc.reason) from None
            offset += len(raw) + 1
            if line[0] == ":":
                continue  # a comment (keep-alive)
            name, sep, value = line.partition(":")
            if sep and value[:1] == " ":
                value = value[1:]
            if name == "data":
                self._size += len(raw)
                if self._size > self.max_event:
                    raise ValueError(f"SSE event larger than {self.max_event} bytes")
                self._data.append(value)
            elif name == "event":
                self._event = value
            elif name == "id" and "\0" not in value:
                self._id = value
            # "retry" is irrelevant to a one-shot LLM stream; unknown names are ignored
        return events


def encode_event(data: bytes | str, event: bytes | str | None = None) -> bytes:
    """One event as bytes on the wire: ``event:`` if named, a ``data:`` line per line of ``data``
    (JSON from ``json.dumps`` is one line), and the blank line that dispatches it."""
    if isinstance(data, str):
        data = data.encode()
    if b"\n" in data or b"\r" in data:
        data = data.replace(b"\r\n", b"\n").replace(b"\r", b"\n").replace(b"\n", b"\ndata: ")
    if event is None:
        return b"data: " + data + b"\n\n"
    if isinstance(event, str):
        event = event.encode()
    return b"event: " + event + b"\ndata: " + data + b"\n\n"
