"""Issue 14's broken upstreams against the router's client, over real loopback sockets.

A scripted server answers each path with given bytes. A reply whose framing is broken must end as
a classified router error that falls back to the next model, memory stays bounded by the
configured reply cap, 1xx answers are skipped, compressed bodies are bounded and checked, idle
pooled connections are closed. Broken bodies in well-framed replies run without sockets, in
test_adversarial_replies.py.
"""

from __future__ import annotations

import asyncio
import gzip
import json
import zlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from router import Router, parse_config
from router import errors as E
from router.audit import AuditLog
from router.clock import FakeClock
from router.transport import HttpPool
from router.types import ChatRequest, Message

GOOD = {
    "id": "c1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
Script = Callable[[asyncio.StreamWriter], Any]


def reply(body: bytes, status: int = 200, headers: bytes = b"content-type: application/json\r\n") -> bytes:
    reason = {200: b"OK", 400: b"Bad Request"}.get(status, b"X")
    return b"HTTP/1.1 %d %s\r\n%scontent-length: %d\r\n\r\n%s" % (status, reason, headers, len(body), body)


class Upstream:
    """A server on port 0: each request's path picks its script (bytes, or a coroutine function
    writing to the connection). Counts connections open, for the pool tests."""

    def __init__(self, scripts: dict[str, bytes | Script]) -> None:
        self.scripts = scripts
        self.open = 0
        self.closed = asyncio.Event()
        self.server: asyncio.Server | None = None

    async def __aenter__(self) -> Upstream:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return self

    async def __aexit__(self, *exc: object) -> None:
        assert self.server is not None
        self.server.close()

    def url(self, name: str) -> str:
        assert self.server is not None
        return f"http://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/{name}/v1"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.open += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = int(head.lower().split(b"content-length:")[1].split(b"\r\n")[0])
                await reader.readexactly(length)
                script = self.scripts[head.split(b" ")[1].decode().split("/")[1]]
                if isinstance(script, bytes):
                    writer.write(script)
                else:
                    await script(writer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            pass
        finally:
            self.open -= 1
            self.closed.set()
            writer.close()


def router_for(
    up: Upstream, first: str, *, kind: str = "openai", max_reply_bytes: int = 1 << 20, **timeouts: str
) -> Router:
    cfg = parse_config(
        {
            "providers": {
                "bad": {
                    "kind": kind,
                    "base_url": up.url(first),
                    "api_key": "sk-x",
                    "max_reply_bytes": max_reply_bytes,
                },
                "good": {"kind": "openai", "base_url": up.url("good"), "api_key": "sk-x"},
            },
            "models": {
                "a": {"provider": "bad", "model": "m"},
                "b": {"provider": "good", "model": "gpt-4o-mini"},
            },
            "routes": {"main": {"chain": ["a", "b"]}, "only": {"chain": ["a"]}},
            "defaults": {
                "retries": 0,
                "timeouts": {
                    "total": "20s",
                    "connect": "2s",
                    "read": "5s",
                    "first_token": "5s",
                    "idle": "5s",
                    **timeouts,
                },
            },
        }
    )
    return Router(cfg, clock=FakeClock(), listeners=[AuditLog()])


def ask(route: str = "main", **kw: Any) -> ChatRequest:
    return ChatRequest(model=route, messages=[Message("user", "hi")], **kw)


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


# Broken bodies (deep JSON, 1e400 tokens, text that is a number, a huge SSE line) go through the
# router on the in-memory transport: test_adversarial_replies.py. These break the HTTP framing.
BROKEN_REPLIES = {
    "tooBig": reply(json.dumps({**GOOD, "pad": "x" * (2 << 20)}).encode()),
    "gzipBomb": reply(gzip.compress(b" " * (200 << 20)), headers=b"content-encoding: gzip\r\n"),
    "gzipCut": reply(gzip.compress(json.dumps(GOOD).encode())[:-12], headers=b"content-encoding: gzip\r\n"),
}


@pytest.mark.parametrize("name", sorted(BROKEN_REPLIES))
async def test_a_broken_reply_is_malformed_and_falls_back(name: str) -> None:
    scripts: dict[str, bytes | Script] = {
        name: BROKEN_REPLIES[name],
        "good": reply(json.dumps(GOOD).encode()),
    }
    async with Upstream(scripts) as up:
        router = router_for(up, name)
        try:
            resp = await router.complete(ask())
            assert resp.model == "b" and resp.content == "fine"
            with pytest.raises(E.AllAttemptsFailed) as info:
                await router.complete(ask("only"))
            kinds = [err.kind for err in info.value.errors]
            assert kinds in ([E.ErrorKind.MALFORMED], [E.ErrorKind.STREAM_CUT]), info.value
        finally:
            await router.aclose()


async def test_informational_answers_in_their_own_packets_are_skipped() -> None:
    async def early(w: asyncio.StreamWriter) -> None:
        w.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        await w.drain()
        await asyncio.sleep(0.02)  # a packet of its own
        w.write(b"HTTP/1.1 103 Early Hints\r\nlink: </x>; rel=preload\r\n\r\n")
        await w.drain()
        await asyncio.sleep(0.02)
        w.write(reply(json.dumps(GOOD).encode()))

    async with Upstream({"early": early}) as up:
        pool = HttpPool()
        try:
            for _ in range(2):  # the same pooled connection twice: nothing left over on it
                resp = await pool.post(up.url("early") + "/chat/completions", b"{}", {})
                assert resp.status == 200
                assert json.loads(await resp.read()) == GOOD
                resp.release()
        finally:
            await pool.aclose()


async def test_raw_deflate_is_accepted_as_well_as_zlib_deflate() -> None:
    body = json.dumps(GOOD).encode()
    raw = zlib.compressobj(wbits=-zlib.MAX_WBITS)
    scripts: dict[str, bytes | Script] = {
        "raw": reply(raw.compress(body) + raw.flush(), headers=b"content-encoding: deflate\r\n"),
        "zlib": reply(zlib.compress(body), headers=b"content-encoding: deflate\r\n"),
    }
    async with Upstream(scripts) as up:
        pool = HttpPool()
        try:
            for name in scripts:
                resp = await pool.post(up.url(name) + "/chat/completions", b"{}", {})
                assert json.loads(await resp.read()) == GOOD
                resp.release()
        finally:
            await pool.aclose()


async def test_a_gzip_bomb_stops_at_the_cap_without_expanding() -> None:
    async with Upstream({"bomb": BROKEN_REPLIES["gzipBomb"]}) as up:
        pool = HttpPool(max_body=1 << 20)
        try:
            resp = await pool.post(up.url("bomb") + "/x", b"{}", {})
            with pytest.raises(E.ReplyTooLarge):
                await resp.read()
            resp.close()
        finally:
            await pool.aclose()


def _rss_kib(field: str) -> int:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field):
            return int(line.split()[1])
    raise AssertionError(field)


@pytest.mark.skipif(not Path("/proc/self/clear_refs").exists(), reason="needs Linux /proc")
async def test_a_huge_reply_leaves_memory_bounded_by_the_cap() -> None:
    async def flood(w: asyncio.StreamWriter) -> None:  # 256 MiB announced, sent until cut off
        w.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % (256 << 20)
        )
        piece = b"x" * (1 << 20)
        for _ in range(256):
            w.write(piece)
            await w.drain()

    async with Upstream({"flood": flood, "good": reply(json.dumps(GOOD).encode())}) as up:
        router = router_for(up, "flood", max_reply_bytes=2 << 20)
        try:
            with open("/proc/self/clear_refs", "w") as refs:  # noqa: ASYNC230 - a /proc control file
                refs.write("5")  # the peak (VmHWM) restarts from here
            before = _rss_kib("VmRSS:")
            assert (await router.complete(ask())).model == "b"
            grown_mib = (_rss_kib("VmHWM:") - before) / 1024
            assert grown_mib < 48, (
                f"peak RSS grew {grown_mib:.0f} MiB reading a 256 MiB reply capped at 2 MiB"
            )
        finally:
            await router.aclose()


