"""Property tests: valid requests get schema-valid answers, streams agree with whole answers,
and malformed bodies always get a 4xx in the provider's own shape, never a 500."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from anthropic.types import Message
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mistralai.client.models import ChatCompletionResponse, CompletionChunk
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from mockproviders.core import MockCore
from mockproviders.tokens import count_tokens, split_tokens

HEADERS = {"authorization": "Bearer k", "anthropic-version": "2023-06-01"}
PATHS = {
    "openai": "/openai/v1/chat/completions",
    "anthropic": "/anthropic/v1/messages",
    "mistral": "/mistral/v1/chat/completions",
}
MODELS = {"openai": "gpt-4o-mini", "anthropic": "claude-haiku-4-5", "mistral": "mistral-small-latest"}
SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])

text = st.text(st.characters(exclude_categories=("Cs",)), max_size=30)
json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 5) | st.floats(allow_nan=False) | text,
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(text, inner, max_size=3),
    max_leaves=8,
)


def call(provider: str, body: Any, *, raw: bytes | None = None) -> tuple[int, bytes, list[str]]:
    """One request to a fresh core; returns status, body (or the joined SSE data lines)."""

    async def go() -> tuple[int, bytes, list[str]]:
        core = MockCore(seed=3)
        payload = raw if raw is not None else json.dumps(body).encode()
        r = await core.dispatch("POST", PATHS[provider], HEADERS, payload)
        if r.stream is None:
            return r.status, r.body or b"", []
        return r.status, b"", [e.data async for e in r.stream]

    return asyncio.run(go())


@st.composite
def chat_body(draw: st.DrawFn, provider: str) -> dict[str, Any]:
    turns = draw(st.integers(0, 2))
    messages = []
    for _ in range(turns):
        messages += [{"role": "user", "content": draw(text)}, {"role": "assistant", "content": draw(text)}]
    messages.append({"role": "user", "content": draw(text)})
    body: dict[str, Any] = {"model": MODELS[provider], "messages": messages}
    stops = draw(st.lists(st.text(min_size=1, max_size=4), max_size=2))
    if provider == "anthropic":
        body["max_tokens"] = draw(st.integers(1, 60))
        if draw(st.booleans()):
            body["system"] = draw(text)
        if stops:
            body["stop_sequences"] = stops
    else:
        if draw(st.booleans()):
            body["max_tokens"] = draw(st.integers(1, 60))
        body["n"] = draw(st.integers(1, 3))
        if stops:
            body["stop"] = stops
    return body


def streamed_texts(provider: str, datas: list[str]) -> dict[int, str]:
    out: dict[int, str] = {}
    for data in datas:
        if data == "[DONE]":
            continue
        event = json.loads(data)
        if provider == "anthropic":
            if event["type"] == "content_block_delta":
                out[0] = out.get(0, "") + event["delta"]["text"]
            continue
        if provider == "openai":
            ChatCompletionChunk.model_validate(event)
        else:
            CompletionChunk.model_validate(event)
        for choice in event["choices"]:
            out[choice["index"]] = out.get(choice["index"], "") + (choice["delta"].get("content") or "")
    return out


def whole_texts(provider: str, payload: bytes) -> dict[int, str]:
    data = json.loads(payload)
    if provider == "openai":
        parsed = ChatCompletion.model_validate(data)
        assert parsed.usage is not None
        assert parsed.usage.completion_tokens == sum(
            count_tokens(c.message.content or "") for c in parsed.choices
        )
        return {c.index: c.message.content or "" for c in parsed.choices}
    if provider == "anthropic":
        message = Message.model_validate(data)
        text = "".join(b.text for b in message.content if b.type == "text")
        assert message.usage.output_tokens == count_tokens(text)
        return {0: text} if text else {}
    response = ChatCompletionResponse.model_validate(data)
    return {c.index: str(c.message.content or "") for c in response.choices if c.message}


@given(st.sampled_from(sorted(PATHS)), st.data())
@SETTINGS
def test_valid_requests_get_valid_answers_and_streams_agree(provider: str, data: st.DataObject) -> None:
    body = data.draw(chat_body(provider))
    status, payload, _ = call(provider, body)
    assert status == 200, payload
    whole = {k: v for k, v in whole_texts(provider, payload).items() if v}
    status, _, events = call(provider, {**body, "stream": True})
    assert status == 200
    assert events[-1] == ("[DONE]" if provider != "anthropic" else '{"type":"message_stop"}')
    assert {k: v for k, v in streamed_texts(provider, events).items() if v} == whole


def _error_shape(provider: str, status: int, payload: bytes) -> None:
    assert 400 <= status < 500, (status, payload)
    data = json.loads(payload)
    if provider == "openai":
        assert set(data["error"]) == {"message", "type", "param", "code"}
    elif provider == "anthropic":
        assert data["type"] == "error" and set(data["error"]) == {"type", "message"} and data["request_id"]
    elif status == 422:
        assert data["detail"][0]["loc"][0] == "body"
    else:
        assert data["object"] == "error"


@given(st.sampled_from(sorted(PATHS)), json_values)
@SETTINGS
def test_arbitrary_json_bodies_get_a_4xx_in_the_provider_shape(provider: str, body: Any) -> None:
    status, payload, events = call(provider, body)
    if status == 200:  # an arbitrary value can be valid only by luck; it must then be a real answer
        assert payload or events
        return
    _error_shape(provider, status, payload)


@given(st.sampled_from(sorted(PATHS)), st.data())
@SETTINGS
def test_damaged_valid_bodies_never_get_a_500(provider: str, data: st.DataObject) -> None:
    body = data.draw(chat_body(provider))
    target: Any = body
    path = data.draw(st.lists(st.integers(0, 5), min_size=1, max_size=3))
    for step in path[:-1]:  # walk into the body, then damage one place
        keys = list(target) if isinstance(target, dict) else list(range(len(target)))
        if not keys or not isinstance(target[keys[step % len(keys)]], dict | list):
            break
        target = target[keys[step % len(keys)]]
    keys = list(target) if isinstance(target, dict) else list(range(len(target)))
    if keys:
        key = keys[path[-1] % len(keys)]
        if data.draw(st.booleans()):
            del target[key]
        else:
            target[key] = data.draw(json_values)
    status, payload, _ = call(provider, body)
    if status != 200:
        _error_shape(provider, status, payload)


@given(st.binary(max_size=40), st.sampled_from(sorted(PATHS)))
@SETTINGS
def test_non_json_bytes_get_a_4xx(raw: bytes, provider: str) -> None:
    status, payload, _ = call(provider, None, raw=raw)
    if status != 200:
        _error_shape(provider, status, payload)


@given(text)
def test_tokens_join_back_to_the_text(value: str) -> None:
    pieces = split_tokens(value)
    assert "".join(pieces) == value
    assert len(pieces) == count_tokens(value) or (value and value.isspace())
