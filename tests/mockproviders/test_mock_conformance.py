"""The official SDKs against the mock, through every front end: answers, streams, usage,
embeddings, models and tool calls."""

from __future__ import annotations

import base64
import json
import struct

from mock_sdk_client import SDK

from mockproviders.tokens import count_tokens

HI = [{"role": "user", "content": "Hello there"}]
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Weather for a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "days": {"type": "integer"}},
            "required": ["city"],
        },
    },
}


async def test_openai_text_and_usage(sdk: SDK) -> None:
    r = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    text = r.choices[0].message.content
    assert r.object == "chat.completion"
    assert r.model == "gpt-4o-mini"
    assert text
    assert r.choices[0].finish_reason == "stop"
    assert r.usage is not None
    assert r.usage.completion_tokens == count_tokens(text)
    assert r.usage.total_tokens == r.usage.prompt_tokens + r.usage.completion_tokens


async def test_openai_stream_matches_and_reports_usage(sdk: SDK) -> None:
    whole = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    stream = await sdk.openai.chat.completions.create(
        model="gpt-4o-mini", messages=HI, stream=True, stream_options={"include_usage": True}
    )
    chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert len({c.id for c in chunks}) == 1
    assert all(c.usage is None for c in chunks[:-1])
    assert chunks[-1].choices == []
    assert chunks[-1].usage == whole.usage
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == whole.choices[0].message.content
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == [
        "stop"
    ]


async def test_openai_n_stop_and_max_tokens(sdk: SDK) -> None:
    r = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, n=3, max_completion_tokens=4)
    assert [c.index for c in r.choices] == [0, 1, 2]
    assert all(c.finish_reason == "length" for c in r.choices)
    assert all(count_tokens(c.message.content or "") == 4 for c in r.choices)
    full = (await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI)).choices[0].message.content
    assert full
    word = full.split()[3]
    cut = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, stop=[word])
    assert cut.choices[0].message.content == full[: full.find(word)]
    assert cut.choices[0].finish_reason == "stop"


async def test_openai_tool_call_then_answer(sdk: SDK) -> None:
    r = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    choice = r.choices[0]
    assert choice.finish_reason == "tool_calls"
    assert choice.message.tool_calls
    call = choice.message.tool_calls[0]
    assert call.function.name == "get_weather"  # type: ignore[union-attr]
    args = json.loads(call.function.arguments)  # type: ignore[union-attr]
    assert isinstance(args["city"], str) and isinstance(args["days"], int)
    follow = [
        *HI,
        choice.message.model_dump(exclude_none=True),
        {"role": "tool", "tool_call_id": call.id, "content": "sunny"},
    ]
    r2 = await sdk.openai.chat.completions.create(model="gpt-4o", messages=follow, tools=[WEATHER_TOOL])  # type: ignore[arg-type, list-item]
    assert r2.choices[0].finish_reason == "stop"
    assert r2.choices[0].message.content


async def test_openai_streamed_tool_call_reassembles(sdk: SDK) -> None:
    whole = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, tools=[WEATHER_TOOL])  # type: ignore[list-item]
    stream = await sdk.openai.chat.completions.create(
        model="gpt-4o", messages=HI, tools=[WEATHER_TOOL], stream=True
    )  # type: ignore[list-item]
    args = ""
    async for chunk in stream:
        for call in chunk.choices[0].delta.tool_calls or []:
            args += call.function.arguments or "" if call.function else ""
    assert whole.choices[0].message.tool_calls
    assert args == whole.choices[0].message.tool_calls[0].function.arguments  # type: ignore[union-attr]


async def test_openai_embeddings_float_and_base64(sdk: SDK) -> None:
    r = await sdk.openai.embeddings.create(model="text-embedding-3-small", input=["a cat", "a dog"])
    assert [d.index for d in r.data] == [0, 1]
    assert len(r.data[0].embedding) == 1536
    assert r.usage.prompt_tokens == 4
    floats = await sdk.openai.embeddings.create(
        model="text-embedding-3-small", input="a cat", encoding_format="float", dimensions=8
    )
    raw = await sdk.http.post(
        sdk.base_urls["openai"] + "/embeddings",
        json={
            "model": "text-embedding-3-small",
            "input": "a cat",
            "encoding_format": "base64",
            "dimensions": 8,
        },
        headers={"authorization": "Bearer k"},
    )
    b64 = raw.json()["data"][0]["embedding"]
    assert list(struct.unpack("<8f", base64.b64decode(b64))) == floats.data[0].embedding


async def test_openai_models(sdk: SDK) -> None:
    models = [m.id async for m in sdk.openai.models.list()]
    assert "gpt-4o-mini" in models
    one = await sdk.openai.models.retrieve("gpt-4o")
    assert one.id == "gpt-4o" and one.object == "model"


async def test_anthropic_text_and_stream(sdk: SDK) -> None:
    m = await sdk.anthropic.messages.create(
        model="claude-sonnet-4-6", max_tokens=200, system="Be brief.", messages=HI
    )
    assert m.type == "message" and m.role == "assistant"
    assert m.stop_reason == "end_turn"
    text = m.content[0].text  # type: ignore[union-attr]
    assert m.usage.output_tokens == count_tokens(text)
    async with sdk.anthropic.messages.stream(
        model="claude-sonnet-4-6", max_tokens=200, system="Be brief.", messages=HI
    ) as stream:
        streamed = "".join([t async for t in stream.text_stream])
        final = await stream.get_final_message()
    assert streamed == text
    assert final.usage.output_tokens == m.usage.output_tokens
    assert final.stop_reason == "end_turn"


