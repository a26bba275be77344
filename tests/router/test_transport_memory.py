"""The in-memory transport, and the adapters' limits through it on a fake clock.

Everything here goes through the real adapters, codecs, SSE parser and engine; only the socket is
replaced. Time is the router's FakeClock: a 10 s stall costs no real time, and each limit is
checked to the millisecond it was set to.
"""

from __future__ import annotations

import asyncio
import itertools
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from memory_upstream import (
    ANTHROPIC,
    OPENAI,
    Upstream,
    anthropic_json,
    anthropic_sse,
    ask,
    openai_json,
    openai_sse,
)

from router import errors as E
from router.clock import FakeClock
from router.transport import MemoryTransport, Pause, Reply, Request
from router.types import StreamEnd, StreamStart, TextDelta


async def collect(up: Upstream, model: str = "main") -> list[Any]:
    return [ev async for ev in up.router.stream(ask(model))]


def text_of(events: list[Any]) -> str:
    return "".join(e.text for e in events if isinstance(e, TextDelta))


# --- the transport on its own --------------------------------------------------------------------


async def test_scripted_replies_go_in_order_and_the_last_one_repeats() -> None:
    t = MemoryTransport()
    t.add("/a", Reply(status=503), Reply.json({"ok": 1}))
    t.add("/", Reply(status=404))
    statuses = [
        (await t.handle_async_request(Request(f"http://h/a/{i}", b"{}", {}))).status for i in range(3)
    ]
    assert statuses == [503, 200, 200]
    assert (await t.handle_async_request(Request("http://h/b", b"{}", {}))).status == 404
    assert [r.url for r in t.requests] == ["http://h/a/0", "http://h/a/1", "http://h/a/2", "http://h/b"]


async def test_a_handler_answers_what_no_script_matches_and_nothing_answers_is_loud() -> None:
    t = MemoryTransport(lambda r: Reply.json({"echo": r.json()}, headers={"X-Seen": r.url}))
    resp = await t.handle_async_request(Request("http://h/x", b'{"n": 1}', {}))
    assert resp.headers["x-seen"] == "http://h/x"  # headers are case-insensitive, as on the wire
    assert await resp.read() == b'{"echo": {"n": 1}}'
    with pytest.raises(LookupError, match="no reply scripted for http://h/x"):
        await MemoryTransport().handle_async_request(Request("http://h/x", b"", {}))


async def test_pieces_pauses_and_timeouts_run_on_the_clock() -> None:
    clock = FakeClock()
    t = MemoryTransport(clock=clock).add("/", Reply.sse({"a": 1}, Pause(5.0), "[DONE]", delay=0.5))
    resp = await t.handle_async_request(Request("http://h/", b"", {}, timeout=1.0))
    assert clock.now() == 0.5
    assert await resp.readany() == b'data: {"a": 1}\n\n'
    with pytest.raises(E.ReadTimeout):  # 2 s of a 5 s pause, then the limit
        await resp.readany(timeout=2.0)
    assert clock.now() == 2.5
    assert await resp.readany(timeout=3.0) == b"data: [DONE]\n\n"  # the 3 s left of the pause
    assert clock.now() == 5.5
    assert await resp.readany() == b""
    resp.release()
    assert resp.outcome == "released"


@pytest.mark.parametrize(
    ("failure", "error", "waited"),
    [
        ("refused", E.ConnectFailed, 0.0),
        ("disconnect", E.ConnectFailed, 0.0),
        ("connect_timeout", E.ConnectTimeout, 1.0),
        ("hang", E.ReadTimeout, 4.0),
    ],
)
async def test_failures_raise_the_routers_own_errors(failure: Any, error: type, waited: float) -> None:
    clock = FakeClock()
    t = MemoryTransport(clock=clock).add("/", Reply.fail(failure))
    with pytest.raises(error) as info:
        await t.handle_async_request(Request("http://h/", b"", {}, timeout=4.0, connect_timeout=1.0))
    assert type(info.value) is error and info.value.provider is None  # the adapter names it
    assert clock.now() == waited


