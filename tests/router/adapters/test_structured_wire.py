"""Structured outputs, one ResponseFormat in every provider's terms (pure translation, no socket)."""

from __future__ import annotations

import json

import pytest
from router_wire_helpers import dep, run_stream, sse

from router.adapters import anthropic, mistral, openai
from router.structured import FormatError, from_openai, from_responses, to_responses
from router.types import ChatRequest, Message, ResponseFormat, TextDelta, ToolSpec

SCHEMA = {"type": "object", "properties": {"n": {"type": "integer"}}, "required": ["n"]}
FMT = ResponseFormat("json_schema", "Count", SCHEMA, True)


def req(**kw: object) -> ChatRequest:
    return ChatRequest(model="r", messages=[Message("user", "count")], response_format=FMT, **kw)  # type: ignore[arg-type]


def test_readers_agree_and_name_bad_fields() -> None:
    chat = {"type": "json_schema", "json_schema": {"name": "Count", "schema": SCHEMA, "strict": True}}
    assert from_openai(chat) == FMT
    assert from_responses({"type": "json_schema", "name": "Count", "schema": SCHEMA, "strict": True}) == FMT
    assert from_openai({"type": "json_object"}) == ResponseFormat("json_object")
    assert from_openai({"type": "text"}) is None
    assert to_responses(FMT) == {"type": "json_schema", "name": "Count", "schema": SCHEMA, "strict": True}
    with pytest.raises(FormatError) as bad:
        from_openai({"type": "json_schema", "json_schema": {"name": "C", "schema": [1]}})
    assert bad.value.param == "response_format.json_schema.schema"
    with pytest.raises(FormatError) as kind:
        from_responses({"type": "yaml"})
    assert kind.value.param == "text.format.type"


def test_openai_and_mistral_send_json_schema() -> None:
    want = {"type": "json_schema", "json_schema": {"name": "Count", "schema": SCHEMA, "strict": True}}
    assert openai.to_wire(req(), dep("openai"))["response_format"] == want
    assert mistral.to_wire(req(), dep("mistral"))["response_format"] == want
    obj = ChatRequest(
        model="r", messages=[Message("user", "x")], response_format=ResponseFormat("json_object")
    )
    assert mistral.to_wire(obj, dep("mistral"))["response_format"] == {"type": "json_object"}


def test_anthropic_forces_a_tool_whose_input_is_the_answer() -> None:
    body = anthropic.to_wire(req(), dep("anthropic"))
    (tool,) = body["tools"]
    assert tool["name"] == anthropic.STRUCTURED_TOOL and tool["input_schema"] == SCHEMA
    assert body["tool_choice"] == {"type": "tool", "name": anthropic.STRUCTURED_TOOL}
    answer = {
        "model": "claude-x",
        "content": [{"type": "tool_use", "id": "t1", "name": anthropic.STRUCTURED_TOOL, "input": {"n": 3}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 4},
    }
    resp = anthropic.from_wire(answer, dep("anthropic"))
    assert json.loads(resp.content) == {"n": 3} and resp.tool_calls == [] and resp.finish_reason == "stop"


def test_anthropic_with_the_callers_tools_lets_the_model_choose_among_them() -> None:
    body = anthropic.to_wire(req(tools=[ToolSpec("lookup")], tool_choice="auto"), dep("anthropic"))
    assert [t["name"] for t in body["tools"]] == ["lookup", anthropic.STRUCTURED_TOOL]
    assert body["tool_choice"] == {"type": "any"}


def test_anthropic_stream_of_a_structured_answer_is_text() -> None:
    def ev(name: str, payload: dict) -> bytes:
        return sse(json.dumps({"type": name, **payload}), event=name)

    raw = (
        ev("message_start", {"message": {"model": "claude-x", "usage": {"input_tokens": 5}}})
        + ev(
            "content_block_start",
            {"index": 0, "content_block": {"type": "tool_use", "id": "t", "name": anthropic.STRUCTURED_TOOL}},
        )
        + ev(
            "content_block_delta",
            {"index": 0, "delta": {"type": "input_json_delta", "partial_json": '{"n": '}},
        )
        + ev("content_block_delta", {"index": 0, "delta": {"type": "input_json_delta", "partial_json": "3}"}})
        + ev("content_block_stop", {"index": 0})
        + ev("message_delta", {"delta": {"stop_reason": "tool_use"}, "usage": {"output_tokens": 4}})
        + ev("message_stop", {})
    )
    deltas, acc = run_stream("anthropic", raw)
    assert deltas == [TextDelta('{"n": '), TextDelta("3}")]
    resp = acc.response()
    assert json.loads(resp.content) == {"n": 3} and resp.tool_calls == [] and resp.finish_reason == "stop"
