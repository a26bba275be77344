"""OpenAI's Responses API through the official SDK and every front end: text and message input,
instructions, the streamed event sequence, previous_response_id, retrieve and delete, tools,
max_output_tokens, structured outputs and errors in the API's own shape."""

from __future__ import annotations

import json
from typing import Any

import openai
import pytest
from mock_sdk_client import SDK
from pydantic import BaseModel

from mockproviders.tokens import count_tokens

MODEL = "gpt-4o-mini"
TOOL: Any = {
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


class Forecast(BaseModel):
    city: str
    celsius: int
    rain: bool


async def test_text_input_with_instructions_and_usage(sdk: SDK) -> None:
    r = await sdk.openai.responses.create(model=MODEL, input="Hello there", instructions="Be brief.")
    assert r.object == "response" and r.status == "completed" and r.id.startswith("resp_")
    assert r.instructions == "Be brief."
    assert r.output[0].type == "message" and r.output[0].role == "assistant"
    assert r.output_text
    assert r.usage is not None
    assert r.usage.output_tokens == count_tokens(r.output_text)
    assert r.usage.total_tokens == r.usage.input_tokens + r.usage.output_tokens
    again = await sdk.openai.responses.create(model=MODEL, input="Hello there", instructions="Be brief.")
    assert again.output_text == r.output_text and again.id != r.id  # deterministic answer, new id


async def test_message_input_counts_every_message(sdk: SDK) -> None:
    short = await sdk.openai.responses.create(model=MODEL, input=[{"role": "user", "content": "Hi"}])
    items: Any = [
        {"role": "developer", "content": "Answer about trains."},
        {"role": "user", "content": [{"type": "input_text", "text": "Hi"}]},
        {"type": "message", "role": "assistant", "content": [{"type": "output_text", "text": "Hello!"}]},
        {"role": "user", "content": "Tell me more"},
    ]
    long = await sdk.openai.responses.create(model=MODEL, input=items)
    assert short.usage is not None and long.usage is not None
    assert long.usage.input_tokens > short.usage.input_tokens


async def test_stream_has_the_real_event_sequence_and_matches(sdk: SDK) -> None:
    whole = await sdk.openai.responses.create(model=MODEL, input="Hello there")
    stream = await sdk.openai.responses.create(model=MODEL, input="Hello there", stream=True)
    events = [e async for e in stream]
    kinds = [e.type for e in events]
    deltas = kinds.count("response.output_text.delta")
    assert kinds == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
        *["response.output_text.delta"] * deltas,
        "response.output_text.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.completed",
    ]
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert events[0].response.status == "in_progress"  # type: ignore[union-attr]
    text = "".join(e.delta for e in events if e.type == "response.output_text.delta")  # type: ignore[union-attr]
    assert text == whole.output_text
    final = events[-1].response  # type: ignore[union-attr]
    assert final.output_text == whole.output_text and final.usage == whole.usage
    async with sdk.openai.responses.stream(model=MODEL, input="Hello there") as helper:
        async for _ in helper:
            pass
        assert (await helper.get_final_response()).output_text == whole.output_text


async def test_previous_response_id_continues_the_conversation(sdk: SDK) -> None:
    first = await sdk.openai.responses.create(model=MODEL, input="My name is Ada.", instructions="Be brief.")
    second = await sdk.openai.responses.create(
        model=MODEL, input="What is my name?", previous_response_id=first.id
    )
    assert second.previous_response_id == first.id
    alone = await sdk.openai.responses.create(model=MODEL, input="What is my name?")
    assert first.usage and second.usage and alone.usage
    # the history (first input and answer) is part of the prompt; the instructions are not
    history = count_tokens("My name is Ada.") + count_tokens(first.output_text) + 2 * 3
    assert second.usage.input_tokens == alone.usage.input_tokens + history
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.openai.responses.create(model=MODEL, input="x", previous_response_id="resp_nope")
    assert info.value.code == "previous_response_not_found"
    assert info.value.param == "previous_response_id"  # type: ignore[attr-defined]


