"""The incremental SSE parser: line endings, fields, comments, and any split of the byte stream."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from loadtests.sse import SSEDecodeError, SSEEvent, SSEParser


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
    with pytest.raises(SSEDecodeError) as info:
        parser.feed(b"data: \xff\n\n")
    assert info.value.offset == 16


def test_a_stream_cut_inside_a_character_is_reported_on_close() -> None:
    parser = SSEParser()
    parser.feed("data: é".encode()[:-1])
    with pytest.raises(SSEDecodeError):
        parser.close()


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


def test_bytes_fed_counts_every_byte() -> None:
    parser = SSEParser()
    parser.feed(b"data: a\n\n")
    parser.feed(b"data: bc\n\n")
    assert parser.bytes_fed == 19


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
