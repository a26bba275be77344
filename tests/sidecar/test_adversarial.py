"""Issue 14's adversarial cases against `turnout serve`'s front door, replayed over real sockets.

Each case must end in a clean, bounded answer: a 4xx in OpenAI's error shape (or aiohttp's own
4xx for a head it refuses), never a dropped connection, a hang or a 500.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable

import pytest

from .conftest import CLIENT_KEY, Sidecar, SidecarFactory

AUTH = f"Authorization: Bearer {CLIENT_KEY}\r\n".encode()
CHAT = b'{"model":"chat","messages":[{"role":"user","content":"hi"}]}'


async def exchange(sidecar: Sidecar, data: bytes, *, read_all: bool = True) -> bytes:
    """Send ``data`` on a fresh connection; return what came back until the server closed it
    (``read_all``) or the first answer's end (a 30 s guard: a hang fails the test, not CI)."""
    reader, writer = await asyncio.open_connection("127.0.0.1", sidecar.server.port)
    try:
        writer.write(data)
        await writer.drain()
        if read_all:
            return await asyncio.wait_for(reader.read(), 30)
        head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 30)
        length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
        return head + await asyncio.wait_for(reader.readexactly(length), 30)
    finally:
        writer.close()


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(3000):  # a 30 s guard
        if condition():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("the condition never held")


def status_of(reply: bytes) -> int:
    assert reply[:9] in (b"HTTP/1.1 ", b"HTTP/1.0 "), reply[:200]
    return int(reply[9:12])


def error_of(reply: bytes) -> dict[str, object]:
    body = json.loads(reply.split(b"\r\n\r\n", 1)[1])
    assert isinstance(body["error"], dict)
    return body["error"]


def chat_head(
    extra: bytes = b"", length: int | bytes | None = None, path: bytes = b"/v1/chat/completions"
) -> bytes:
    cl = (
        b""
        if length is None
        else b"Content-Length: %s\r\n" % (str(length).encode() if isinstance(length, int) else length)
    )
    return (
        b"POST "
        + path
        + b" HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        + AUTH
        + cl
        + extra
        + b"\r\n"
    )


# -- Content-Length -------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [b"\xb2", "²".encode(), b"9" * 5000, b"1 2", b"-1", b"+5", b"0x10"])
async def test_a_content_length_that_is_not_a_number_is_answered_400(sidecar: Sidecar, value: bytes) -> None:
    reply = await exchange(sidecar, chat_head(length=value) + CHAT)
    assert status_of(reply) == 400
    assert "Content-Length" in str(error_of(reply)["message"])


async def test_a_good_request_still_passes_on_the_same_front_door(sidecar: Sidecar) -> None:
    reply = await exchange(sidecar, chat_head(b"Connection: close\r\n", len(CHAT)) + CHAT)
    assert status_of(reply) == 200
    assert json.loads(reply.split(b"\r\n\r\n", 1)[1])["object"] == "chat.completion"


# -- heads that are not plain ---------------------------------------------------------------------


async def test_a_head_with_bare_lf_line_ends_is_answered_without_waiting_for_16k(sidecar: Sidecar) -> None:
    head = chat_head(b"Connection: close\r\n", len(CHAT)).replace(b"\r\n", b"\n")
    reply = await exchange(sidecar, head + CHAT)  # returns once the server answered and closed
    assert status_of(reply) in (200, 400)  # aiohttp's parser decides; never a hang


@pytest.mark.parametrize("path", [b"/v1/chat/completions", b"/healthz", b"/v1/models"])
async def test_a_request_without_host_is_answered_400(sidecar: Sidecar, path: bytes) -> None:
    method = b"POST" if path == b"/v1/chat/completions" else b"GET"
    head = method + b" " + path + b" HTTP/1.1\r\n" + AUTH + b"Content-Length: %d\r\nConnection: close\r\n\r\n"
    body = CHAT if method == b"POST" else b""
    reply = await exchange(sidecar, head % len(body) + body)
    assert status_of(reply) == 400
    assert b"Host" in reply.split(b"\r\n\r\n", 1)[1]  # other paths: aiohttp's own 400 says so


async def test_a_64k_header_in_one_read_is_refused(sidecar: Sidecar) -> None:
    reply = await exchange(sidecar, chat_head(b"X-Big: " + b"a" * 65536 + b"\r\n", len(CHAT)) + CHAT)
    assert 400 <= status_of(reply) < 500


async def test_ten_thousand_headers_in_one_read_are_refused(sidecar: Sidecar) -> None:
    many = b"".join(b"X-H%d: v\r\n" % i for i in range(10_000))
    reply = await exchange(sidecar, chat_head(many, len(CHAT)) + CHAT)
    assert 400 <= status_of(reply) < 500


async def test_expect_100_continue_with_an_oversized_body_gets_413_and_no_100(
    make_sidecar: SidecarFactory,
) -> None:
    sidecar = await make_sidecar(max_body_bytes=4096)
    reply = await exchange(sidecar, chat_head(b"Expect: 100-continue\r\n", 10_000_000))
    assert status_of(reply) == 413  # the first line: no "100 Continue" before it
    assert b"100 Continue" not in reply
    assert error_of(reply)["code"] == "body_too_large"


