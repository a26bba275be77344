"""Key leaks, client disconnects, reloads without dropped requests, metrics content."""

from __future__ import annotations

import asyncio
import json
import logging

import aiohttp
import openai
import pytest
from openai.types.chat import ChatCompletionMessageParam

from router.sidecar.state import STATE, reload

from .conftest import CLIENT_KEY, PROVIDER_KEY, Sidecar

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
MSG: list[ChatCompletionMessageParam] = [{"role": "user", "content": "hi"}]


async def test_provider_key_never_leaves_the_sidecar(
    sidecar: Sidecar, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    async with sidecar.client() as client:
        with pytest.raises(openai.APIStatusError) as info:
            await client.chat.completions.create(model="leak", messages=MSG)
        seen.append(info.value.response.text)
        stream = await client.chat.completions.create(model="cut", messages=MSG, stream=True)
        with pytest.raises(openai.APIError) as cut:
            async for _ in stream:
                pass
        seen.append(json.dumps(cut.value.body))
    async with aiohttp.ClientSession(headers=AUTH) as s:
        for path in ("admin/state", "metrics", "readyz", "healthz", "v1/models"):
            async with s.get(sidecar.url + path) as r:
                seen.append(await r.text())
                seen.append(str(r.headers))
    seen.append(caplog.text)
    assert "upstream said: bad key ***" in seen[0]
    for text in seen:
        assert PROVIDER_KEY not in text
        assert CLIENT_KEY not in text


async def test_client_disconnect_cancels_the_upstream_stream(sidecar: Sidecar) -> None:
    router = sidecar.routers[0]
    async with aiohttp.ClientSession(headers=AUTH) as s:
        resp = await s.post(
            sidecar.url + "v1/chat/completions", json={"model": "gate", "messages": MSG, "stream": True}
        )
        assert resp.status == 200
        await resp.content.readuntil(b"\n\n")  # output has begun
        await router.entered.wait()
        resp.close()  # hang up mid-stream
    await asyncio.wait_for(router.stream_closed.wait(), 5)
    state = sidecar.server.app[STATE]
    for _ in range(100):
        if state.active == 0:
            break
        await asyncio.sleep(0.001)
    assert state.active == 0


async def test_client_disconnect_cancels_a_pending_completion(sidecar: Sidecar) -> None:
    router = sidecar.routers[0]
    async with aiohttp.ClientSession(headers=AUTH) as s:
        task = asyncio.create_task(
            s.post(sidecar.url + "v1/chat/completions", json={"model": "gate", "messages": MSG})
        )
        await router.entered.wait()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    state = sidecar.server.app[STATE]
    for _ in range(500):
        if state.active == 0:
            break
        await asyncio.sleep(0.001)
    assert state.active == 0


async def test_reload_swaps_without_dropping_in_flight_requests(sidecar: Sidecar) -> None:
    app = sidecar.server.app
    assert app is not None
    old = sidecar.routers[0]
    async with aiohttp.ClientSession(headers=AUTH) as s:
        url = sidecar.url + "v1/chat/completions"
        slow = asyncio.create_task(s.post(url, json={"model": "gate", "messages": MSG}))
        await old.entered.wait()
        async with s.post(sidecar.url + "admin/reload") as r:
            assert r.status == 200 and (await r.json())["status"] == "reloaded"
        new = sidecar.routers[1]
        async with s.post(url, json={"model": "chat", "messages": MSG}) as r:
            assert r.status == 200 and r.headers["x-request-id"].startswith("gen2-")
        assert not old.closed  # still serving the slow request
        old.gate.set()
        resp = await slow
        assert resp.status == 200 and resp.headers["x-request-id"].startswith("gen1-")
        resp.release()
    for _ in range(500):
        if old.closed:
            break
        await asyncio.sleep(0.001)
    assert old.closed and not new.closed
    assert app[STATE].holder is not None and app[STATE].holder.current.number == 2


async def test_failed_reload_keeps_the_running_configuration(sidecar: Sidecar) -> None:
    app = sidecar.server.app
    assert app is not None
    state = app[STATE]

    def broken() -> object:
        raise ValueError(f"router.yaml: providers.openai.api_key: bad value {PROVIDER_KEY}")

    state.factory = broken  # type: ignore[assignment]
    ok, message = await reload(app)
    assert not ok and PROVIDER_KEY not in message and "providers.openai.api_key" in message
    async with sidecar.client() as client:
        resp = await client.chat.completions.create(model="chat", messages=MSG)
    assert resp.choices[0].message.content


async def test_metrics_after_traffic(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        await client.chat.completions.create(model="chat", messages=MSG)
        await client.chat.completions.create(model="fallback", messages=MSG)
        stream = await client.chat.completions.create(model="chat", messages=MSG, stream=True)
        async for _ in stream:
            pass
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="limited", messages=MSG)
        with pytest.raises(openai.BadRequestError):
            await client.chat.completions.create(model="chat", messages=[])
    async with aiohttp.ClientSession() as s, s.get(sidecar.url + "metrics") as r:
        text = await r.text()
    lines = text.splitlines()

    def value(prefix: str) -> float:
        found = [ln for ln in lines if ln.startswith(prefix)]
        assert found, prefix
        return float(found[0].rsplit(" ", 1)[1])

    assert value('turnout_requests_total{model="model-a",outcome="success",route="chat"}') == 2
    assert value('turnout_requests_total{model="none",outcome="error",route="limited"}') == 1
    assert value('turnout_fallbacks_total{from_model="model-a",route="fallback",to_model="model-b"}') == 1
    assert value('turnout_errors_total{kind="server",model="model-a"}') == 2
    assert value('turnout_request_duration_seconds_count{model="model-a",route="chat"}') == 2
    assert value('turnout_request_duration_seconds_bucket{le="0.01",model="model-a",route="chat"}') == 2
    assert value('turnout_time_to_first_token_seconds_count{model="model-a",route="chat"}') == 1
    assert value('turnout_tokens_total{direction="output",model="model-a",route="chat"}') == 8
    assert value('turnout_cost_usd_total{model="model-a",route="chat"}') == pytest.approx(0.004)
    assert value('turnout_sidecar_rejections_total{reason="bad_request"}') == 1
    assert value('turnout_ratelimit_headroom_ratio{limit="requests",model="model-a"}') == 0.25
    assert value("turnout_sidecar_overhead_seconds_count") == 2
    assert value("turnout_sidecar_inflight_requests") == 0


async def test_breaker_states_come_from_the_router_snapshot(sidecar: Sidecar) -> None:
    metrics = sidecar.server.app[STATE].metrics
    metrics.on_breaker_change("model-a", "closed", "open")
    get = metrics.registry.get_sample_value
    assert get("turnout_breaker_state", {"model": "model-a"}) == 2.0  # the fake's snapshot says open
    assert get("turnout_breaker_transitions_total", {"model": "model-a", "state": "open"}) == 1.0
