"""The sidecar's front door (router/sidecar/front.py) over real sockets, with exact bytes.

The fast path answers through a scripted dispatch; anything else must reach the aiohttp
application behind it, on the same connection, from that request's first byte.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router.sidecar.front import Exchange, Front

CHAT = b"/v1/chat/completions"


def post(path: bytes = CHAT, body: bytes = b'{"x":1}', *extra: bytes) -> bytes:
    head = b"POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" % path
    return head + b"".join(e + b"\r\n" for e in extra) + b"content-length: %d\r\n\r\n" % len(body) + body


@dataclass
class Stack:
    front: Front
    port: int
    seen: list[tuple[str, bytes, str | None]] = field(default_factory=list)  # (kind, body, header)
    slow: list[str] = field(default_factory=list)  # what the aiohttp app answered
    started: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: asyncio.Event = field(default_factory=asyncio.Event)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    writes: int = 0

    async def connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection("127.0.0.1", self.port)


async def read_response(reader: asyncio.StreamReader) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response: status, headers (lower-cased), body (length or chunked)."""
    head = (await reader.readuntil(b"\r\n\r\n")).decode()
    lines = head.split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:] if line)}
    if headers.get("transfer-encoding") == "chunked":
        body = b""
        while True:
            size = int((await reader.readuntil(b"\r\n")).strip(), 16)
            data = await reader.readexactly(size + 2)
            if size == 0:
                return status, headers, body
            body += data[:-2]
    return status, headers, await reader.readexactly(int(headers.get("content-length", "0")))


@pytest.fixture
async def stack() -> AsyncIterator[Stack]:
    holder: list[Stack] = []

    async def dispatch(kind: str, ex: Exchange) -> None:
        s = holder[0]
        s.seen.append((kind, ex.body, ex.headers.get("x-probe")))
        if ex.body == b"hang":
            s.started.set()
            try:
                await asyncio.Event().wait()
            except asyncio.CancelledError:
                s.cancelled.set()
                raise
        if ex.body == b"gated":
            s.started.set()
            await s.gate.wait()
        if ex.body in (b"bad-cr", b"bad-lf"):  # a header value that would split the head
            ex.respond(200, {"x-bad": "a\rb" if ex.body == b"bad-cr" else "a\nb"}, b"{}")
            return
        if ex.body == b"boom":
            raise RuntimeError("a bug")
        if ex.body == b"burst":  # pieces written in one turn of the loop leave together
            transport = ex._proto.transport
            assert transport is not None
            real = transport.write
            s.writes = 0

            def counting(data: bytes) -> None:
                s.writes += 1
                real(data)

            transport.write = counting  # type: ignore[method-assign,assignment]
            await ex.start(200, {"content-type": "text/event-stream"}, b"data: 0\n\n")
            for i in range(1, 4):
                await ex.write(b"data: %d\n\n" % i)
            await asyncio.sleep(0)  # the loop turns: the three leave in one send
            await ex.write(b"data: 4\n\n")
            await ex.end(b"data: [DONE]\n\n")  # the fourth leaves with the end
            transport.write = real  # type: ignore[method-assign]
            return
        if ex.body == b"stream":
            await ex.start(200, {"content-type": "text/event-stream"}, b"data: 1\n\n")
            await ex.write(b"data: 2\n\n")
            await ex.end(b"data: [DONE]\n\n")
            return
        answer = json.dumps({"kind": kind}).encode()
        ex.respond(200, {"content-type": "application/json", "x-kind": kind}, answer)

    async def slow_path(request: web.Request) -> web.Response:
        body = await request.read()
        holder[0].slow.append(f"{request.method} {request.path} {len(body)}")
        return web.json_response({"slow": request.path})

    app = web.Application(client_max_size=1024)
    app.router.add_route("*", "/{tail:.*}", slow_path)
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    assert runner.server is not None
    front = Front(dispatch, runner.server, max_body=1024)
    server = await asyncio.get_running_loop().create_server(front, "127.0.0.1", 0)
    holder.append(Stack(front, server.sockets[0].getsockname()[1]))
    yield holder[0]
    front.shutdown()
    server.close()
    await runner.cleanup()