async def test_a_hang_after_the_request_was_sent_is_a_read_timeout_not_a_connect_timeout() -> None:
    async def hang(w: asyncio.StreamWriter) -> None:
        await asyncio.sleep(30)

    async with Upstream({"hang": hang}) as up:
        pool = HttpPool()
        try:
            with pytest.raises(E.ReadTimeout):
                await pool.post(up.url("hang") + "/x", b"{}", {}, connect_timeout=5, timeout=0.2)
        finally:
            await pool.aclose()
        router = router_for(up, "hang", read="200ms")
        try:
            with pytest.raises(E.RouterError) as info:
                await router.complete(ask("only"))
            assert "connect" not in str(info.value) and "read timeout" in str(info.value)
        finally:
            await router.aclose()


async def test_idle_pooled_connections_are_closed_after_keepalive_without_new_requests() -> None:
    async with Upstream({"ok": reply(json.dumps(GOOD).encode())}) as up:
        pool = HttpPool(keepalive=0.05)
        try:
            resp = await pool.post(up.url("ok") + "/x", b"{}", {})
            await resp.read()
            resp.release()
            assert up.open == 1
            up.closed.clear()
            await asyncio.wait_for(up.closed.wait(), 30)  # the sweep closed it; no request needed
            assert up.open == 0
        finally:
            await pool.aclose()
