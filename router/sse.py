"""An incremental server-sent-events parser: bytes in, events out.

It knows nothing about providers: it splits lines (``\\n``, ``\\r\\n`` or ``\\r``), joins ``data:``
lines, remembers ``event:``, skips comments, and dispatches an event on each blank line. Whether
a stream ended properly (``[DONE]``, ``message_stop``) is the adapter's question; the parser only
reports, through :attr:`SSEParser.pending`, that bytes of an unfinished event were left over.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(slots=True)
class SSEEvent:
    event: str | None  # the ``event:`` field, None for data-only streams
    data: str


MAX_EVENT = 8 << 20  # bytes in one event (or one unfinished line); more is a broken stream


class SSEParser:
    """Feed it chunks as they arrive; it returns the events each chunk completed.

    Buffering is linear: the pieces of a line that spans many chunks are kept in a list and
    joined once, when its end comes (``buf + chunk`` on every chunk was quadratic: a 200 MB line
    cost 31 s of CPU). A line or an event longer than ``max_event`` bytes raises ``ValueError``.
    """

    __slots__ = ("_buf", "_data", "_event", "_parts", "_plen", "_size", "bytes_seen", "max_event")

    def __init__(self, max_event: int = MAX_EVENT) -> None:
        self._buf = b""
        self._parts: list[bytes] = []  # the unfinished line's later pieces, after _buf
        self._plen = 0  # their length
        self._event: str | None = None
        self._data: list[str] = []
        self._size = 0  # bytes of the event's data lines so far
        self.bytes_seen = 0
        self.max_event = max_event

    @property
    def pending(self) -> bool:
        """True when an event was begun but not finished by a blank line."""
        return bool(self._buf.strip() or self._parts or self._data or self._event)

    def close(self) -> list[SSEEvent]:
        """The stream ended: a trailing ``\r`` was a line end after all."""
        last = self._parts[-1] if self._parts else self._buf
        return self.feed(b"\n") if last.endswith(b"\r") else []

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk``; raises ``ValueError`` naming the byte offset of text that is not UTF-8."""
        last = self._parts[-1] if self._parts else self._buf
        if b"\n" not in chunk and b"\r" not in chunk and not last.endswith(b"\r"):
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
        if b"\r" in buf:
            # A trailing \r may be the first half of \r\n: keep it for the next chunk.
            keep_cr = buf.endswith(b"\r")
            if keep_cr:
                buf = buf[:-1]
            buf = buf.replace(b"\r\n", b"\n").replace(b"\r", b"\n")
            if keep_cr:
                buf += b"\r"
        lines = buf.split(b"\n")
        self._buf = lines.pop()
        events: list[SSEEvent] = []
        for raw in lines:
            if not raw:
                if self._data or self._event is not None:
                    events.append(SSEEvent(self._event, "\n".join(self._data)))
                    self._data = []
                    self._event = None
                    self._size = 0
                offset += 1
                continue
            try:
                line = raw.decode()
            except UnicodeDecodeError as exc:
                raise ValueError(f"SSE stream is not UTF-8 at byte {offset + exc.start}") from None
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
            # "id" and "retry" are irrelevant to a one-shot LLM stream; other names are ignored
        return events