async def test_retrieve_delete_and_store_false(sdk: SDK) -> None:
    r = await sdk.openai.responses.create(model=MODEL, input="Hello")
    got = await sdk.openai.responses.retrieve(r.id)
    assert got.id == r.id and got.output_text == r.output_text
    await sdk.openai.responses.delete(r.id)
    with pytest.raises(openai.NotFoundError, match="not found"):
        await sdk.openai.responses.retrieve(r.id)
    unstored = await sdk.openai.responses.create(model=MODEL, input="Hello", store=False)
    assert unstored.store is False
    with pytest.raises(openai.NotFoundError):
        await sdk.openai.responses.retrieve(unstored.id)


async def test_function_call_then_its_output(sdk: SDK) -> None:
    r = await sdk.openai.responses.create(model="gpt-4o", input="Weather in Paris?", tools=[TOOL])
    call = r.output[0]
    assert call.type == "function_call" and call.name == "get_weather"
    assert call.call_id.startswith("call_")
    assert isinstance(json.loads(call.arguments)["city"], str)
    follow = await sdk.openai.responses.create(
        model="gpt-4o",
        previous_response_id=r.id,
        tools=[TOOL],
        input=[{"type": "function_call_output", "call_id": call.call_id, "output": "sunny"}],
    )
    assert follow.output[0].type == "message" and follow.output_text
    stream = await sdk.openai.responses.create(
        model="gpt-4o", input="Weather in Paris?", tools=[TOOL], stream=True
    )
    events = [e async for e in stream]
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")  # type: ignore[union-attr]
    assert args == call.arguments
    assert [e.type for e in events][-3:] == [
        "response.function_call_arguments.done",
        "response.output_item.done",
        "response.completed",
    ]


async def test_max_output_tokens_makes_an_incomplete_response(sdk: SDK) -> None:
    for prompt in (f"Tell me about train {i}" for i in range(20)):  # one whose answer is long
        full = await sdk.openai.responses.create(model=MODEL, input=prompt)
        if full.usage and full.usage.output_tokens > 16:
            break
    else:
        pytest.fail("no prompt gave an answer longer than 16 tokens")
    r = await sdk.openai.responses.create(model=MODEL, input=prompt, max_output_tokens=16)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"
    assert r.output[0].status == "incomplete"  # type: ignore[union-attr]
    assert r.usage is not None and r.usage.output_tokens == 16
    assert full.output_text.startswith(r.output_text)
    stream = await sdk.openai.responses.create(model=MODEL, input=prompt, max_output_tokens=16, stream=True)
    assert [e.type async for e in stream][-1] == "response.incomplete"
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.openai.responses.create(model=MODEL, input="Hello", max_output_tokens=5)
    assert info.value.param == "max_output_tokens"  # type: ignore[attr-defined]


async def test_structured_output_with_text_format(sdk: SDK) -> None:
    parsed = await sdk.openai.responses.parse(model=MODEL, input="Forecast for Paris", text_format=Forecast)
    assert isinstance(parsed.output_parsed, Forecast)
    with pytest.raises(openai.BadRequestError, match="word 'json'"):
        await sdk.openai.responses.create(
            model=MODEL, input="Hello", text={"format": {"type": "json_object"}}
        )
    obj = await sdk.openai.responses.create(
        model=MODEL, input="Answer in JSON", text={"format": {"type": "json_object"}}
    )
    assert isinstance(json.loads(obj.output_text), dict)


async def test_errors_come_in_the_api_shape(sdk: SDK) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.openai.responses.create(model=MODEL, input=[{"type": "bogus"}])  # type: ignore[list-item]
    assert info.value.param == "input[0].type"  # type: ignore[attr-defined]
    assert isinstance(info.value.body, dict) and info.value.body["type"] == "invalid_request_error"
    with pytest.raises(openai.NotFoundError) as missing:
        await sdk.openai.responses.create(model="gpt-nope", input="Hello")
    assert missing.value.code == "model_not_found"
