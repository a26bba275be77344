"""The whole stack over real sockets: openai SDK -> sidecar -> router.Router -> mock (+ chaos faults)."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import openai
import pytest
import yaml
from aiohttp import web
from aiohttp.test_utils import TestServer
from openai.types.chat import ChatCompletionMessageParam

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.clock import FakeClock, SystemClock
from mockproviders.server import MockServer
from router import Router, parse_config
from router.sidecar import Built, SidecarSettings, create_app
from router.sidecar.serve import make_factory
from router.sidecar.server import SidecarServer
from router.sidecar.settings import ServerSettings

PROVIDER_KEY = "sk-integration-SECRET-9f8e7d6c5b4a"
MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "Say something about trains."}]


def rule(name: str, fault: str, **kw: Any) -> Rule:
    return Rule.model_validate({"name": name, "fault": fault, **kw})


def router_config(mock_url: str) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": f"{mock_url}/openai/v1", "api_key": PROVIDER_KEY},
            "anthropic": {
                "kind": "anthropic",
                "base_url": f"{mock_url}/anthropic",
                "api_key": "sk-ant-key-12345",
            },
        },
        "models": {
            "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
            "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 256},
            "embed": {"provider": "openai", "model": "text-embedding-3-small"},
        },
        "routes": {"main": {"chain": ["gpt", "claude"]}, "solo": {"chain": ["gpt"]}},
        "defaults": {"retries": 0},
    }


Stack = Callable[..., Any]


@asynccontextmanager
async def stack(*rules: Rule, real_time: bool = False) -> AsyncIterator[tuple[SidecarServer, ChaosEngine]]:
    engine = ChaosEngine(list(rules), clock=SystemClock() if real_time else FakeClock())
    async with MockServer(app=create_mock_app(engine=engine)) as mock:
        cfg = parse_config(router_config(mock.url.rstrip("/")), source="test.yaml")

        def factory() -> Built:
            return Built(Router(cfg), frozenset({PROVIDER_KEY}))

        server = SidecarServer(create_app(SidecarSettings(), factory))
        await server.start_server()
        try:
            yield server, engine
        finally:
            await server.close()


def client(server: SidecarServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="unused", max_retries=0)


async def metrics_text(server: SidecarServer) -> str:
    async with aiohttp.ClientSession() as s, s.get(server.make_url("/metrics")) as r:
        return await r.text()


async def test_healthy_completion_and_stream() -> None:
    async with stack() as (server, _), client(server) as c:
        raw = await c.chat.completions.with_raw_response.create(model="main", messages=MSG)
        resp = raw.parse()
        assert resp.choices[0].message.content
        assert resp.model == "gpt-4o-mini" and resp.usage is not None and resp.usage.completion_tokens > 0
        assert raw.headers["x-turnout-model"] == "gpt" and raw.headers["x-turnout-attempts"] == "1"
        stream = await c.chat.completions.create(
            model="main", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]
        text = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
        assert text == resp.choices[0].message.content  # the mock is deterministic
        assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens > 0
        with pytest.raises(openai.NotFoundError):
            await c.chat.completions.create(model="no-such-route", messages=MSG)
        async with aiohttp.ClientSession() as s, s.get(server.make_url("/readyz")) as r:
            assert r.status == 200 and "main" in (await r.json())["routes"]
        text = await metrics_text(server)
    assert "no-such-route" not in text  # a client's string never becomes a label
    assert 'turnout_breaker_state{model="gpt"} 0.0' in text
    assert 'turnout_requests_total{model="gpt",outcome="success",route="main"} 2.0' in text


async def test_fallback_to_anthropic_when_openai_fails() -> None:
    faults = rule("down", "server_error", params={"status": 503}, match={"provider": ["openai"]})
    async with stack(faults) as (server, _), client(server) as c:
        raw = await c.chat.completions.with_raw_response.create(model="main", messages=MSG)
        resp = raw.parse()
        assert raw.headers["x-turnout-provider"] == "anthropic"
        assert raw.headers["x-turnout-attempts"] == "2"
        assert resp.model.startswith("claude-sonnet-4-5")
        stream = await c.chat.completions.create(model="main", messages=MSG, stream=True)
        assert "".join([ch.choices[0].delta.content or "" async for ch in stream])
        text = await metrics_text(server)
    assert 'turnout_fallbacks_total{from_model="gpt",route="main",to_model="claude"} 2.0' in text
    assert 'turnout_errors_total{kind="server",model="gpt"} 2.0' in text


async def test_stream_cut_after_output_ends_with_an_error_event() -> None:
    cut = rule("cut", "cut", params={"after_tokens": 3}, match={"provider": ["openai"]})
    async with stack(cut) as (server, _), client(server) as c:
        # OpenAI's API cannot continue a cut answer, and "solo" has nothing else: an error event.
        stream = await c.chat.completions.create(model="solo", messages=MSG, stream=True)
        got: list[str] = []
        with pytest.raises(openai.APIError) as info:
            async for ch in stream:
                got.append(ch.choices[0].delta.content or "")
    assert "".join(got)  # output had begun: no silent failover, no silent end
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "stream_cut"


async def test_a_stream_cut_mid_answer_reaches_the_sdk_as_one_whole_answer() -> None:
    cut = rule(  # the first stream of each of the two requests is cut; their continuations are not
        "cut",
        "cut",
        params={"after_tokens": 4},
        match={"provider": ["anthropic"]},
        when={"sequence": "fail 1, pass 1, fail 1, pass 1", "sequence_repeat": False},
    )
    async with stack(cut) as (server, _), client(server) as c:
        stream = await c.chat.completions.create(
            model="claude", messages=MSG, stream=True, stream_options={"include_usage": True}
        )
        chunks = [ch async for ch in stream]  # the SDK raises on an error event: none came
        body = {"model": "claude", "messages": MSG, "stream": True}
        async with (
            aiohttp.ClientSession() as s,
            s.post(server.make_url("/v1/chat/completions"), json=body) as r,
        ):
            raw = (await r.read()).decode()
        whole = await c.chat.completions.create(model="claude", messages=MSG)  # no fault left
        text = await metrics_text(server)
    streamed = "".join(ch.choices[0].delta.content or "" for ch in chunks if ch.choices)
    assert streamed == whole.choices[0].message.content  # the mock is deterministic: nothing lost or doubled
    assert (
        len({ch.id for ch in chunks}) == 1
        and [ch.choices[0].finish_reason for ch in chunks if ch.choices][-1] == "stop"
    )
    usage = chunks[-1].usage
    assert usage is not None and usage.completion_tokens >= whole.usage.completion_tokens  # type: ignore[union-attr]
    assert raw.count("data: [DONE]") == 1 and '"error"' not in raw
    assert 'turnout_stream_continuations_total{outcome="continued",route="claude"} 2.0' in text


async def test_everything_rate_limited_is_429_with_retry_after() -> None:
    storm = rule("storm", "rate_limit", params={"retry_after": 3})
    async with stack(storm) as (server, _), client(server) as c:
        with pytest.raises(openai.RateLimitError) as info:
            await c.chat.completions.create(model="main", messages=MSG)
    assert info.value.response.headers["retry-after"] == "3"
    assert info.value.response.headers["x-request-id"]


async def test_upstream_error_echoing_the_key_is_scrubbed() -> None:
    leak = rule("leak", "http_error", params={"status": 401, "message": f"Incorrect API key: {PROVIDER_KEY}"})
    async with stack(leak) as (server, _), client(server) as c:
        with pytest.raises(openai.APIStatusError) as info:
            await c.chat.completions.create(model="solo", messages=MSG)
        async with aiohttp.ClientSession() as s, s.get(server.make_url("/admin/state")) as r:
            state = await r.text()
    assert PROVIDER_KEY not in info.value.response.text and "***" in info.value.response.text
    assert PROVIDER_KEY not in state and "gpt" in json.loads(state)["router"]["deployments"]


# --- a hand-made upstream that stalls mid-stream, to watch cancellation and reloads -------------------


class SlowUpstream:
    """An OpenAI-speaking server: two chunks, then waits on ``release``; notes a cancelled handler."""

    def __init__(self) -> None:
        self.started = asyncio.Event()
        self.release = asyncio.Event()
        self.cancelled = asyncio.Event()
        self.app = web.Application()
        self.app.router.add_post("/v1/chat/completions", self.handle)

    async def handle(self, request: web.Request) -> web.StreamResponse:
        resp = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await resp.prepare(request)

        def chunk(delta: dict[str, Any], finish: str | None = None) -> bytes:
            body = {
                "id": "x",
                "object": "chat.completion.chunk",
                "created": 1,
                "model": "slow-1",
                "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            }
            return f"data: {json.dumps(body)}\n\n".encode()

        try:
            await resp.write(chunk({"role": "assistant", "content": "one "}))
            await resp.write(chunk({"content": "two "}))
            self.started.set()
            await self.release.wait()
            await resp.write(chunk({"content": "three"}))
            await resp.write(chunk({}, "stop") + b"data: [DONE]\n\n")
        except asyncio.CancelledError:
            self.cancelled.set()
            raise
        return resp


def slow_config(url: str, routes: dict[str, Any]) -> dict[str, Any]:
    return {
        "providers": {"slow": {"kind": "openai", "base_url": url, "api_key": PROVIDER_KEY}},
        "models": {"slow": {"provider": "slow", "model": "slow-1"}},
        "routes": routes,
        "server": {"drain_timeout": 10},
    }


async def test_client_disconnect_cancels_the_real_upstream_call() -> None:
    upstream = SlowUpstream()
    async with TestServer(upstream.app) as up:
        data = slow_config(str(up.make_url("/v1")), {})
        del data["server"]  # the sidecar's section; the router's parser does not know it
        cfg = parse_config(data)
        server = SidecarServer(create_app(SidecarSettings(), lambda: Built(Router(cfg))))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as s:
                resp = await s.post(
                    server.make_url("/v1/chat/completions"),
                    json={"model": "slow", "messages": MSG, "stream": True},
                )
                assert resp.status == 200
                await resp.content.readuntil(b"\n\n")
                await upstream.started.wait()
                resp.close()  # the client hangs up mid-stream
            await asyncio.wait_for(upstream.cancelled.wait(), 10)
            text = await metrics_text(server)
            assert 'turnout_attempts_total{model="slow",outcome="cancelled",route="slow"} 1.0' in text
        finally:
            await server.close()


async def test_reload_from_file_keeps_the_stream_in_flight(tmp_path: Path) -> None:
    upstream = SlowUpstream()
    async with TestServer(upstream.app) as up:
        path = tmp_path / "router.yaml"
        url = str(up.make_url("/v1"))
        path.write_text(yaml.safe_dump(slow_config(url, {"first": {"chain": ["slow"]}})))
        settings = SidecarSettings(server=ServerSettings(drain_timeout=10))
        server = SidecarServer(create_app(settings, make_factory(str(path), None)))
        await server.start_server()
        try:
            async with aiohttp.ClientSession() as s:
                resp = await s.post(
                    server.make_url("/v1/chat/completions"),
                    json={"model": "first", "messages": MSG, "stream": True},
                )
                await upstream.started.wait()
                path.write_text(yaml.safe_dump(slow_config(url, {"second": {"chain": ["slow"]}})))
                async with s.post(server.make_url("/admin/reload")) as r:
                    assert r.status == 200, await r.text()
                async with s.get(server.make_url("/v1/models")) as r:
                    ids = [m["id"] for m in (await r.json())["data"]]
                assert "second" in ids and "first" not in ids
                upstream.release.set()
                body = (await resp.read()).decode()
            assert body.rstrip().endswith("data: [DONE]")
            assert "three" in body
            path.write_text("providers: {slow: {kind: nope}}\n")
            async with aiohttp.ClientSession() as s, s.post(server.make_url("/admin/reload")) as r:
                err = await r.json()
                assert r.status == 400 and "providers.slow.kind" in err["error"]["message"]
        finally:
            await server.close()


async def test_streams_and_embeddings_say_the_sidecar_overhead_too() -> None:
    """Before: only non-streamed chat answers carried x-turnout-overhead-ms. For a stream it is the
    sidecar's and router's time up to the first token: the provider's 0.3 s wait is not in it."""
    slow = rule("slow", "slow_first_token", params={"delay": 0.3})
    async with stack(slow, real_time=True) as (server, _), client(server) as c:
        raw = await c.chat.completions.with_raw_response.create(model="main", messages=MSG, stream=True)
        overhead = float(raw.headers["x-turnout-overhead-ms"])
        assert 0 <= overhead < 250  # the 300 ms spent upstream before the first token is not in it
        assert raw.headers["x-turnout-route"] == "main"
        async for _ in raw.parse():
            pass
        emb = await c.embeddings.with_raw_response.create(model="embed", input=["a", "b"])
        assert float(emb.headers["x-turnout-overhead-ms"]) >= 0
        assert emb.headers["x-turnout-route"] == "embed"