async def test_hot_requests_are_served_here_on_one_kept_alive_connection(stack: Stack) -> None:
    reader, writer = await stack.connect()
    for path, kind in ((CHAT, "chat"), (b"/v1/embeddings", "embeddings"), (CHAT, "chat")):
        writer.write(post(path, b'{"x":1}', b"X-Probe: yes"))
        status, headers, body = await read_response(reader)
        assert (status, json.loads(body), headers["x-kind"]) == (200, {"kind": kind}, kind)
    assert stack.seen == [(kind, b'{"x":1}', "yes") for kind in ("chat", "embeddings", "chat")]
    assert stack.slow == []
    writer.close()


async def test_pipelined_requests_are_answered_in_order(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"1") + post(b"/v1/embeddings", b"22") + post(CHAT, b"333"))
    kinds = [json.loads((await read_response(reader))[2])["kind"] for _ in range(3)]
    assert kinds == ["chat", "embeddings", "chat"]
    assert [b for _, b, _ in stack.seen] == [b"1", b"22", b"333"]
    writer.close()


async def test_a_body_arriving_in_pieces_is_waited_for(stack: Stack) -> None:
    reader, writer = await stack.connect()
    raw = post(CHAT, b'{"long": "' + b"x" * 500 + b'"}')
    for i in range(0, len(raw), 37):
        writer.write(raw[i : i + 37])
        await writer.drain()
    status, _, _ = await read_response(reader)
    assert status == 200 and len(stack.seen[0][1]) == 512
    writer.close()


@pytest.mark.parametrize(
    "request_bytes",
    [
        b"GET /metrics HTTP/1.1\r\nHost: t\r\n\r\n",
        post(b"/v1/chat/completions?debug=1"),
        post(b"/v1/other"),
        b"PUT /v1/chat/completions HTTP/1.1\r\nHost: t\r\ncontent-length: 2\r\n\r\n{}",
        b"POST /v1/chat/completions HTTP/1.0\r\nHost: t\r\ncontent-length: 2\r\n\r\n{}",
        post(CHAT, b"{}", b"Expect: 100-continue"),
        post(CHAT, b"{}", b"X-Odd: a\x01b"),
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: t\r\ntransfer-encoding: chunked\r\n\r\n"
        b"2\r\n{}\r\n0\r\n\r\n",
    ],
    ids=["other-path", "query", "unknown-v1", "put", "http10", "expect", "control-byte", "chunked"],
)
async def test_anything_not_plain_goes_to_aiohttp(stack: Stack, request_bytes: bytes) -> None:
    reader, writer = await stack.connect()
    writer.write(request_bytes)
    status, _, body = await read_response(reader)
    if b"x01" in request_bytes or b"\x01" in request_bytes:
        assert status == 400  # aiohttp's parser refuses the control byte
    else:
        assert status in (100, 200), body
    assert stack.seen == []
    writer.close()


async def test_a_connection_is_handed_over_at_a_request_boundary(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"first"))
    assert (await read_response(reader))[0] == 200
    # A slow-path request, then a hot one, in one write: both go to aiohttp from the boundary on.
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: t\r\n\r\n" + post(CHAT, b"second"))
    assert json.loads((await read_response(reader))[2]) == {"slow": "/healthz"}
    assert json.loads((await read_response(reader))[2]) == {"slow": "/v1/chat/completions"}
    assert [b for _, b, _ in stack.seen] == [b"first"]
    assert stack.slow == ["GET /healthz 0", "POST /v1/chat/completions 6"]
    writer.close()


async def test_an_oversize_body_is_aiohttps_to_refuse(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"x" * 2000))
    status, _, _ = await read_response(reader)
    assert status == 413 and stack.seen == []
    writer.close()


async def test_a_streamed_answer_is_chunked(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"stream"))
    status, headers, body = await read_response(reader)
    assert status == 200 and headers["content-type"] == "text/event-stream"
    assert body == b"data: 1\n\ndata: 2\n\ndata: [DONE]\n\n"
    writer.write(post(CHAT, b"after"))  # the connection is still usable
    assert (await read_response(reader))[0] == 200
    writer.close()


async def test_a_client_that_disconnects_cancels_its_request(stack: Stack) -> None:
    _, writer = await stack.connect()
    writer.write(post(CHAT, b"hang"))
    await stack.started.wait()
    writer.close()
    await asyncio.wait_for(stack.cancelled.wait(), 5)