async def test_expect_100_continue_within_the_limit_is_served(sidecar: Sidecar) -> None:
    reply = await exchange(
        sidecar, chat_head(b"Expect: 100-continue\r\nConnection: close\r\n", len(CHAT)) + CHAT
    )
    assert b" 200 OK" in reply


# -- slow and many clients -------------------------------------------------------------------------


async def test_a_head_that_never_completes_gets_408(make_sidecar: SidecarFactory) -> None:
    sidecar = await make_sidecar(head_timeout=0.2)
    reply = await exchange(sidecar, b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\nX-Slow: ")
    assert status_of(reply) == 408
    assert error_of(reply)["code"] == "request_timeout"
    assert sidecar.server.front is not None and sidecar.server.front.timed_out == 1


async def test_a_body_that_never_arrives_gets_408(make_sidecar: SidecarFactory) -> None:
    sidecar = await make_sidecar(body_timeout=0.2)
    reply = await exchange(sidecar, chat_head(length=len(CHAT)) + CHAT[:10])
    assert status_of(reply) == 408
    assert "body" in str(error_of(reply)["message"])


async def test_connections_past_the_cap_are_closed_at_once_and_the_cap_frees_up(
    make_sidecar: SidecarFactory,
) -> None:
    sidecar = await make_sidecar(max_connections=3)
    port = sidecar.server.port
    held = [await asyncio.open_connection("127.0.0.1", port) for _ in range(3)]
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    assert await asyncio.wait_for(reader.read(), 30) == b""  # closed by the server, unanswered
    writer.close()
    front = sidecar.server.front
    assert front is not None and front.refused >= 1
    for _, w in held:
        w.close()
    await until(lambda: front.open == 0)  # the closes reach the server
    reply = await exchange(sidecar, chat_head(b"Connection: close\r\n", len(CHAT)) + CHAT)
    assert status_of(reply) == 200


async def test_handed_over_connections_count_against_the_cap(make_sidecar: SidecarFactory) -> None:
    sidecar = await make_sidecar(max_connections=2)
    front = sidecar.server.front
    assert front is not None
    reader, writer = await asyncio.open_connection("127.0.0.1", sidecar.server.port)
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")  # aiohttp's from here on
    await reader.readuntil(b"\r\n\r\n")
    assert front.handed_over == 1 and front.open == 1
    writer.close()
    await until(lambda: front.open == 0)


# -- bodies: JSON that would recurse or overflow ---------------------------------------------------

HOSTILE_JSON = [
    (b'{"model":"chat","messages":' + b"[" * 1000 + b"]" * 1000 + b"}", "deeper than"),
    (b"[" * 100_000, "deeper than"),
    (b'{"model":"chat","messages":[],"n":' + b"7" * 5000 + b"}", "number"),
    (b'{"model":"chat","temperature":NaN}', "NaN"),
    (b'{"model":"chat","messages":"\xff\xfe"}', "UTF-8"),
]


@pytest.mark.parametrize(("body", "words"), HOSTILE_JSON)
@pytest.mark.parametrize("path", ["fast", "aiohttp"])
async def test_hostile_json_is_a_400_naming_the_problem(
    sidecar: Sidecar, body: bytes, words: str, path: str
) -> None:
    if path == "fast":
        data = chat_head(b"Connection: close\r\n", len(body)) + body
    else:  # a chunked body: aiohttp's server reads it, the same handler answers
        data = chat_head(
            b"Transfer-Encoding: chunked\r\nConnection: close\r\n"
        ) + b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body)
    reply = await exchange(sidecar, data)
    assert status_of(reply) == 400, reply[:300]
    error = error_of(reply)
    assert error["type"] == "invalid_request_error"
    assert words in str(error["message"])


# -- API keys --------------------------------------------------------------------------------------


@pytest.mark.parametrize("path", ["fast", "aiohttp"])
async def test_an_authorization_header_that_is_not_utf8_is_a_401(sidecar: Sidecar, path: str) -> None:
    bad = b"Authorization: Bearer \xff\xfe\r\n"
    head = chat_head(length=len(CHAT)).replace(AUTH, bad)
    if path == "aiohttp":
        head = head.replace(b"POST /v1/chat/completions", b"POST /v1/chat/completions?x=1")
    reply = await exchange(sidecar, head.replace(b"\r\n\r\n", b"\r\nConnection: close\r\n\r\n") + CHAT)
    assert status_of(reply) == 401
    assert error_of(reply)["code"] == "invalid_api_key"


@pytest.mark.parametrize("path", ["fast", "aiohttp"])
async def test_a_non_ascii_key_works_on_both_paths(make_sidecar: SidecarFactory, path: str) -> None:
    key = "clé-très-secrète-ü"
    sidecar = await make_sidecar(api_keys=[key])
    target = b"/v1/chat/completions" if path == "fast" else b"/v1/chat/completions?x=1"
    head = chat_head(b"Connection: close\r\n", len(CHAT), path=target).replace(
        AUTH, b"Authorization: Bearer " + key.encode() + b"\r\n"
    )
    reply = await exchange(sidecar, head + CHAT)
    assert status_of(reply) == 200
