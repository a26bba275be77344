"""``turnout proxy``: faults in front of any upstream, everything else passed through, streams live."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from aiohttp import web
from chaos_helpers import CHAT, rule

from chaos import ChaosEngine, Rule, create_proxy_app
from chaos.proxy import infer_provider
from mockproviders.clock import FakeClock
from mockproviders.server import MockServer


@asynccontextmanager
async def serve(app: web.Application) -> AsyncIterator[str]:
    runner = web.AppRunner(app, access_log=None, handle_signals=False)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    server: Any = site._server
    try:
        yield f"http://127.0.0.1:{server.sockets[0].getsockname()[1]}"
    finally:
        await runner.cleanup()


@asynccontextmanager
async def proxied(*rules: Rule, **kw: Any) -> AsyncIterator[tuple[str, MockServer, ChaosEngine]]:
    """A plain mock upstream (FakeClock: deterministic bytes) and a chaos proxy in front of it."""
    engine = ChaosEngine(rules, clock=FakeClock(), header_faults=kw.pop("header_faults", False))
    async with (
        MockServer(clock=FakeClock()) as upstream,
        serve(create_proxy_app(upstream.url, engine, **kw)) as url,
    ):
        yield url, upstream, engine


async def _sse(base: str, path: str = "/openai/v1/chat/completions") -> bytes:
    async with httpx2.AsyncClient() as raw:
        body = {"model": "gpt-4o-mini", "messages": CHAT, "stream": True}
        r = await raw.post(base + path, json=body, headers={"authorization": "Bearer sk-test"})
        return r.content


async def test_untouched_requests_pass_through_byte_for_byte() -> None:
    async with proxied() as (url, upstream, engine), MockServer(clock=FakeClock()) as direct:
        assert await _sse(url) == await _sse(direct.url)
        async with openai.AsyncOpenAI(
            base_url=url + "/openai/v1", api_key="sk-test", max_retries=0
        ) as client:
            answer = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
            assert answer.choices[0].message.content
            models = await client.models.list()
            assert any(m.id == "gpt-4o-mini" for m in models.data)
        assert [e["fault"] for e in engine.journal] == [None, None, None]
        assert len(upstream.core.journal) == 3


async def test_status_fault_answers_without_reaching_the_upstream() -> None:
    async with proxied(rule("429", "rate_limit", params={"retry_after": 9})) as (url, upstream, engine):
        async with openai.AsyncOpenAI(
            base_url=url + "/openai/v1", api_key="sk-test", max_retries=0
        ) as client:
            with pytest.raises(openai.RateLimitError) as info:
                await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert info.value.response.headers["retry-after"] == "9"
        assert len(upstream.core.journal) == 0 and engine.journal[0]["fault"] == "rate_limit"


async def test_stream_faults_apply_mid_stream_through_the_proxy() -> None:
    async with proxied(rule("cut", "cut", params={"after_tokens": 3})) as (url, upstream, engine):
        async with openai.AsyncOpenAI(
            base_url=url + "/openai/v1", api_key="sk-test", max_retries=0
        ) as client:
            stream = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT, stream=True)
            got = []
            with pytest.raises(openai.APIConnectionError):
                async for chunk in stream:
                    got.append(chunk.choices[0].delta.content or "")
        assert len("".join(got).split()) == 3
        assert upstream.core.journal.entries[0].status == 200  # the upstream answered in full
        assert engine.journal[0]["aborted"] == "close"


async def test_anthropic_in_band_error_through_the_proxy() -> None:
    async with proxied(rule("err", "error_event", params={"after_tokens": 1})) as (url, _, engine):
        client = anthropic.AsyncAnthropic(base_url=url + "/anthropic", api_key="k", max_retries=0)
        async with client:
            with pytest.raises(anthropic.APIStatusError) as info:
                async with client.messages.stream(
                    model="claude-haiku-4-5", max_tokens=40, messages=CHAT
                ) as s:
                    async for _ in s.text_stream:
                        pass
        assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "overloaded_error"
        assert engine.journal[0]["provider"] == "anthropic"


async def test_unreachable_upstream_is_a_502() -> None:
    async with (
        serve(create_proxy_app("http://127.0.0.1:9", ChaosEngine())) as url,
        httpx2.AsyncClient() as raw,
    ):
        r = await raw.get(url + "/openai/v1/models")
        assert r.status_code == 502 and "upstream" in r.json()["error"]["message"]


async def test_headers_query_and_chunks_pass_through_live() -> None:
    release = asyncio.Event()

    async def echo(request: web.Request) -> web.StreamResponse:
        response = web.StreamResponse(headers={"x-upstream": "yes", "content-type": "application/x-ndjson"})
        await response.prepare(request)
        seen = {k.lower(): v for k, v in request.headers.items()}
        await response.write(json.dumps({"headers": seen, "raw_path": request.raw_path}).encode() + b"\n")
        await release.wait()  # the second chunk only after the client saw the first
        await response.write(b'{"second": true}\n')
        return response

    upstream_app = web.Application()
    upstream_app.router.add_route("*", "/{tail:.*}", echo)
    engine = ChaosEngine(
        [rule("slow", "latency", params={"delay": 0.001})], header_faults=True, clock=FakeClock()
    )
    async with serve(upstream_app) as upstream, serve(create_proxy_app(upstream, engine)) as url:
        headers = {
            "connection": "keep-alive, x-private",
            "x-private": "hop",
            "x-keep": "end-to-end",
            "x-turnout-fault": "latency",
            "x-turnout-fault-params": '{"delay": 0.001}',
        }
        async with (
            httpx2.AsyncClient() as raw,
            raw.stream("GET", url + "/any/path?a=1&b=%2F", headers=headers) as r,
        ):
            lines = r.aiter_lines()
            first = json.loads(await asyncio.wait_for(anext(lines), 10))
            release.set()
            second = json.loads(await asyncio.wait_for(anext(lines), 10))
        assert r.headers["x-upstream"] == "yes"
        assert first["raw_path"] == "/any/path?a=1&b=%2F"
        seen = first["headers"]
        assert seen["x-keep"] == "end-to-end"
        assert (
            "x-private" not in seen and "x-turnout-fault" not in seen and "x-turnout-fault-params" not in seen
        )
        assert second == {"second": True}
        assert engine.journal[0]["rule"] == "header:latency"


async def test_the_proxy_has_the_control_api() -> None:
    async with proxied() as (url, _, engine), httpx2.AsyncClient(base_url=url + "/_chaos") as api:
        r = await api.post(
            "/rules", json={"name": "down", "fault": "server_error", "match": {"provider": "mistral"}}
        )
        assert r.status_code == 201 and engine.rules[0].name == "down"
        assert (await _sse(url, "/mistral/v1/chat/completions")).startswith(b'{"object":"error"')


def test_provider_inference() -> None:
    assert infer_provider("/anthropic/v1/messages", None) == ("anthropic", "/v1/messages")
    assert infer_provider("/v1/messages", None) == ("anthropic", "/v1/messages")
    assert infer_provider("/v1/chat/completions", None) == ("openai", "/v1/chat/completions")
    assert infer_provider("/v1/chat/completions", "mistral") == ("mistral", "/v1/chat/completions")


async def test_completion_faults_never_apply_through_the_proxy() -> None:
    async with proxied(rule("empty", "empty_content"), header_faults=True) as (url, _, engine):
        async with openai.AsyncOpenAI(
            base_url=url + "/openai/v1", api_key="sk-test", max_retries=0
        ) as client:
            answer = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
            assert answer.choices[0].message.content  # untouched
            with pytest.raises(openai.BadRequestError, match="cannot happen to this request"):
                await client.chat.completions.create(
                    model="gpt-4o-mini", messages=CHAT, extra_headers={"x-turnout-fault": "empty_content"}
                )
        assert engine.counters() == {"empty": {"matched": 0, "injected": 0}}
        assert engine.journal[0]["fault"] is None