async def test_a_hang_without_a_limit_waits_until_cancelled() -> None:
    t = MemoryTransport().add("/", Reply.fail("hang"))
    task = asyncio.ensure_future(t.handle_async_request(Request("http://h/", b"", {})))
    await asyncio.sleep(0)
    assert not task.done()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task


pieces = st.lists(st.one_of(st.binary(min_size=1, max_size=8), st.floats(0, 10).map(Pause)), max_size=12)


@given(pieces, st.lists(st.one_of(st.none(), st.floats(0.01, 4)), min_size=1, max_size=6))
async def test_every_piece_arrives_in_order_and_pauses_cost_exactly_their_length(
    chunks: list[bytes | Pause], timeouts: list[float | None]
) -> None:
    """Whatever the limits each read is given, a body comes whole and in order, each timeout costs
    exactly its limit, and the pauses cost their length in all (a pause cut by a limit resumes)."""
    clock = FakeClock()
    t = MemoryTransport(clock=clock).add("/", Reply(chunks=tuple(chunks)))
    resp = await t.handle_async_request(Request("http://h/", b"", {}))
    got: list[bytes] = []
    for i in itertools.count():
        timeout = timeouts[i % len(timeouts)]
        before = clock.now()
        try:
            piece = await resp.readany(timeout)
        except E.ReadTimeout:
            assert timeout is not None and clock.now() - before == pytest.approx(timeout)
            continue
        if not piece:
            break
        got.append(piece)
    assert b"".join(got) == b"".join(c for c in chunks if isinstance(c, bytes))
    assert clock.now() == pytest.approx(sum(c.seconds for c in chunks if isinstance(c, Pause)))


def test_a_negative_pause_is_refused() -> None:
    with pytest.raises(ValueError, match="a pause lasts >= 0 seconds"):
        Pause(-1.0)


# --- the router through it: answers ---------------------------------------------------------------


async def test_complete_and_stream_through_the_real_adapters() -> None:
    up = Upstream()
    up.transport.add(OPENAI, openai_json("fine"))
    up.transport.add(ANTHROPIC, anthropic_sse("Hel", "lo"))
    resp = await up.router.complete(ask())
    assert (resp.content, resp.model, resp.usage.input_tokens) == ("fine", "gpt", 3)
    sent = up.transport.requests[0]
    assert sent.url == OPENAI + "/chat/completions" and sent.json()["model"] == "gpt-4o-mini"
    assert sent.headers["authorization"] == "Bearer sk-test"
    events = await collect(up, "claude")
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
    assert text_of(events) == "Hello" == events[-1].response.content
    assert up.transport.requests[1].headers["x-api-key"] == "sk-ant-test"
    assert [r.outcome for r in up.transport.responses] == ["released", "released"]
    await up.router.aclose()


async def test_an_error_status_is_classified_and_falls_back() -> None:
    up = Upstream()
    up.transport.add(
        OPENAI,
        Reply.json(
            {"error": {"message": "slow down", "type": "rate_limit_exceeded"}},
            status=429,
            headers={"retry-after": "120"},
        ),
    )
    up.transport.add(ANTHROPIC, anthropic_sse("ok"))
    assert (await collect(up))[-1].response.content == "ok"
    assert up.attempts() == [("gpt", "error", "rate_limit"), ("claude", "success", None)]


async def test_a_retry_after_date_is_read_on_the_routers_clock() -> None:
    """`retry-after: <HTTP-date>` is measured against the router's wall clock, not the machine's."""
    up = Upstream(retries=1)
    when = "Tue, 14 Nov 2023 22:13:30 GMT"  # FakeClock's epoch, 1_700_000_000, is 22:13:20 that day
    limited = Reply.json(
        {"error": {"message": "later", "type": "rate_limit_exceeded"}}, 429, headers={"retry-after": when}
    )
    up.transport.add(OPENAI, limited, openai_json("fine"))
    assert (await up.router.complete(ask("gpt"))).content == "fine"
    assert up.clock.sleeps == [10.0]


