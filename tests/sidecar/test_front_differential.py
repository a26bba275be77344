"""Differential fuzzing of the front door's head parsing against aiohttp's (issue 14).

The same bytes go to a bare aiohttp server (the reference) and to the front door in front of an
identical aiohttp application. For every head:

- what aiohttp refuses (a 4xx, its handler never runs) the front door refuses too, with a 4xx, or
  hands to aiohttp; it never serves it and never drops it;
- what aiohttp accepts, the front door serves as the same request (method, path, headers as the
  handler sees them, body) or hands over;
- nothing hangs: every exchange ends within the reader's guard.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest
from aiohttp import web
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from router.sidecar.front import Exchange, Front

BODY = b'{"x":1}'
Seen = tuple[str, str, list[tuple[str, str]], bytes]  # method, path, headers, body


@dataclass
class Pair:
    reference: int  # port of the bare aiohttp server
    fronted: int  # port of the front door, the same app behind it
    front: Front
    ref_seen: list[Seen] = field(default_factory=list)
    app_seen: list[Seen] = field(default_factory=list)  # the fronted app (handed over)
    fast_seen: list[Seen] = field(default_factory=list)  # served by the front door itself


def _app(seen: list[Seen]) -> web.Application:
    async def handler(request: web.Request) -> web.Response:
        body = await request.read()
        seen.append(
            (request.method, request.path_qs, [(k.lower(), v) for k, v in request.headers.items()], body)
        )
        return web.json_response({"ok": True})

    app = web.Application(client_max_size=1024)
    app.router.add_route("*", "/{tail:.*}", handler)
    return app


@pytest.fixture
async def pair() -> AsyncIterator[Pair]:
    ref_seen: list[Seen] = []
    app_seen: list[Seen] = []
    fast_seen: list[Seen] = []
    paths = {"chat": "/v1/chat/completions", "embeddings": "/v1/embeddings"}

    async def dispatch(kind: str, ex: Exchange) -> None:
        fast_seen.append(("POST", paths[kind], [(k, v) for k, v in ex.headers.items()], ex.body))
        ex.respond(200, {"content-type": "application/json"}, b'{"ok": true}')

    runners = []
    for seen in (ref_seen, app_seen):
        runner = web.AppRunner(_app(seen), access_log=None, handle_signals=False)
        await runner.setup()
        runners.append(runner)
    site = web.TCPSite(runners[0], "127.0.0.1", 0)
    await site.start()
    ref_port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    assert runners[1].server is not None
    front = Front(dispatch, runners[1].server, max_body=1024)
    server = await asyncio.get_running_loop().create_server(front, "127.0.0.1", 0)
    yield Pair(ref_port, server.sockets[0].getsockname()[1], front, ref_seen, app_seen, fast_seen)
    front.shutdown()
    server.close()
    for runner in runners:
        await runner.cleanup()


async def send(port: int, data: bytes) -> bytes:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        writer.write(data)
        writer.write_eof()
        return await asyncio.wait_for(reader.read(), 30)  # a guard: a hang fails, never blocks CI
    finally:
        writer.close()


def status(reply: bytes) -> int | None:
    return int(reply[9:12]) if reply[:7] == b"HTTP/1." and len(reply) >= 12 else None


_TOKEN = st.text(
    alphabet="abcdefghijklmnopqrstuvwxyz-ABCXYZ0123456789!#$%&'*+.^_`|~", min_size=1, max_size=12
)
_VALUE_BYTES = st.binary(max_size=12)
_PRINTABLE = st.text(alphabet=st.characters(min_codepoint=0x20, max_codepoint=0x7E), max_size=16)
_PLAIN = st.tuples(_TOKEN.map(str.encode), _PRINTABLE.map(str.encode))
_HEADER = st.one_of(
    _PLAIN,
    _PLAIN,
    _PLAIN,
    _PLAIN,
    st.tuples(_TOKEN.map(str.encode), _VALUE_BYTES),  # any bytes in the value (controls, 0xff, CR, LF)
    st.tuples(st.sampled_from([b"x y", b"", b" x", b"x ", b"x\x00", b"\xff"]), _PRINTABLE.map(str.encode)),
    st.tuples(
        st.sampled_from([b"Transfer-Encoding", b"Expect", b"Upgrade", b"Connection", b"Authorization"]),
        st.sampled_from([b"chunked", b"100-continue", b"h2c", b"keep-alive", b"close", b"Bearer \xff\xfe"]),
    ),
)
_LENGTH = st.one_of(
    st.just(str(len(BODY)).encode()),
    st.just(str(len(BODY)).encode()),
    st.just(str(len(BODY)).encode()),
    st.sampled_from(
        [b"\xb2", "²".encode(), b"9" * 30, b"+7", b"-7", b"0x7", b" 7", b"7 ", b"", b"7, 7", b"07"]
    ),
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    method=st.sampled_from([b"POST"] * 8 + [b"GET", b"post"]),
    path=st.sampled_from(
        [b"/v1/chat/completions"] * 4 + [b"/v1/embeddings", b"/x", b"/v1/chat/completions?a=1", b"*"]
    ),
    version=st.sampled_from([b"HTTP/1.1"] * 8 + [b"HTTP/1.0", b"HTTP/2.0", b"HTTP/1.1 "]),
    host=st.sampled_from([True] * 6 + [False]),
    length=st.one_of(_LENGTH, _LENGTH, _LENGTH, st.none()),
    before=st.lists(_HEADER, max_size=3),
    after=st.lists(_HEADER, max_size=2),
    bare_lf=st.integers(0, 19),
)
async def test_the_front_door_agrees_with_aiohttp_on_every_head(
    pair: Pair,
    method: bytes,
    path: bytes,
    version: bytes,
    host: bool,
    length: bytes | None,
    before: list[tuple[bytes, bytes]],
    after: list[tuple[bytes, bytes]],
    bare_lf: int,
) -> None:
    lines = [method + b" " + path + b" " + version]
    lines += [name + b": " + value for name, value in before]
    if host:
        lines.append(b"Host: t")
    if length is not None:
        lines.append(b"Content-Length: " + length)
    lines += [name + b": " + value for name, value in after]
    lines.append(b"Connection: close")
    eol = b"\n" if bare_lf == 0 else b"\r\n"  # now and then a head with bare LF line ends
    data = eol.join(lines) + eol + eol + BODY
    for seen in (pair.ref_seen, pair.app_seen, pair.fast_seen):
        seen.clear()
    handed, served = pair.front.handed_over, pair.front.served

    ref_reply = await send(pair.reference, data)
    reply = await send(pair.fronted, data)

    ref_status = status(ref_reply)
    if pair.front.handed_over > handed:
        event("handed over")
        return  # aiohttp's parser and app from the first byte: the same answer by construction
    assert reply, f"dropped without an answer: {data!r}"
    got = status(reply)
    assert got is not None, reply[:100]
    if pair.front.served > served:  # served here: aiohttp must have accepted the same request
        event("served by the front door")
        assert pair.ref_seen, f"the front door served what aiohttp refused ({ref_status}): {data!r}"
        assert pair.fast_seen
        ref_method, ref_path, ref_headers, ref_body = pair.ref_seen[0]
        method_seen, path_seen, headers_seen, body_seen = pair.fast_seen[0]
        assert (method_seen, path_seen, body_seen) == (ref_method, ref_path, ref_body)
        assert headers_seen == ref_headers
    else:  # answered here without serving: a refusal, as aiohttp's
        event(f"refused by the front door ({got})")
        assert 400 <= got < 500, reply[:200]
        assert ref_status is None or ref_status >= 400 or not pair.ref_seen, (
            f"the front door refused ({got}) what aiohttp served: {data!r}"
        )