async def test_connection_close_and_an_unexpected_error(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"{}", b"Connection: close"))
    status, headers, _ = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"
    assert await reader.read() == b""  # closed by the server
    writer.close()

    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"boom"))
    status, _, body = await read_response(reader)
    assert status == 500
    assert json.loads(body)["error"]["code"] == "internal_error"
    assert await reader.read() == b""
    writer.close()


async def test_idle_connections_close_on_shutdown_and_after_the_keepalive(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"{}"))
    await read_response(reader)
    (conn,) = stack.front.connections
    conn._last -= stack.front.keepalive_timeout + 1  # as if idle that long (no real waiting)
    conn._idle_timeout()
    assert await reader.read() == b""
    writer.close()

    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"{}"))
    await read_response(reader)
    stack.front.shutdown()
    assert await reader.read() == b""
    writer.close()


async def test_drain_lets_answers_under_way_finish_and_cuts_what_outlasts_it(stack: Stack) -> None:
    reader, writer = await stack.connect()
    idle_reader, idle_writer = await stack.connect()
    writer.write(post(CHAT, b"gated"))
    await stack.started.wait()
    drained = asyncio.ensure_future(stack.front.drain(timeout=30))
    assert await idle_reader.read() == b""  # an idle kept-alive connection closes at once
    stack.gate.set()
    status, headers, _ = await read_response(reader)
    assert status == 200 and headers["connection"] == "close"  # the last answer says so
    assert await drained is True
    writer.close()
    idle_writer.close()


async def test_drain_cancels_an_answer_that_outlasts_the_timeout(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"hang"))
    await stack.started.wait()
    assert await stack.front.drain(timeout=0) is False
    await asyncio.wait_for(stack.cancelled.wait(), 5)
    assert await reader.read() == b""
    writer.close()


async def test_stream_pieces_written_in_one_turn_leave_in_one_send(stack: Stack) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"burst"))
    status, _, body = await read_response(reader)
    assert status == 200
    assert body == b"".join(b"data: %d\n\n" % i for i in range(5)) + b"data: [DONE]\n\n"
    assert stack.writes == 3  # the status with the first piece; pieces 1-3; piece 4 with the end
    writer.close()


_HEAD_BYTES = st.binary(min_size=0, max_size=40)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from([b"POST", b"GET", b"post", b"POST "]),
    path=st.sampled_from([CHAT, b"/v1/embeddings", b"/x", b"/v1/chat/completions?a"]),
    version=st.sampled_from([b"HTTP/1.1", b"HTTP/1.0", b"HTTP/9", b""]),
    extra=st.lists(st.tuples(_HEAD_BYTES, _HEAD_BYTES), max_size=3),
    length=st.one_of(st.none(), st.integers(-5, 4000).map(lambda n: str(n).encode()), _HEAD_BYTES),
)
async def test_any_head_is_answered_here_or_by_aiohttp_never_dropped(
    stack: Stack,
    method: bytes,
    path: bytes,
    version: bytes,
    extra: list[tuple[bytes, bytes]],
    length: bytes | None,
) -> None:
    """Whatever the head, the client gets an HTTP answer (or a close from aiohttp's parser for
    a head it cannot read), the process keeps serving, and nothing hangs."""
    body = b'{"x":1}'
    head = method + b" " + path + b" " + version + b"\r\nHost: t\r\n"
    head += b"".join(name + b": " + value + b"\r\n" for name, value in extra)
    if length is not None:
        head += b"Content-Length: " + length + b"\r\n"
    reader, writer = await stack.connect()
    writer.write(head + b"\r\n" + body)
    writer.write_eof()
    try:
        reply = await asyncio.wait_for(reader.read(), 10)
    finally:
        writer.close()
    assert reply == b"" or reply.startswith(b"HTTP/1.")
    # and the server still serves a plain request
    reader, writer = await stack.connect()
    writer.write(post(CHAT, b"{}"))
    assert (await asyncio.wait_for(read_response(reader), 10))[0] == 200
    writer.close()


@pytest.mark.parametrize("body", [b"bad-cr", b"bad-lf"])
async def test_a_line_break_in_a_header_value_is_never_sent(stack: Stack, body: bytes) -> None:
    reader, writer = await stack.connect()
    writer.write(post(CHAT, body))
    status, headers, _ = await read_response(reader)
    assert status == 500 and "x-bad" not in headers
    writer.close()
