"""Anthropic translation, without a socket."""

import json

import pytest
from router_wire_helpers import dep, run_stream, sse

from router.adapters import anthropic
from router.errors import MalformedResponse, Overloaded
from router.types import ChatRequest, Message, TextDelta, TextPart, ToolCall, ToolSpec


def test_url_and_headers() -> None:
    d = dep("anthropic")
    assert d.chat_url == "http://h/x/v1/messages" and d.embeddings_url == ""
    assert d.headers["x-api-key"] == "k" and d.headers["anthropic-version"] == "2023-06-01"


def test_to_wire_moves_system_and_translates_tools() -> None:
    req = ChatRequest(
        model="r",
        system=[TextPart("sys", cache=True)],
        messages=[
            Message("system", "more rules"),
            Message("user", [TextPart("long doc", cache=True)]),
            Message("assistant", "let me", tool_calls=[ToolCall("t1", "f", '{"a":1}')]),
            Message("tool", "42", tool_call_id="t1"),
        ],
        tools=[ToolSpec("f", "does f")],
        tool_choice="required",
        stop=["X"],
        seed=3,
    )
    body = anthropic.to_wire(req, dep("anthropic"))
    assert body["max_tokens"] == anthropic.DEFAULT_MAX_TOKENS
    assert body["system"] == [
        {"type": "text", "text": "sys", "cache_control": {"type": "ephemeral"}},
        {"type": "text", "text": "more rules"},
    ]
    assert [m["role"] for m in body["messages"]] == ["user", "assistant", "user"]
    assert body["messages"][0]["content"][0]["cache_control"] == {"type": "ephemeral"}
    assert body["messages"][1]["content"][1] == {
        "type": "tool_use",
        "id": "t1",
        "name": "f",
        "input": {"a": 1},
    }
    assert body["messages"][2]["content"][0]["type"] == "tool_result"
    assert body["tools"][0]["input_schema"] == {"type": "object", "properties": {}}
    assert body["tool_choice"] == {"type": "any"} and body["stop_sequences"] == ["X"] and "seed" not in body


def test_from_wire_usage_counts_cached_tokens_as_input() -> None:
    body = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [
            {"type": "text", "text": "Hi"},
            {"type": "tool_use", "id": "t", "name": "f", "input": {"q": 1}},
        ],
        "stop_reason": "tool_use",
        "usage": {
            "input_tokens": 10,
            "output_tokens": 5,
            "cache_read_input_tokens": 100,
            "cache_creation_input_tokens": 20,
        },
    }
    r = anthropic.from_wire(body, dep("anthropic"))
    assert (
        r.content == "Hi"
        and r.finish_reason == "tool_calls"
        and json.loads(r.tool_calls[0].arguments) == {"q": 1}
    )
    assert (
        r.usage.input_tokens,
        r.usage.cached_input_tokens,
        r.usage.cache_write_tokens,
        r.usage.output_tokens,
    ) == (130, 100, 20, 5)
    with pytest.raises(MalformedResponse, match="no content list"):
        anthropic.from_wire({"type": "message"}, dep("anthropic"))


def ev(name: str, payload: dict) -> bytes:
    return sse(json.dumps(payload), event=name)


START = ev(
    "message_start",
    {
        "type": "message_start",
        "message": {"model": "claude-x", "usage": {"input_tokens": 7, "output_tokens": 1}},
    },
)


def test_stream_complete_with_pings() -> None:
    raw = (
        START
        + ev(
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        )
        + ev("ping", {"type": "ping"})
        + ev(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
        )
        + ev(
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "lo"}},
        )
        + ev("content_block_stop", {"type": "content_block_stop", "index": 0})
        + ev(
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "max_tokens"}, "usage": {"output_tokens": 2}},
        )
        + ev("message_stop", {"type": "message_stop"})
    )
    deltas, acc = run_stream("anthropic", raw)
    assert deltas == [TextDelta("Hel"), TextDelta("lo")]
    r = acc.response()
    assert acc.done and r.content == "Hello" and r.finish_reason == "length"
    assert (r.usage.input_tokens, r.usage.output_tokens) == (7, 2) and r.provider_model == "claude-x"


def test_stream_without_message_stop_is_not_done() -> None:
    raw = START + ev(
        "content_block_delta",
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Hel"}},
    )
    _, acc = run_stream("anthropic", raw)
    assert not acc.done


def test_in_band_overloaded_error() -> None:
    raw = START + ev(
        "error", {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}
    )
    with pytest.raises(Overloaded):
        run_stream("anthropic", raw)


def test_tool_use_stream() -> None:
    raw = (
        START
        + ev(
            "content_block_start",
            {
                "type": "content_block_start",
                "index": 1,
                "content_block": {"type": "tool_use", "id": "t", "name": "f", "input": {}},
            },
        )
        + ev(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": '{"a":'},
            },
        )
        + ev(
            "content_block_delta",
            {
                "type": "content_block_delta",
                "index": 1,
                "delta": {"type": "input_json_delta", "partial_json": "2}"},
            },
        )
        + ev("message_stop", {"type": "message_stop"})
    )
    _, acc = run_stream("anthropic", raw)
    assert acc.response().tool_calls[0].arguments == '{"a":2}'


def test_malformed_event_names_it() -> None:
    with pytest.raises(MalformedResponse, match="content_block_delta event malformed"):
        run_stream(
            "anthropic",
            ev("content_block_delta", {"type": "content_block_delta", "delta": {"type": "text_delta"}}),
        )