# --- the router through it: limits on the fake clock ------------------------------------------------


async def test_a_refused_connection_fails_over_at_once() -> None:
    up = Upstream()
    up.transport.add(OPENAI, Reply.fail("refused"))
    up.transport.add(ANTHROPIC, anthropic_json("ok"))
    assert (await up.router.complete(ask())).model == "claude"
    assert up.attempts() == [("gpt", "error", "connect"), ("claude", "success", None)]
    assert up.clock.now() == 0.0


async def test_a_connect_that_hangs_costs_the_connect_limit() -> None:
    up = Upstream()
    up.transport.add(OPENAI, Reply.fail("connect_timeout"))
    up.transport.add(ANTHROPIC, anthropic_json("ok"))
    assert (await up.router.complete(ask())).model == "claude"
    assert up.attempts() == [("gpt", "error", "timeout"), ("claude", "success", None)]
    assert up.clock.now() == 1.0  # connect: 1s


async def test_a_hang_after_the_request_costs_the_read_limit_then_fails_over() -> None:
    up = Upstream()
    up.transport.add(OPENAI, Reply.fail("hang"))
    with pytest.raises(E.AllAttemptsFailed) as info:
        await up.router.complete(ask("gpt"))
    (only,) = info.value.errors
    assert type(only) is E.ReadTimeout and "read timeout" in str(only) and "connect" not in str(only)
    assert (only.provider, only.model) == ("openai", "gpt")
    assert up.clock.now() == 10.0  # read: 10s


async def test_a_hang_costs_one_read_timeout_then_fails_over() -> None:
    up = Upstream(retries=2)  # a timeout is not retried on the same model: it fails over
    up.transport.add(OPENAI, Reply.fail("hang"))
    up.transport.add(ANTHROPIC, anthropic_json("ok"))
    assert (await up.router.complete(ask())).model == "claude"
    assert up.attempts() == [("gpt", "error", "timeout"), ("claude", "success", None)]
    assert up.clock.now() == 10.0


async def test_a_slow_first_token_fails_over_invisibly_after_the_first_token_limit() -> None:
    up = Upstream()
    up.transport.add(OPENAI, openai_sse("late", delay=30.0))
    up.transport.add(ANTHROPIC, anthropic_sse("on ", "time"))
    events = await collect(up)
    assert isinstance(events[0], StreamStart) and events[0].model == "claude"
    assert text_of(events) == "on time"
    assert up.attempts() == [("gpt", "error", "first_token_timeout"), ("claude", "success", None)]
    assert up.clock.now() == 2.0  # first_token: 2s, not the 30 s the upstream would take


async def test_a_stall_after_output_is_interrupted_after_the_idle_limit() -> None:
    up = Upstream()
    up.transport.add(OPENAI, openai_sse("one ", "two ", Pause(600.0), "three"))
    got: list[Any] = []
    with pytest.raises(E.StreamInterrupted) as info:
        async for ev in up.router.stream(ask("gpt")):
            got.append(ev)
    assert info.value.cause_kind is E.ErrorKind.STALL
    assert info.value.partial == "one two " == text_of(got)
    assert up.clock.now() == 3.0  # idle: 3s
    assert up.transport.responses[0].outcome == "closed"  # unread bytes: never reused


