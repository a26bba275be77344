"""The router's HTTP/1.1 client (router/transport/pool.py) over real loopback sockets.

Each test runs a small asyncio server that answers with exact bytes, so framing (length,
chunked, close-delimited), keep-alive, cuts and garbage are under the test's control.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import socket
from collections.abc import AsyncIterator, Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from router import errors as E
from router import transport as T

Answer = Callable[[bytes], bytes | None]  # request bytes -> reply bytes (None: close at once)


class Server:
    """Answers each request on a connection by ``answer``; counts connections and requests."""

    def __init__(self, answer: Answer, *, close_after: bool = False) -> None:
        self.answer = answer
        self.close_after = close_after
        self.connections = 0
        self.requests: list[bytes] = []
        self.active = 0
        self.most_active = 0
        self.gate: asyncio.Event | None = None
        self.server: asyncio.Server | None = None
        self.writers: set[asyncio.StreamWriter] = set()
        self.arrived = asyncio.Condition()  # notified as each request comes in

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        self.writers.add(writer)
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = 0
                for line in head.split(b"\r\n"):
                    if line.lower().startswith(b"content-length:"):
                        length = int(line.split(b":")[1])
                request = head + await reader.readexactly(length)
                self.requests.append(request)
                self.active += 1
                self.most_active = max(self.most_active, self.active)
                async with self.arrived:
                    self.arrived.notify_all()
                if self.gate is not None:
                    await self.gate.wait()
                reply = self.answer(request)
                self.active -= 1
                if reply is None:
                    break
                writer.write(reply)
                await writer.drain()
                if self.close_after:
                    break
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            writer.close()
            self.writers.discard(writer)

    @property
    def url(self) -> str:
        assert self.server is not None
        port = self.server.sockets[0].getsockname()[1]
        return f"http://127.0.0.1:{port}/v1/chat?x=1"


@pytest.fixture
async def serve() -> AsyncIterator[Callable[..., asyncio.Future[Server]]]:
    servers: list[Server] = []

    async def start(answer: Answer, **kw: bool) -> Server:
        s = Server(answer, **kw)
        s.server = await asyncio.start_server(s.handle, "127.0.0.1", 0)
        servers.append(s)
        return s

    yield start  # type: ignore[misc]
    for s in servers:
        if s.gate is not None:
            s.gate.set()
        assert s.server is not None
        s.server.close()
        for writer in list(s.writers):
            writer.close()
    for _ in range(5):  # let the handlers see their connections end
        await asyncio.sleep(0)


def ok(body: bytes, *extra: str) -> bytes:
    head = "".join(f"{h}\r\n" for h in extra)
    return b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n%s\r\n%s" % (
        len(body),
        head.encode(),
        body,
    )


def echo(request: bytes) -> bytes:
    return ok(json.dumps({"n": len(request)}).encode(), "x-ratelimit-remaining-requests: 7")


async def test_the_request_on_the_wire_and_the_answer(serve: Callable[..., asyncio.Future[Server]]) -> None:
    server = await serve(echo)
    pool = T.HttpPool()
    resp = await pool.post(server.url, b'{"a":1}', {"authorization": "Bearer k", "content-type": "x/y"})
    assert resp.status == 200
    assert resp.headers["X-RateLimit-Remaining-Requests"] == "7"  # case-insensitive
    assert json.loads(await resp.read()) == {"n": len(server.requests[0])}
    resp.release()
    head, body = server.requests[0].split(b"\r\n\r\n")
    lines = head.split(b"\r\n")
    assert lines[0] == b"POST /v1/chat?x=1 HTTP/1.1"
    port = server.url.split(":")[2].split("/")[0]
    assert f"host: 127.0.0.1:{port}".encode() in lines
    assert b"authorization: Bearer k" in lines
    assert b"content-length: 7" in lines
    assert body == b'{"a":1}'
    await pool.aclose()


async def test_connections_are_kept_alive_and_reused(serve: Callable[..., asyncio.Future[Server]]) -> None:
    server = await serve(echo)
    pool = T.HttpPool()
    for _ in range(5):
        resp = await pool.post(server.url, b"{}", {})
        await resp.read()
        resp.release()
    assert len(server.requests) == 5
    assert server.connections == 1
    await pool.aclose()


async def test_connection_close_and_idle_expiry_mean_a_new_connection(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    closing = await serve(lambda r: ok(b"{}", "connection: close"))
    pool = T.HttpPool()
    for _ in range(3):
        resp = await pool.post(closing.url, b"{}", {})
        assert await resp.read() == b"{}"
        resp.release()
    assert closing.connections == 3

    plain = await serve(echo)
    stale = T.HttpPool(keepalive=0.0)
    for _ in range(3):
        resp = await stale.post(plain.url, b"{}", {})
        await resp.read()
        resp.release()
        await asyncio.sleep(0.001)  # loop time moves past the zero keep-alive
    assert plain.connections == 3
    await pool.aclose()
    await stale.aclose()


async def test_a_connection_the_server_closed_while_idle_is_not_used(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    server = await serve(echo, close_after=True)  # answers, then closes without saying so
    pool = T.HttpPool()
    for _ in range(3):
        resp = await pool.post(server.url, b"{}", {})
        await resp.read()
        resp.release()
        for _ in range(20):  # let the loop deliver the close to the idle connection
            await asyncio.sleep(0)
    assert server.connections == 3 and len(server.requests) == 3
    await pool.aclose()


async def test_chunked_and_close_delimited_bodies(serve: Callable[..., asyncio.Future[Server]]) -> None:
    chunked = await serve(
        lambda r: (
            b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n"
        )
    )
    delimited = await serve(lambda r: b"HTTP/1.1 200 OK\r\n\r\nuntil the end", close_after=True)
    pool = T.HttpPool()
    resp = await pool.post(chunked.url, b"{}", {})
    assert await resp.read() == b"hello world"
    resp.release()
    resp = await pool.post(delimited.url, b"{}", {})
    assert await resp.read() == b"until the end"
    resp.release()
    await pool.aclose()


async def test_a_streamed_body_arrives_piece_by_piece(serve: Callable[..., asyncio.Future[Server]]) -> None:
    release = asyncio.Event()
    sent: list[bytes] = []

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        await reader.readuntil(b"\r\n\r\n")
        await reader.readexactly(2)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n"
        )
        for event in (b"data: 1\n\n", b"data: 2\n\n"):
            writer.write(b"%x\r\n%s\r\n" % (len(event), event))
            await writer.drain()
            sent.append(event)
            await release.wait()
            release.clear()
        writer.write(b"0\r\n\r\n")
        await writer.drain()
        writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/s"
    pool = T.HttpPool()
    resp = await pool.post(url, b"{}", {})
    assert await resp.readany() == b"data: 1\n\n"  # the first event, while the server waits
    release.set()
    assert await resp.readany() == b"data: 2\n\n"
    release.set()
    assert await resp.readany() == b""
    resp.release()
    await pool.aclose()
    srv.close()


async def test_gzip_answers_are_decompressed(serve: Callable[..., asyncio.Future[Server]]) -> None:
    payload = json.dumps({"data": [0.25] * 500}).encode()
    packed = gzip.compress(payload)
    server = await serve(lambda r: ok(packed, "content-encoding: gzip"))
    pool = T.HttpPool()
    resp = await pool.post(server.url, b"{}", {})
    assert await resp.read() == payload
    resp.release()
    assert b"accept-encoding: gzip, deflate" in server.requests[0]
    await pool.aclose()


async def test_failures_say_how_far_the_exchange_got(serve: Callable[..., asyncio.Future[Server]]) -> None:
    pool = T.HttpPool()
    silent = await serve(lambda r: None)  # reads the request, closes without a word
    with pytest.raises(E.ConnectFailed, match="closed the connection before answering") as disconnected:
        await pool.post(silent.url, b"{}", {})
    assert type(disconnected.value) is E.ConnectFailed and disconnected.value.provider is None

    cut = await serve(lambda r: b'HTTP/1.1 200 OK\r\ncontent-length: 100\r\n\r\n{"partial', close_after=True)
    resp = await pool.post(cut.url, b"{}", {})
    with pytest.raises(E.StreamCut, match="was cut") as payload:
        await resp.read()
    resp.close()
    assert type(payload.value) is E.StreamCut

    garbage = await serve(lambda r: b"SMTP ready\r\n\r\n")
    with pytest.raises(E.ConnectFailed, match="invalid HTTP reply"):
        await pool.post(garbage.url, b"{}", {})

    with socket.socket() as s:  # a port with no listener: a real refusal
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(E.ConnectFailed, match="cannot connect") as refused:
        await pool.post(f"http://127.0.0.1:{port}/x", b"{}", {})
    assert isinstance(refused.value.__cause__, OSError)  # the socket's own error, chained
    await pool.aclose()


async def test_a_connect_that_hangs_times_out(monkeypatch: pytest.MonkeyPatch) -> None:
    loop = asyncio.get_running_loop()

    async def never(*args: object, **kwargs: object) -> None:
        await asyncio.Event().wait()

    monkeypatch.setattr(loop, "create_connection", never)
    pool = T.HttpPool()
    with pytest.raises(E.ConnectTimeout) as exc:
        await pool.post("http://127.0.0.1:9/x", b"{}", {}, connect_timeout=0.01)
    assert isinstance(exc.value, E.AttemptTimeout) and exc.value.kind is E.ErrorKind.TIMEOUT


async def test_an_unread_or_cancelled_answer_drops_its_connection(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    server = await serve(echo)
    pool = T.HttpPool()
    resp = await pool.post(server.url, b"{}", {})
    resp.close()  # body never read: the connection may hold its bytes, so it is not reused
    resp.close()  # closing twice is harmless
    server.gate = asyncio.Event()
    task = asyncio.ensure_future(pool.post(server.url, b"{}", {}))
    async with server.arrived:
        await server.arrived.wait_for(lambda: server.active > 0)
    task.cancel()  # mid-exchange: that connection cannot be reused either
    with pytest.raises(asyncio.CancelledError):
        await task
    server.gate.set()
    resp = await pool.post(server.url, b"{}", {})
    await resp.read()
    resp.release()
    assert server.connections == 3
    await pool.aclose()


async def test_the_limit_bounds_requests_in_flight(serve: Callable[..., asyncio.Future[Server]]) -> None:
    server = await serve(echo)
    server.gate = asyncio.Event()
    pool = T.HttpPool(limit=2)

    async def one() -> bytes:
        resp = await pool.post(server.url, b"{}", {})
        try:
            return await resp.read()
        finally:
            resp.release()

    tasks = [asyncio.ensure_future(one()) for _ in range(5)]
    async with server.arrived:
        await server.arrived.wait_for(lambda: server.active >= 2)
    await asyncio.sleep(0.01)
    assert server.active == 2  # the other three wait for a slot
    server.gate.set()
    assert len(await asyncio.gather(*tasks)) == 5
    assert server.most_active == 2
    assert server.connections == 2
    await pool.aclose()


async def test_bad_urls_and_header_values_are_refused_before_sending() -> None:
    pool = T.HttpPool()
    with pytest.raises(ValueError, match="not an http"):
        await pool.post("ftp://example.com/x", b"", {})
    with pytest.raises(ValueError, match="line break"):
        await pool.post("http://127.0.0.1:9/x", b"", {"x-evil": "a\r\nx-injected: 1"})


def test_a_pool_outlives_its_event_loop() -> None:
    """Used from one ``asyncio.run`` and then another: the old loop's connections are dropped."""
    pool = T.HttpPool()

    async def once() -> bytes:
        srv = await asyncio.start_server(Server(echo).handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/x"
        resp = await pool.post(url, b"{}", {})
        body = await resp.read()
        resp.release()
        srv.close()
        return body

    assert asyncio.run(once()) and asyncio.run(once())


def test_the_client_runs_on_uvloop() -> None:
    """`turnout serve` runs on uvloop, whose transports are not asyncio's classes."""
    uvloop = pytest.importorskip("uvloop")
    pool = T.HttpPool()

    async def main() -> list[bytes]:
        server = Server(echo)
        srv = await asyncio.start_server(server.handle, "127.0.0.1", 0)
        url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/x"
        bodies = []
        for _ in range(2):
            resp = await pool.post(url, b"{}", {})
            bodies.append(await resp.read())
            resp.release()
        assert server.connections == 1
        await pool.aclose()
        srv.close()
        for writer in list(server.writers):
            writer.close()
        await asyncio.sleep(0)
        return bodies

    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        assert len(runner.run(main())) == 2


async def test_a_stream_released_before_its_last_chunk_is_reused_once_it_arrives() -> None:
    """A stream's end event comes before the chunked body's end: release() waits for that end
    (dropping what comes) and then pools the connection, instead of closing it."""
    go_on = asyncio.Event()
    connections = 0

    async def handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        try:
            for _ in range(2):
                await reader.readuntil(b"\r\n\r\n")
                await reader.readexactly(2)
                writer.write(b"HTTP/1.1 200 OK\r\ntransfer-encoding: chunked\r\n\r\n")
                writer.write(_chunk(b"data: [DONE]\n\n"))
                await writer.drain()
                await go_on.wait()
                writer.write(_chunk(b": trailing comment\n\n") + b"0\r\n\r\n")
                await writer.drain()
        except asyncio.IncompleteReadError:
            pass
        finally:
            writer.close()

    srv = await asyncio.start_server(handle, "127.0.0.1", 0)
    url = f"http://127.0.0.1:{srv.sockets[0].getsockname()[1]}/s"
    pool = T.HttpPool()
    resp = await pool.post(url, b"{}", {})
    assert await resp.readany() == b"data: [DONE]\n\n"
    resp.release()  # the caller has its end event; the body's end is still to come
    assert not any(pool._idle.values())  # not pooled yet: its answer is not over
    go_on.set()
    for _ in range(500):  # until the rest has arrived and been dropped
        if any(pool._idle.values()):
            break
        await asyncio.sleep(0.001)
    second = await pool.post(url, b"{}", {})
    await second.read()
    second.release()
    assert connections == 1
    await pool.aclose()
    srv.close()


def _chunk(data: bytes) -> bytes:
    return b"%x\r\n%s\r\n" % (len(data), data)


async def test_a_deadline_bounds_the_answer_and_drops_its_connection(
    serve: Callable[..., asyncio.Future[Server]],
) -> None:
    server = await serve(echo)
    server.gate = asyncio.Event()  # the server holds its answer
    pool = T.HttpPool()
    with pytest.raises(E.AttemptTimeout, match="timeout") as info:  # connect or read: the first due
        await pool.post(server.url, b"{}", {}, timeout=0)  # already due: no real waiting
    assert info.value.kind is E.ErrorKind.TIMEOUT
    server.gate.set()
    resp = await pool.post(server.url, b"{}", {}, timeout=30)
    await resp.read(30)
    resp.release()
    assert server.connections == 2  # the timed-out exchange's connection was not reused
    await pool.aclose()


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    reply=st.one_of(
        st.binary(max_size=300),
        st.builds(
            lambda status, head, body: b"HTTP/1.1 " + status + b"\r\n" + head + b"\r\n\r\n" + body,
            st.sampled_from([b"200 OK", b"429 Too Many", b"abc", b"200"]),
            st.binary(max_size=80),
            st.binary(max_size=80),
        ),
    )
)
async def test_any_reply_gives_an_answer_or_a_transport_error_never_a_hang(
    serve: Callable[..., asyncio.Future[Server]], reply: bytes
) -> None:
    """Garbage from upstream: the client returns what it parsed or raises one of the router's
    transport errors, bounded by the timeout, and its pool stays usable."""
    server = await serve(lambda r: reply, close_after=True)
    pool = T.HttpPool()
    try:
        resp = await pool.post(server.url, b"{}", {}, timeout=10)
        try:
            await resp.read(10)
        finally:
            resp.close()
    except E.TransportError as exc:
        assert type(exc) in (E.ConnectFailed, E.StreamCut)
    plain = await serve(echo)
    resp = await pool.post(plain.url, b"{}", {})
    assert resp.status == 200 and await resp.read()
    resp.release()
    await pool.aclose()
