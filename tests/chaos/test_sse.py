"""The proxy's SSE parsing: frames as they complete, exact bytes, kinds inferred per provider."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from chaos.sse import FrameCutter, parse_frame

OPENAI = (
    b'data: {"id":"c","choices":[{"index":0,"delta":{"role":"assistant","content":""},'
    b'"finish_reason":null}]}\n\n'
    b'data: {"id":"c","choices":[{"index":0,"delta":{"content":"Hello there"},"finish_reason":null}]}\n\n'
    b": keep-alive\n\n"
    b'data: {"id":"c","choices":[{"index":0,"delta":{},"finish_reason":"stop"}]}\n\n'
    b'data: {"id":"c","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
    b'data: {"error":{"message":"boom","type":"server_error"}}\n\n'
    b"data: [DONE]\n\n"
)
ANTHROPIC = (
    b'event: message_start\r\ndata: {"type":"message_start","message":{}}\r\n\r\n'
    b'event: ping\r\ndata: {"type":"ping"}\r\n\r\n'
    b"event: content_block_delta\r\n"
    b'data: {"type":"content_block_delta","delta":{"type":"text_delta","text":"a b c"}}\r\n\r\n'
    b'event: message_delta\r\ndata: {"type":"message_delta","delta":{"stop_reason":"end_turn"}}\r\n\r\n'
    b'event: message_stop\r\ndata: {"type":"message_stop"}\r\n\r\n'
)


def test_openai_kinds_and_tokens() -> None:
    events = FrameCutter().feed(OPENAI)
    assert [(e.kind, e.tokens) for e in events] == [
        ("start", 0),
        ("content", 2),
        ("ping", 0),
        ("finish", 0),
        ("usage", 0),
        ("error", 0),
        ("done", 0),
    ]
    assert b"".join(e.encode() for e in events) == OPENAI


def test_anthropic_kinds_with_crlf() -> None:
    events = FrameCutter().feed(ANTHROPIC)
    assert [(e.kind, e.event, e.tokens) for e in events] == [
        ("start", "message_start", 0),
        ("ping", "ping", 0),
        ("content", "content_block_delta", 3),
        ("finish", "message_delta", 0),
        ("done", "message_stop", 0),
    ]
    assert b"".join(e.encode() for e in events) == ANTHROPIC


def test_broken_json_is_raw_and_an_unfinished_tail_is_flushed() -> None:
    parser = FrameCutter()
    assert parse_frame(b'data: {"choices": [\n\n').kind == "raw"
    assert parser.feed(b"data: [DONE]\n\ndata: {partial") and parser.flush() is not None
    assert parser.flush() is None


@settings(max_examples=50, deadline=None)
@given(cuts=st.lists(st.integers(0, len(OPENAI + ANTHROPIC)), max_size=12))
def test_any_chunking_gives_the_same_frames_and_bytes(cuts: list[int]) -> None:
    data = OPENAI + ANTHROPIC
    points = sorted(set(cuts))
    chunks = [data[a:b] for a, b in zip([0, *points], [*points, len(data)], strict=True)]
    parser = FrameCutter()
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    assert parser.flush() is None
    whole = FrameCutter().feed(data)
    assert [(e.kind, e.data, e.tokens) for e in events] == [(e.kind, e.data, e.tokens) for e in whole]
    assert b"".join(e.encode() for e in events) == data
