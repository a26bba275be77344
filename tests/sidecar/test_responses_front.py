"""The official openai SDK's Responses API against the sidecar's /v1/responses: Router -> mock over
real sockets, plain, streamed, tools, text.format, errors, and each across a fallback."""

from __future__ import annotations

import json
from typing import Any

import openai
import pydantic
import pytest

from .fronts import down, metrics_text, openai_client, rule, stack

TOOLS: list[Any] = [
    {
        "type": "function",
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}},
            "required": ["city"],
            "additionalProperties": False,
        },
        "strict": True,
    }
]
FALLBACKS = [((), "openai"), ((down("openai"),), "anthropic")]


@pytest.mark.parametrize(("faults", "provider"), FALLBACKS)
async def test_create_and_stream_alike(faults: tuple, provider: str) -> None:
    async with stack(*faults) as server, openai_client(server) as client:
        raw = await client.responses.with_raw_response.create(
            model="gpt-first", instructions="Be brief.", input="Say something about trains."
        )
        resp = raw.parse()
        assert raw.headers["x-turnout-provider"] == provider
        assert resp.object == "response" and resp.status == "completed" and resp.id.startswith("resp_")
        assert resp.output_text and resp.output[0].type == "message"
        assert resp.usage is not None and resp.usage.output_tokens > 0 and resp.instructions == "Be brief."
        stream = await client.responses.create(
            model="gpt-first", instructions="Be brief.", input="Say something about trains.", stream=True
        )
        events = [ev async for ev in stream]
        kinds = [ev.type for ev in events]
        assert kinds[:4] == [
            "response.created",
            "response.in_progress",
            "response.output_item.added",
            "response.content_part.added",
        ]
        assert kinds[-4:] == [
            "response.output_text.done",
            "response.content_part.done",
            "response.output_item.done",
            "response.completed",
        ]
        assert [ev.sequence_number for ev in events] == list(range(len(events)))
        text = "".join(ev.delta for ev in events if ev.type == "response.output_text.delta")
        done = events[-1].response  # type: ignore[union-attr]
        assert text == done.output_text == resp.output_text  # the mock is deterministic
        assert done.usage is not None and done.usage.output_tokens == resp.usage.output_tokens
        front = server.front
        assert front is not None and front.served == 2 and front.handed_over == 0  # the lean door
        metrics = await metrics_text(server)
    assert 'turnout_sidecar_answers_total{front_end="responses",status="200"} 2.0' in metrics


@pytest.mark.parametrize(("faults", "provider"), FALLBACKS)
async def test_function_calls_round_trip(faults: tuple, provider: str) -> None:
    async with stack(*faults) as server, openai_client(server) as client:
        raw = await client.responses.with_raw_response.create(
            model="gpt-first", input="Weather in Paris?", tools=TOOLS, tool_choice="required"
        )
        resp = raw.parse()
        assert raw.headers["x-turnout-provider"] == provider
        call = next(item for item in resp.output if item.type == "function_call")
        assert call.name == "get_weather" and isinstance(json.loads(call.arguments)["city"], str)
        follow = await client.responses.create(
            model="gpt-first",
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                {
                    "type": "function_call",
                    "call_id": call.call_id,
                    "name": call.name,
                    "arguments": call.arguments,
                },
                {"type": "function_call_output", "call_id": call.call_id, "output": "18 C, sunny"},
            ],
            tools=TOOLS,
        )
        assert follow.output_text and follow.output[0].type == "message"
        stream = await client.responses.create(
            model="gpt-first", input="Weather in Paris?", tools=TOOLS, tool_choice="required", stream=True
        )
        events = [ev async for ev in stream]
        final = events[-1]
        assert final.type == "response.completed"
        streamed = next(item for item in final.response.output if item.type == "function_call")
        args = "".join(ev.delta for ev in events if ev.type == "response.function_call_arguments.delta")
        assert streamed.arguments == args == call.arguments and streamed.name == "get_weather"


class Ticket(pydantic.BaseModel):
    title: str
    priority: int
    tags: list[str]


async def test_text_format_across_a_fallback_to_claude() -> None:
    """``text.format`` (json_schema, strict): OpenAI is down, Claude answers through a forced tool,
    and the SDK's ``responses.parse`` validates the JSON into the model, plain and streamed."""
    async with stack(down("openai")) as server, openai_client(server) as client:
        raw = await client.responses.with_raw_response.parse(
            model="gpt-first", input="File a ticket about the signal.", text_format=Ticket
        )
        parsed = raw.parse()
        assert raw.headers["x-turnout-provider"] == "anthropic"
        assert isinstance(parsed.output_parsed, Ticket)
        fmt = parsed.text.format if parsed.text else None
        assert fmt is not None and fmt.type == "json_schema" and fmt.name == "Ticket"
        stream = await client.responses.create(
            model="gpt-first",
            input="File a ticket about the signal.",
            text={"format": {"type": "json_schema", "name": "Ticket", "schema": Ticket.model_json_schema()}},
            stream=True,
        )
        events = [ev async for ev in stream]
        text = "".join(ev.delta for ev in events if ev.type == "response.output_text.delta")
        Ticket.model_validate_json(text)
        obj = await client.responses.create(
            model="mistral-first", input="Any JSON object, please.", text={"format": {"type": "json_object"}}
        )
        assert obj.output_text  # Mistral answers (its mock ignores the format); the request was accepted


async def test_refusals_and_errors() -> None:
    async with stack(down("openai"), down("anthropic")) as server, openai_client(server) as client:
        with pytest.raises(openai.BadRequestError) as prev:
            await client.responses.create(model="gpt-first", input="hi", previous_response_id="resp_123")
        assert prev.value.body["param"] == "previous_response_id"  # type: ignore[index]
        assert "whole conversation" in prev.value.body["message"]  # type: ignore[index]
        with pytest.raises(openai.BadRequestError) as web:
            await client.responses.create(model="gpt-first", input="hi", tools=[{"type": "web_search"}])
        assert web.value.body["param"] == "tools[0].type"  # type: ignore[index]
        with pytest.raises(openai.NotFoundError):
            await client.responses.create(model="no-such-route", input="hi")
        with pytest.raises(openai.APIStatusError) as gone:
            await client.responses.create(model="gpt-first", input="hi")
        assert gone.value.status_code >= 500
        metrics = await metrics_text(server)
    assert 'turnout_sidecar_answers_total{front_end="responses",status="400"} 2.0' in metrics


async def test_stream_cut_after_output_fails_the_response() -> None:
    """OpenAI's stream is cut and nothing on the route can continue it: ``error`` and
    ``response.failed``, never ``response.completed``. (On gpt-first, Claude continues it.)"""
    cut = rule("cut", "cut", params={"after_tokens": 3}, match={"provider": ["openai"]})
    async with stack(cut) as server, openai_client(server) as client:
        stream = await client.responses.create(model="gpt-first", input="Tell me about trains.", stream=True)
        rescued: list[Any] = [ev async for ev in stream]
        assert rescued[-1].type == "response.completed" and rescued[-1].response.output_text
        stream = await client.responses.create(model="gpt-only", input="Tell me about trains.", stream=True)
        events: list[Any] = [ev async for ev in stream]
    kinds = [ev.type for ev in events]
    assert "response.output_text.delta" in kinds and "response.completed" not in kinds
    assert kinds[-2:] == ["error", "response.failed"]
    failed = events[-1].response
    assert failed.status == "failed" and failed.error is not None
