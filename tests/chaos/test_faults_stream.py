"""Faults after the 200, in streams, seen through the official SDKs' iterators."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import httpx2
import openai
import pytest
from chaos_helpers import CHAT, MockFactory, anthropic_client, openai_client, rule

from mockproviders.clock import FakeClock

CLAUDE = "claude-haiku-4-5"


async def _openai_stream(server: Any, **kw: Any) -> list[Any]:
    stream = await openai_client(server).chat.completions.create(
        model="gpt-4o-mini", messages=CHAT, stream=True, **kw
    )
    return [chunk async for chunk in stream]


def _text(chunks: list[Any]) -> str:
    return "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)


async def _raw_sse(server: Any, provider: str = "openai", **body: Any) -> str:
    async with httpx2.AsyncClient() as raw:
        if provider == "anthropic":
            url, headers = (
                server.base_urls["anthropic"] + "/v1/messages",
                {"x-api-key": "k", "anthropic-version": "2023-06-01"},
            )
            payload = {"model": CLAUDE, "max_tokens": 50, "messages": CHAT, "stream": True, **body}
        else:
            url, headers = server.base_urls["openai"] + "/chat/completions", {"authorization": "Bearer sk-x"}
            payload = {"model": "gpt-4o-mini", "messages": CHAT, "stream": True, **body}
        r = await raw.post(url, headers=headers, json=payload)
        return r.text


async def test_the_same_request_unfaulted_for_reference(chaos_mock: MockFactory) -> None:
    async with chaos_mock() as server:
        chunks = await _openai_stream(server)
        assert len(_text(chunks).split()) > 5
        assert chunks[-1].choices[0].finish_reason == "stop"


async def test_slow_first_token_delays_only_the_first_token(chaos_mock: MockFactory) -> None:
    clock = FakeClock()
    async with chaos_mock(rule("ttft", "slow_first_token", params={"delay": "4s"}), clock=clock) as server:
        chunks = await _openai_stream(server)
        assert _text(chunks)
        assert clock.sleeps == [4.0]


async def test_cut_after_n_tokens_raises_from_the_iterator(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("cut", "cut", params={"after_tokens": 3})) as server:
        got: list[str] = []
        stream = await openai_client(server).chat.completions.create(
            model="gpt-4o-mini", messages=CHAT, stream=True
        )
        with pytest.raises(openai.APIConnectionError):
            async for chunk in stream:
                got.append(chunk.choices[0].delta.content or "")
        assert len("".join(got).split()) == 3
        entry = server.engine.journal[0]
        assert (entry["fault"], entry["status"], entry["aborted"]) == ("cut", 200, "close")


async def test_cut_surfaces_in_the_anthropic_iterator(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("cut", "cut", params={"after_tokens": 2})) as server:
        got: list[str] = []
        with pytest.raises((anthropic.APIConnectionError, httpx2.RemoteProtocolError)):
            async with anthropic_client(server).messages.stream(
                model=CLAUDE, max_tokens=50, messages=CHAT
            ) as s:
                async for text in s.text_stream:
                    got.append(text)
        assert len("".join(got).split()) == 2


@pytest.mark.parametrize(("then", "completes"), [("close", False), ("resume", True)])
async def test_stall_then_close_or_resume(chaos_mock: MockFactory, then: str, completes: bool) -> None:
    clock = FakeClock()
    params = {"after_tokens": 2, "duration": "30s", "then": then}
    async with chaos_mock(rule("stall", "stall", params=params), clock=clock) as server:
        if completes:
            chunks = await _openai_stream(server)
            assert chunks[-1].choices[0].finish_reason == "stop"
        else:
            with pytest.raises(openai.APIConnectionError):
                await _openai_stream(server)
        assert clock.sleeps == [30.0]


@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_malformed_event_breaks_the_sdk_decoder(chaos_mock: MockFactory, provider: str) -> None:
    async with chaos_mock(rule("bad", "malformed_event", params={"at": 2})) as server:
        with pytest.raises(json.JSONDecodeError):
            if provider == "openai":
                await _openai_stream(server)
            else:
                async with anthropic_client(server).messages.stream(
                    model=CLAUDE, max_tokens=50, messages=CHAT
                ) as s:
                    async for _ in s.text_stream:
                        pass


async def test_missing_done_goes_unnoticed_by_the_openai_sdk(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("nodone", "drop_terminator")) as server:
        chunks = await _openai_stream(server)  # the SDK ends the iteration quietly: a router must notice
        assert chunks[-1].choices[0].finish_reason == "stop"
        assert "[DONE]" not in await _raw_sse(server)


async def test_missing_message_stop_on_anthropic(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("nostop", "drop_terminator")) as server:
        raw = await _raw_sse(server, "anthropic")
        assert "message_delta" in raw and "message_stop" not in raw


async def test_in_band_error_event_openai(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("err", "error_event", params={"after_tokens": 2})) as server:
        with pytest.raises(openai.APIError) as info:
            await _openai_stream(server)
        assert not isinstance(info.value, openai.APIConnectionError)
        assert server.engine.journal[0]["stream_error"] is True


async def test_in_band_error_event_anthropic_carries_its_type(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("err", "error_event", params={"after_tokens": 2})) as server:
        with pytest.raises(anthropic.APIStatusError) as info:
            async with anthropic_client(server).messages.stream(
                model=CLAUDE, max_tokens=50, messages=CHAT
            ) as s:
                async for _ in s.text_stream:
                    pass
        assert isinstance(info.value.body, dict) and info.value.body["error"]["type"] == "overloaded_error"


async def test_ping_flood_is_ignored_by_the_sdks_but_on_the_wire(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("pings", "ping_flood", params={"count": 40})) as server:
        async with anthropic_client(server).messages.stream(model=CLAUDE, max_tokens=50, messages=CHAT) as s:
            text = "".join([t async for t in s.text_stream])
        assert text
        assert (await _raw_sse(server, "anthropic")).count("event: ping") >= 40
        assert (await _raw_sse(server)).count(": ping") == 40
        assert _text(await _openai_stream(server))


async def test_drop_usage_removes_the_usage_chunk(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("nousage", "drop_usage", match={"model": "gpt-4o-mini"})) as server:
        chunks = await _openai_stream(server, stream_options={"include_usage": True})
        assert _text(chunks) and all(c.usage is None for c in chunks)
    async with chaos_mock() as server:  # without the fault, the usage chunk is there
        chunks = await _openai_stream(server, stream_options={"include_usage": True})
        assert chunks[-1].usage is not None


async def test_bandwidth_paces_by_bytes(chaos_mock: MockFactory) -> None:
    clock = FakeClock()
    async with chaos_mock(
        rule("slow", "bandwidth", params={"bytes_per_second": 1000}), clock=clock
    ) as server:
        raw = await _raw_sse(server)
        assert abs(sum(clock.sleeps) - len(raw.encode()) / 1000) < 1e-6


async def test_stream_faults_spare_unstreamed_requests(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("cut", "cut")) as server:
        answer = await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert answer.choices[0].message.content
        assert server.engine.journal[0]["fault"] is None
        assert server.engine.counters()["cut"] == {"matched": 0, "injected": 0}
