"""An incremental server-sent-events parser, fed bytes as they come off the socket.

It follows the WHATWG event-stream rules: lines end with CRLF, LF or CR (a CRLF may be split
across two reads), ``:`` starts a comment, a blank line dispatches the event, several ``data``
lines join with ``\\n``, one space after the colon is dropped, a leading BOM is skipped. Bytes are
decoded as UTF-8 incrementally, so a character split across two reads is not mangled; bytes that
are not UTF-8 raise :class:`SSEDecodeError` naming the offset.

Pure Python, no Locust: the load-test users and the unit tests share it.
"""

from __future__ import annotations

import codecs
import re
from dataclasses import dataclass

__all__ = ["SSEDecodeError", "SSEEvent", "SSEParser"]

_LINE_END = re.compile(r"\r\n|\r|\n")


class SSEDecodeError(ValueError):
    """The stream is not valid UTF-8; ``offset`` is the stream offset of the chunk holding the bad byte."""

    def __init__(self, offset: int, reason: str) -> None:
        super().__init__(f"event stream is not UTF-8 near byte {offset}: {reason}")
        self.offset = offset


@dataclass(frozen=True, slots=True)
class SSEEvent:
    """One dispatched event."""

    data: str
    event: str = "message"
    id: str | None = None


class SSEParser:
    """Turns a byte stream into :class:`SSEEvent` objects, one :meth:`feed` at a time."""

    def __init__(self) -> None:
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="strict")
        self._partial = ""  # text after the last line end
        self._skip_lf = False  # the last chunk ended in CR: a leading LF completes that CRLF
        self._at_start = True  # a BOM is only skipped at the very start
        self._data: list[str] = []
        self._event = ""
        self._last_id: str | None = None
        self._fields_pending = False  # fields seen since the last dispatch
        self.bytes_fed = 0

    @property
    def pending(self) -> bool:
        """True when the stream stopped inside an event (an unfinished line or undispatched fields)."""
        return bool(self._partial) or self._fields_pending

    def feed(self, chunk: bytes) -> list[SSEEvent]:
        """Parse ``chunk`` and return the events it completed (possibly none)."""
        offset = self.bytes_fed
        self.bytes_fed += len(chunk)
        try:
            text = self._decoder.decode(chunk)
        except UnicodeDecodeError as exc:
            raise SSEDecodeError(offset + exc.start, exc.reason) from exc
        return self._feed_text(text)

    def close(self) -> list[SSEEvent]:
        """Signal the end of the stream.

        Per the specification an event that was not ended by a blank line is discarded, so this
        returns no events; check :attr:`pending` first to learn whether one was cut off.
        """
        try:
            self._decoder.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise SSEDecodeError(self.bytes_fed, exc.reason) from exc
        return []

    def _feed_text(self, text: str) -> list[SSEEvent]:
        if not text:
            return []
        if self._at_start:
            self._at_start = False
            if text.startswith("\ufeff"):
                text = text[1:]
        if self._skip_lf:
            self._skip_lf = False
            if text.startswith("\n"):
                text = text[1:]
        text = self._partial + text
        lines = _LINE_END.split(text)
        self._partial = lines.pop()  # after the last line end: not a line yet
        if text.endswith("\r"):
            self._skip_lf = True
        events: list[SSEEvent] = []
        for line in lines:
            event = self._line(line)
            if event is not None:
                events.append(event)
        return events

    def _line(self, line: str) -> SSEEvent | None:
        if not line:
            return self._dispatch()
        if line.startswith(":"):
            return None  # a comment (keep-alive)
        name, colon, value = line.partition(":")
        if colon and value.startswith(" "):
            value = value[1:]
        self._fields_pending = True
        if name == "data":
            self._data.append(value)
        elif name == "event":
            self._event = value
        elif name == "id" and "\0" not in value:
            self._last_id = value
        # "retry" and unknown fields are ignored, as the specification says
        return None

    def _dispatch(self) -> SSEEvent | None:
        self._fields_pending = False
        data, event = self._data, self._event
        self._data, self._event = [], ""
        if not data:
            return None
        return SSEEvent(data="\n".join(data), event=event or "message", id=self._last_id)