async def test_pings_do_not_keep_a_stalled_stream_alive() -> None:
    up = Upstream()
    reply = anthropic_sse("a", Pause(0.0))  # pieces are deltas: the pings are spliced in by hand
    chunks = list(reply.chunks)
    at = next(i for i, c in enumerate(chunks) if isinstance(c, Pause))
    ping_bytes = b'event: ping\ndata: {"type": "ping"}\n\n'
    chunks[at : at + 1] = [x for _ in range(5) for x in (Pause(1.0), ping_bytes)]
    up.transport.add(ANTHROPIC, Reply(reply.status, reply.headers, tuple(chunks)))
    with pytest.raises(E.StreamInterrupted) as info:
        await collect(up, "claude")
    assert info.value.cause_kind is E.ErrorKind.STALL
    assert up.clock.now() == 3.0  # pings every second, but the idle limit counts from the last text


async def test_the_whole_request_budget_bounds_every_wait() -> None:
    up = Upstream(timeouts={"total": "5s", "connect": "1s", "read": "10s", "first_token": "2s", "idle": "3s"})
    up.transport.add(OPENAI, openai_sse("a", Pause(2.5), "b", Pause(3.0), "c"))
    with pytest.raises(E.StreamInterrupted) as info:
        await collect(up, "gpt")
    assert info.value.cause_kind is E.ErrorKind.TIMEOUT  # the budget, not the idle limit (3 s)
    assert info.value.partial == "ab"
    assert up.clock.now() == 5.0


@pytest.mark.parametrize("end", ["cut", "hang"])
async def test_a_stream_that_breaks_before_output_fails_over(end: Any) -> None:
    up = Upstream()
    up.transport.add(OPENAI, openai_sse(done=False, end=end))
    up.transport.add(ANTHROPIC, anthropic_sse("fine"))
    events = await collect(up)
    assert events[0].model == "claude" and text_of(events) == "fine"
    kind = {"cut": "stream_cut", "hang": "first_token_timeout"}[end]
    assert up.attempts() == [("gpt", "error", kind), ("claude", "success", None)]


async def test_a_cut_after_output_is_never_a_success() -> None:
    up = Upstream()
    up.transport.add(OPENAI, openai_sse("half ", done=False, end="cut"))
    with pytest.raises(E.StreamInterrupted) as info:
        await collect(up, "gpt")
    assert info.value.cause_kind is E.ErrorKind.STREAM_CUT and info.value.partial == "half "


async def test_one_given_transport_serves_every_provider_and_stays_the_callers() -> None:
    up = Upstream()
    up.transport.add(OPENAI, Reply.fail("refused"))
    up.transport.add(ANTHROPIC, anthropic_json("ok"))
    assert (await up.router.complete(ask())).model == "claude"
    assert [r.url.split("/")[2] for r in up.transport.requests] == ["openai.test", "anthropic.test"]
    await up.router.aclose()  # closes the adapters, not the transport they were given
    resp = await up.transport.handle_async_request(Request(ANTHROPIC + "/messages", b"{}", {}))
    assert resp.status == 200 and b"ok" in await resp.read()


def test_the_clients_old_exception_names_still_catch_what_replaced_them() -> None:
    """Deprecated aliases (router.transport): an `except` written against them keeps working."""
    from router import transport as T

    pairs = [
        (T.TransportError, E.TransportError),
        (T.ConnectError, E.ConnectFailed),
        (T.Disconnected, E.ConnectFailed),
        (T.ProtocolError, E.ConnectFailed),
        (T.ConnectTimeout, E.ConnectTimeout),
        (T.HeadTimeout, E.ReadTimeout),
        (T.PayloadError, E.StreamCut),
        (T.TooLarge, E.ReplyTooLarge),
    ]
    for old, new in pairs:
        assert old is new
    assert issubclass(E.ConnectTimeout, E.AttemptTimeout) and issubclass(E.ReadTimeout, E.AttemptTimeout)
    assert issubclass(E.ReplyTooLarge, E.MalformedResponse)
    assert E.ReadTimeout("x").kind is E.ErrorKind.TIMEOUT and E.ReadTimeout("x").http_status == 504
    assert E.ReplyTooLarge("x").kind is E.ErrorKind.MALFORMED and E.ReplyTooLarge("x").retryable
