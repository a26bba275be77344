"""The incremental SSE parser: framing, split chunks, comments, bad bytes."""

import pytest

from router.sse import SSEEvent, SSEParser


def test_data_only_events_and_done() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [
        SSEEvent(None, '{"a":1}'),
        SSEEvent(None, "[DONE]"),
    ]
    assert not p.pending


def test_named_events_multiline_data_and_comments() -> None:
    p = SSEParser()
    events = p.feed(b": keep-alive\nevent: ping\ndata: {}\n\nevent: x\ndata: a\ndata: b\n\n")
    assert events == [SSEEvent("ping", "{}"), SSEEvent("x", "a\nb")]


@pytest.mark.parametrize("sep", [b"\n", b"\r\n", b"\r"])
def test_any_line_ending_split_at_every_byte(sep: bytes) -> None:
    raw = b"event: message_start" + sep + b"data: {}" + sep + sep + b"data: [DONE]" + sep + sep
    p = SSEParser()
    events = []
    for i in range(len(raw)):
        events += p.feed(raw[i : i + 1])
    events += p.close()
    assert events == [SSEEvent("message_start", "{}"), SSEEvent(None, "[DONE]")]


def test_unfinished_event_is_pending() -> None:
    p = SSEParser()
    assert p.feed(b'data: {"a":1}\n') == []
    assert p.pending
    p2 = SSEParser()
    p2.feed(b"data: {")
    assert p2.pending


def test_non_utf8_names_the_byte() -> None:
    p = SSEParser()
    with pytest.raises(ValueError, match="byte 6"):
        p.feed(b"data: \xff\n\n")
