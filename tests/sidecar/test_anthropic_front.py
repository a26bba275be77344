"""The official anthropic SDK against the sidecar's /v1/messages: Router -> mock over real sockets,
plain, streamed, tools, count_tokens, structured outputs, errors, and each across a fallback."""

from __future__ import annotations

import json
from typing import Any

import anthropic
import pydantic
import pytest

from .fronts import claude_client, down, metrics_text, rule, stack

SYSTEM: list = [{"type": "text", "text": "Be brief.", "cache_control": {"type": "ephemeral"}}]
ASK = [{"role": "user", "content": "Say something about trains."}]
WEATHER = {
    "name": "get_weather",
    "description": "Weather for a city",
    "input_schema": {
        "type": "object",
        "properties": {"city": {"type": "string"}, "unit": {"type": "string", "enum": ["C", "F"]}},
        "required": ["city", "unit"],
    },
}


@pytest.mark.parametrize(("faults", "provider"), [((), "anthropic"), ((down("anthropic"),), "openai")])
async def test_create_and_stream_alike(faults: tuple, provider: str) -> None:
    """Answered by Claude, or by OpenAI when Anthropic is down: the same Anthropic shape."""
    async with stack(*faults) as server, claude_client(server) as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-first", max_tokens=200, system=SYSTEM, messages=ASK
        )
        msg = await raw.parse()
        assert raw.headers["x-turnout-provider"] == provider
        assert raw.headers["x-turnout-attempts"] == ("1" if not faults else "2")
        assert raw.headers["x-turnout-route"] == "claude-first"
        assert msg.type == "message" and msg.role == "assistant" and msg.id.startswith("msg_")
        assert msg.stop_reason == "end_turn" and msg.content[0].type == "text" and msg.content[0].text
        assert msg.usage.input_tokens > 0 and msg.usage.output_tokens > 0
        async with client.messages.stream(
            model="claude-first", max_tokens=200, system=SYSTEM, messages=ASK
        ) as stream:
            deltas = [ev.delta.text async for ev in stream if ev.type == "content_block_delta"]  # type: ignore[union-attr]
            final = await stream.get_final_message()
        assert "".join(deltas) == final.content[0].text == msg.content[0].text  # type: ignore[union-attr]
        assert final.stop_reason == "end_turn" and final.usage.output_tokens == msg.usage.output_tokens
        assert final.model == msg.model
        front = server.front
        assert front is not None and front.served == 2 and front.handed_over == 0  # the lean door
        text = await metrics_text(server)
    assert 'turnout_sidecar_answers_total{front_end="messages",status="200"} 2.0' in text


@pytest.mark.parametrize(("faults", "provider"), [((), "anthropic"), ((down("anthropic"),), "openai")])
async def test_tool_use_round_trip(faults: tuple, provider: str) -> None:
    async with stack(*faults) as server, claude_client(server) as client:
        raw = await client.messages.with_raw_response.create(
            model="claude-first",
            max_tokens=200,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "any"},
        )
        msg = await raw.parse()
        assert raw.headers["x-turnout-provider"] == provider
        assert msg.stop_reason == "tool_use"
        use = next(b for b in msg.content if b.type == "tool_use")
        assert use.name == "get_weather" and isinstance(use.input, dict)
        assert set(use.input) >= {"city", "unit"} and use.input["unit"] in ("C", "F")  # the schema held
        follow = await client.messages.create(
            model="claude-first",
            max_tokens=200,
            messages=[
                {"role": "user", "content": "Weather in Paris?"},
                {"role": "assistant", "content": [b.model_dump() for b in msg.content]},  # type: ignore[misc]
                {
                    "role": "user",
                    "content": [{"type": "tool_result", "tool_use_id": use.id, "content": "18 C, sunny"}],
                },
            ],
            tools=[WEATHER],  # type: ignore[list-item]
        )
        assert follow.stop_reason == "end_turn" and follow.content[0].type == "text"
        async with client.messages.stream(
            model="claude-first",
            max_tokens=200,
            messages=[{"role": "user", "content": "Weather in Paris?"}],
            tools=[WEATHER],  # type: ignore[list-item]
            tool_choice={"type": "tool", "name": "get_weather"},
        ) as stream:
            streamed = await stream.get_final_message()
        call = next(b for b in streamed.content if b.type == "tool_use")
        assert call.name == "get_weather" and call.input == use.input  # deltas joined into the same input
        assert streamed.stop_reason == "tool_use"


class Ticket(pydantic.BaseModel):
    title: str
    priority: int
    tags: list[str]


@pytest.mark.parametrize(("route", "faults"), [("claude-first", ()), ("gpt-first", (down("openai"),))])
async def test_structured_output_is_schema_valid(route: str, faults: tuple) -> None:
    """``messages.parse`` (output_config.format) on Claude, and on an OpenAI-first route whose
    OpenAI is down: Claude's forced tool answers JSON the SDK parses into the model."""
    async with stack(*faults) as server, claude_client(server) as client:
        parsed = await client.messages.parse(
            model=route,
            max_tokens=300,
            messages=[{"role": "user", "content": "File a ticket."}],
            output_format=Ticket,
        )
        assert isinstance(parsed.parsed_output, Ticket)
        assert parsed.stop_reason == "end_turn" and parsed.content[0].type == "text"
        Ticket.model_validate_json(parsed.content[0].text)


