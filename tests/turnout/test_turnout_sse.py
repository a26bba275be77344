"""turnout's one SSE parser (the router, the load tests and the chaos proxy read streams with it):
line endings, fields, comments, a BOM, bad bytes, the size cap, any split of the byte stream; and
the writer."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from turnout.sse import SSEDecodeError, SSEEvent, SSEParser, encode_event


def parse_all(*chunks: bytes) -> list[SSEEvent]:
    parser = SSEParser()
    events = [e for chunk in chunks for e in parser.feed(chunk)]
    return events + parser.close()


def test_data_only_events_end_at_a_blank_line() -> None:
    assert parse_all(b'data: {"a":1}\n\ndata: [DONE]\n\n') == [SSEEvent('{"a":1}'), SSEEvent("[DONE]")]


@pytest.mark.parametrize("eol", [b"\n", b"\r\n", b"\r"])
def test_every_line_ending_is_accepted(eol: bytes) -> None:
    stream = b"event: ping" + eol + b"data: x" + eol + eol + b"data: y" + eol + eol
    assert parse_all(stream) == [SSEEvent("x", event="ping"), SSEEvent("y")]


def test_crlf_split_across_two_reads_is_one_line_end() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\r") == []
    assert parser.feed(b"\n\r") == [SSEEvent("a")]
    assert parser.feed(b"\n") == []  # the LF completes the CRLF of the blank line: no empty event
    assert not parser.pending


def test_comments_multi_line_data_id_and_colon_spacing() -> None:
    stream = b": keep-alive\nid: 7\ndata:first\ndata:  second\nretry: 10\nunknown: z\n\n"
    assert parse_all(stream) == [SSEEvent("first\n second", id="7")]


def test_a_leading_bom_is_skipped_once() -> None:
    assert parse_all(b"\xef\xbb\xbfdata: a\n\n") == [SSEEvent("a")]


def test_a_character_split_across_reads_is_decoded_whole() -> None:
    data = 'data: "élan — ✓"\n\n'.encode()
    assert parse_all(data[:8], data[8:9], data[9:]) == [SSEEvent('"élan — ✓"')]


def test_bytes_that_are_not_utf8_raise_with_their_offset() -> None:
    parser = SSEParser()
    parser.feed(b"data: ok\n\n")
    with pytest.raises(SSEDecodeError, match="byte 16") as info:
        parser.feed(b"data: \xff\n\n")
    assert info.value.offset == 16


def test_a_stream_cut_inside_a_character_is_a_cut_event() -> None:
    parser = SSEParser()
    parser.feed("data: é".encode()[:-1])
    assert parser.close() == []
    assert parser.pending


def test_an_event_without_its_blank_line_is_pending_and_not_dispatched() -> None:
    parser = SSEParser()
    assert parser.feed(b"data: a\n\ndata: b\n") == [SSEEvent("a")]
    assert parser.pending
    assert parser.close() == []


def test_an_unfinished_line_is_pending() -> None:
    parser = SSEParser()
    parser.feed(b"data: a\n\ndata: {")
    assert parser.pending


def test_a_blank_line_without_data_dispatches_nothing() -> None:
    assert parse_all(b"event: x\n\n\n\ndata: y\n\n") == [SSEEvent("y")]


def test_bytes_seen_counts_every_byte() -> None:
    parser = SSEParser()
    parser.feed(b"data: a\n\n")
    parser.feed(b"data: b")
    parser.feed(b"c\n\n")
    assert parser.bytes_seen == 19


def test_named_events_multiline_data_comments_and_done() -> None:
    p = SSEParser()
    events = p.feed(b": keep-alive\nevent: ping\ndata: {}\n\nevent: x\ndata: a\ndata: b\n\ndata: [DONE]\n\n")
    assert events == [SSEEvent("{}", "ping"), SSEEvent("a\nb", "x"), SSEEvent("[DONE]")]
    assert not p.pending


@pytest.mark.parametrize("sep", [b"\n", b"\r\n", b"\r"])
def test_any_line_ending_split_at_every_byte(sep: bytes) -> None:
    raw = b"\xef\xbb\xbfevent: message_start" + sep + b"data: {}" + sep + sep + b"data: [DONE]" + sep + sep
    p = SSEParser()
    events = []
    for i in range(len(raw)):
        events += p.feed(raw[i : i + 1])
    events += p.close()
    assert events == [SSEEvent("{}", "message_start"), SSEEvent("[DONE]")]


def test_bad_bytes_after_a_bom_are_named_by_their_stream_offset() -> None:
    with pytest.raises(SSEDecodeError, match="byte 9") as info:
        SSEParser().feed(b"\xef\xbb\xbfdata: \xff\n\n")
    assert info.value.offset == 9


def test_an_event_or_a_line_over_the_cap_raises_however_it_arrives() -> None:
    whole = SSEParser(max_event=64)
    with pytest.raises(ValueError, match="larger than 64 bytes"):
        whole.feed(b"data: " + b"x" * 40 + b"\ndata: " + b"y" * 40 + b"\n\n")
    pieces = SSEParser(max_event=64)
    with pytest.raises(ValueError, match="larger than 64 bytes"):
        for _ in range(20):
            pieces.feed(b"data: xxxx")  # one line that never ends
    fits = SSEParser(max_event=64)
    assert fits.feed(b"data: " + b"x" * 50 + b"\n\n") == [SSEEvent("x" * 50)]


def test_the_last_id_is_carried_by_the_events_after_it() -> None:
    events = SSEParser().feed(b"id: 1\ndata: a\n\ndata: b\n\nid\ndata: c\n\n")
    assert [(e.data, e.id) for e in events] == [("a", "1"), ("b", "1"), ("c", "")]


@pytest.mark.parametrize(
    ("data", "event", "wire"),
    [
        ('{"a":1}', None, b'data: {"a":1}\n\n'),
        (b"[DONE]", None, b"data: [DONE]\n\n"),
        ("{}", "ping", b"event: ping\ndata: {}\n\n"),
        (b"a\nb\r\nc", b"x", b"event: x\ndata: a\ndata: b\ndata: c\n\n"),
    ],
)
def test_the_writer_writes_what_the_parser_reads(
    data: str | bytes, event: str | bytes | None, wire: bytes
) -> None:
    assert encode_event(data, event) == wire
    (parsed,) = SSEParser().feed(wire)
    text = data if isinstance(data, str) else data.decode()
    assert parsed.data == text.replace("\r\n", "\n")
    assert parsed.event == (event.decode() if isinstance(event, bytes) else event)


_events = st.lists(
    st.tuples(
        st.text(
            alphabet=st.characters(blacklist_characters="\r\n\x00", blacklist_categories=["Cs"]), max_size=20
        ),
        st.sampled_from(["message", "error", "ping"]),
    ),
    max_size=6,
)


@given(
    events=_events, eol=st.sampled_from(["\n", "\r\n", "\r"]), cuts=st.lists(st.integers(0, 400), max_size=8)
)
def test_any_split_of_the_stream_gives_the_same_events(
    events: list[tuple[str, str]], eol: str, cuts: list[int]
) -> None:
    text = "".join(f"event: {kind}{eol}data: {data}{eol}{eol}" for data, kind in events)
    raw = text.encode()
    whole = parse_all(raw)
    points = sorted({min(c, len(raw)) for c in cuts})
    pieces = [raw[a:b] for a, b in zip([0, *points], [*points, len(raw)], strict=True)]
    assert parse_all(*pieces) == whole
    # "data: " + value: the parser drops that one space and no other
    assert [e.data for e in whole] == [d for d, _ in events]
    assert [e.event for e in whole] == [k for _, k in events]