async def test_anthropic_raw_event_sequence(sdk: SDK) -> None:
    stream = await sdk.anthropic.messages.create(
        model="claude-haiku-4-5", max_tokens=200, messages=HI, stream=True
    )
    kinds = [e.type async for e in stream]  # the SDK drops ping events; check them over HTTP below
    assert kinds[0] == "message_start" and kinds[1] == "content_block_start"
    assert kinds[-3:] == ["content_block_stop", "message_delta", "message_stop"]
    assert set(kinds[2:-3]) == {"content_block_delta"}
    raw = await sdk.http.post(
        sdk.base_urls["anthropic"] + "/v1/messages",
        json={"model": "claude-haiku-4-5", "max_tokens": 50, "messages": HI, "stream": True},
        headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
    )
    events = [line[7:] for line in raw.text.splitlines() if line.startswith("event: ")]
    assert "ping" in events
    assert raw.headers["content-type"].startswith("text/event-stream")


async def test_anthropic_max_tokens_and_stop_sequence(sdk: SDK) -> None:
    m = await sdk.anthropic.messages.create(model="claude-sonnet-4-6", max_tokens=3, messages=HI)
    assert m.stop_reason == "max_tokens"
    assert m.usage.output_tokens == 3
    full = (
        await sdk.anthropic.messages.create(model="claude-sonnet-4-6", max_tokens=500, messages=HI)
    ).content[0]
    word = full.text.split()[2]  # type: ignore[union-attr]
    cut = await sdk.anthropic.messages.create(
        model="claude-sonnet-4-6", max_tokens=500, messages=HI, stop_sequences=[word]
    )
    assert cut.stop_reason == "stop_sequence" and cut.stop_sequence == word


async def test_anthropic_tool_use_streamed_and_not(sdk: SDK) -> None:
    tool = {"name": "get_weather", "input_schema": WEATHER_TOOL["function"]["parameters"]}  # type: ignore[index]
    m = await sdk.anthropic.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=300,
        messages=HI,
        tools=[tool],  # type: ignore[list-item]
    )
    assert m.stop_reason == "tool_use"
    block = m.content[-1]
    assert block.type == "tool_use" and block.name == "get_weather"
    assert isinstance(block.input, dict) and "city" in block.input
    async with sdk.anthropic.messages.stream(
        model="claude-sonnet-4-6",
        max_tokens=300,
        messages=HI,
        tools=[tool],  # type: ignore[list-item]
    ) as stream:
        final = await stream.get_final_message()
    assert final.content[-1].input == block.input  # type: ignore[union-attr]
    follow = [
        *HI,
        {"role": "assistant", "content": [b.model_dump() for b in m.content]},
        {"role": "user", "content": [{"type": "tool_result", "tool_use_id": block.id, "content": "sunny"}]},
    ]
    answer = await sdk.anthropic.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=300,
        messages=follow,
        tools=[tool],  # type: ignore[arg-type, list-item]
    )
    assert answer.stop_reason == "end_turn" and answer.content[0].type == "text"


async def test_anthropic_models(sdk: SDK) -> None:
    ids = [m.id async for m in sdk.anthropic.models.list()]
    assert "claude-sonnet-4-6" in ids


async def test_mistral_text_stream_and_usage(sdk: SDK) -> None:
    r = await sdk.mistral.chat.complete_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    assert r.choices[0].finish_reason == "stop"
    text = r.choices[0].message.content  # type: ignore[union-attr]
    assert isinstance(text, str) and text
    assert r.usage.completion_tokens == count_tokens(text)
    stream = await sdk.mistral.chat.stream_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    events = [e async for e in stream]
    streamed = "".join(str(e.data.choices[0].delta.content or "") for e in events)
    assert streamed == text
    assert events[-1].data.usage is not None
    assert events[-1].data.usage.total_tokens == r.usage.total_tokens


async def test_mistral_tool_call(sdk: SDK) -> None:
    r = await sdk.mistral.chat.complete_async(
        model="mistral-large-latest",
        messages=HI,
        tools=[WEATHER_TOOL],
        tool_choice="any",  # type: ignore[arg-type, list-item]
    )
    assert r.choices[0].finish_reason == "tool_calls"
    calls = r.choices[0].message.tool_calls  # type: ignore[union-attr]
    assert calls and calls[0].function.name == "get_weather"
    assert "city" in json.loads(calls[0].function.arguments)  # type: ignore[arg-type]


async def test_mistral_embeddings_and_models(sdk: SDK) -> None:
    e = await sdk.mistral.embeddings.create_async(model="mistral-embed", inputs=["one", "two words"])
    assert len(e.data) == 2 and len(e.data[0].embedding or []) == 1024
    assert e.usage.prompt_tokens == 3
    models = await sdk.mistral.models.list_async()
    assert "mistral-small-latest" in [m.id for m in models.data or []]


async def test_journal_records_every_request(sdk: SDK) -> None:
    await sdk.openai.chat.completions.create(
        model="gpt-4o-mini", messages=HI, extra_headers={"x-stainless-retry-count": "2"}
    )
    stream = await sdk.anthropic.messages.create(
        model="claude-sonnet-4-6", max_tokens=20, messages=HI, stream=True
    )
    async for _ in stream:
        pass
    await sdk.mistral.chat.complete_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    entries = sdk.core.journal.entries
    assert [(e.provider, e.endpoint, e.status, e.stream) for e in entries] == [
        ("openai", "chat", 200, False),
        ("anthropic", "messages", 200, True),
        ("mistral", "chat", 200, False),
    ]
    assert entries[0].retry_count == 2 and entries[1].retry_count == 0 and entries[2].retry_count is None
    assert [e.index for e in entries] == [0, 1, 2]
    assert entries[0].model == "gpt-4o-mini" and entries[0].api_key == "test-key"