async def test_count_tokens() -> None:
    async with stack() as server, claude_client(server) as client:
        short = await client.messages.count_tokens(model="claude-first", messages=ASK)
        longer = await client.messages.count_tokens(
            model="claude-first",
            system="You are a railway historian. " * 20,
            messages=ASK,
            tools=[WEATHER],  # type: ignore[list-item]
        )
        assert 0 < short.input_tokens < longer.input_tokens
        with pytest.raises(anthropic.BadRequestError) as info:
            await client.messages.count_tokens(model="claude-first", messages=[])
        assert info.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]


async def test_529_overloaded_when_the_route_is_down() -> None:
    async with stack(down("anthropic")) as server, claude_client(server) as client:
        with pytest.raises(anthropic.OverloadedError) as info:
            await client.messages.create(model="claude-only", max_tokens=50, messages=ASK)
        err = info.value
        assert err.status_code == 529
        assert err.body["type"] == "error" and err.body["error"]["type"] == "overloaded_error"  # type: ignore[index]
        assert int(err.response.headers["retry-after"]) >= 1
        with pytest.raises(anthropic.OverloadedError):
            async with client.messages.stream(model="claude-only", max_tokens=50, messages=ASK) as stream:
                await stream.get_final_message()
        text = await metrics_text(server)
    assert 'turnout_sidecar_answers_total{front_end="messages",status="529"} 2.0' in text


async def test_errors_in_anthropic_shape() -> None:
    async with stack(api_keys=["client-key-for-tests-42"]) as server:
        async with claude_client(server, api_key="wrong-key-0000") as bad:
            with pytest.raises(anthropic.AuthenticationError) as auth:
                await bad.messages.create(model="claude-first", max_tokens=10, messages=ASK)
        assert auth.value.body["error"]["type"] == "authentication_error"  # type: ignore[index]
        async with claude_client(server, api_key="client-key-for-tests-42") as client:  # x-api-key accepted
            ok = await client.messages.create(model="claude-first", max_tokens=50, messages=ASK)
            assert ok.content[0].type == "text"
            with pytest.raises(anthropic.NotFoundError) as missing:
                await client.messages.create(model="no-such-route", max_tokens=10, messages=ASK)
            assert missing.value.body["error"]["type"] == "not_found_error"  # type: ignore[index]
            with pytest.raises(anthropic.BadRequestError) as image:
                await client.messages.create(
                    model="claude-first",
                    max_tokens=10,
                    messages=[
                        {
                            "role": "user",
                            "content": [
                                {"type": "image", "source": {"type": "url", "url": "http://x/y.png"}}
                            ],
                        }
                    ],
                )
            assert "messages[0].content[0].type" in image.value.body["error"]["message"]  # type: ignore[index]
            with pytest.raises(anthropic.BadRequestError) as no_max:
                await client.messages.create(model="claude-first", max_tokens=0, messages=ASK)
            assert "max_tokens" in no_max.value.body["error"]["message"]  # type: ignore[index]


async def test_stream_cut_after_output_ends_with_an_error_event() -> None:
    cut = rule("cut", "cut", params={"after_tokens": 3}, match={"provider": ["openai"]})
    async with stack(cut, down("anthropic")) as server, claude_client(server) as client:
        got: list[str] = []
        with pytest.raises(anthropic.APIStatusError) as info:
            async with client.messages.stream(model="claude-first", max_tokens=200, messages=ASK) as stream:
                async for ev in stream:
                    if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                        got.append(ev.delta.text)
        assert got  # output had begun: the stream ends with an error event, never message_stop
        body = info.value.body
        assert isinstance(body, dict) and body["type"] == "error", json.dumps(body)
        assert (
            body["error"]["type"] == "api_error" and "failed after output began" in body["error"]["message"]
        ), body


async def test_handed_over_requests_answer_in_the_same_shapes() -> None:
    """A chunked body goes to aiohttp's server, not the front door: the same handlers answer,
    and a bad request on /v1/messages is still Anthropic-shaped, on /v1/responses OpenAI-shaped."""
    import aiohttp

    async def chunks(data: bytes) -> Any:
        yield data

    async with stack() as server, aiohttp.ClientSession() as s:
        good = json.dumps({"model": "claude-first", "max_tokens": 50, "messages": ASK}).encode()
        async with s.post(server.make_url("/v1/messages"), data=chunks(good)) as r:
            assert r.status == 200 and (await r.json())["type"] == "message"
        bad = json.dumps({"model": "claude-first", "max_tokens": 50, "messages": "hi"}).encode()
        async with s.post(server.make_url("/v1/messages"), data=chunks(bad)) as r:
            body = await r.json()
        assert r.status == 400 and body["type"] == "error"
        assert body["error"]["type"] == "invalid_request_error" and "messages" in body["error"]["message"]
        async with s.post(server.make_url("/v1/responses"), data=chunks(b'{"model": "gpt-first"}')) as r:
            body = await r.json()
        assert r.status == 400 and body["error"]["param"] == "input"
        front = server.front
        assert front is not None and front.handed_over >= 1
        text = await metrics_text(server)
    assert 'turnout_sidecar_answers_total{front_end="messages",status="400"} 1.0' in text
    assert 'turnout_sidecar_answers_total{front_end="responses",status="400"} 1.0' in text
