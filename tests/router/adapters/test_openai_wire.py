"""OpenAI (and OpenAI-compatible) translation, without a socket."""

import json

import pytest
from router_wire_helpers import dep, run_stream, sse

from router.adapters import CODECS, openai
from router.errors import MalformedResponse, ServerError
from router.types import ChatRequest, Message, TextDelta, TextPart, ToolCall, ToolSpec


def test_urls_and_headers() -> None:
    d = dep("openai")
    assert d.chat_url == "http://h/x/chat/completions" and d.embeddings_url == "http://h/x/embeddings"
    assert d.headers["authorization"] == "Bearer k"


def test_to_wire_full() -> None:
    req = ChatRequest(
        model="route",
        system=[TextPart("be brief"), TextPart(" always", cache=True)],
        messages=[
            Message("user", "hi"),
            Message("assistant", "", tool_calls=[ToolCall("c1", "f", '{"a":1}')]),
            Message("tool", "42", tool_call_id="c1"),
        ],
        max_tokens=10,
        temperature=0.2,
        stop=["\n"],
        seed=7,
        tools=[ToolSpec("f", "does f")],
        tool_choice="auto",
        stream=True,
        metadata={"tenant": "a"},
        extra={"logprobs": True},
    )
    body = CODECS["openai"].to_wire(req, dep("openai"))  # the codec: max_completion_tokens
    assert body["model"] == "m-1"
    assert body["messages"][0] == {"role": "system", "content": "be brief always"}
    assert body["messages"][2]["tool_calls"][0]["function"] == {"name": "f", "arguments": '{"a":1}'}
    assert body["messages"][2]["content"] is None
    assert body["messages"][3] == {"role": "tool", "content": "42", "tool_call_id": "c1"}
    assert body["max_completion_tokens"] == 10 and "max_tokens" not in body
    assert body["stream_options"] == {"include_usage": True}
    assert body["logprobs"] is True and "metadata" not in body
    compat = CODECS["openai_compatible"].to_wire(req, dep("openai_compatible"))
    assert compat["max_tokens"] == 10


def test_from_wire() -> None:
    body = {
        "id": "x",
        "model": "gpt-4o-mini-2024",
        "choices": [
            {
                "index": 0,
                "message": {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c", "type": "function", "function": {"name": "f", "arguments": "{bad"}}
                    ],
                },
                "finish_reason": "tool_calls",
            }
        ],
        "usage": {
            "prompt_tokens": 10,
            "completion_tokens": 3,
            "total_tokens": 13,
            "prompt_tokens_details": {"cached_tokens": 4},
        },
    }
    r = openai.from_wire(body, dep("openai"))
    assert r.content == "" and r.finish_reason == "tool_calls"
    assert r.tool_calls[0].arguments == "{bad"  # passed through as the model produced it
    assert (r.usage.input_tokens, r.usage.output_tokens, r.usage.cached_input_tokens) == (10, 3, 4)
    assert r.provider_model == "gpt-4o-mini-2024" and r.model == "dep" and r.provider == "prov"


@pytest.mark.parametrize(
    ("body", "what"),
    [
        ([], "not a JSON object"),
        ({"choices": []}, "no choices"),
        ({"choices": [{}]}, "message"),
        ({"choices": [{"message": {"content": 5}}]}, "content is not a string"),
    ],
)
def test_from_wire_malformed(body: object, what: str) -> None:
    with pytest.raises(MalformedResponse, match=what):
        openai.from_wire(body, dep("openai"))


def chunk(delta: dict, finish: str | None = None, usage: dict | None = None) -> str:
    return json.dumps(
        {
            "id": "c",
            "object": "chat.completion.chunk",
            "model": "gpt-x",
            "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
            "usage": usage,
        }
    )


def test_stream_complete() -> None:
    raw = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({}, "stop"),
        json.dumps({"id": "c", "choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2}}),
        "[DONE]",
    )
    deltas, acc = run_stream("openai", raw)
    assert deltas == [TextDelta("Hel"), TextDelta("lo")]
    assert acc.done
    r = acc.response()
    assert (
        r.content == "Hello"
        and r.finish_reason == "stop"
        and r.usage.output_tokens == 2
        and r.provider_model == "gpt-x"
    )


def test_stream_tool_call_deltas_accumulate() -> None:
    raw = sse(
        chunk(
            {
                "tool_calls": [
                    {"index": 0, "id": "c1", "type": "function", "function": {"name": "f", "arguments": ""}}
                ]
            }
        ),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"a":'}}]}),
        chunk({"tool_calls": [{"index": 0, "function": {"arguments": "1}"}}]}, "tool_calls"),
        "[DONE]",
    )
    deltas, acc = run_stream("openai", raw)
    assert len(deltas) == 3
    r = acc.response()
    assert (
        r.tool_calls[0].arguments == '{"a":1}'
        and r.tool_calls[0].name == "f"
        and r.finish_reason == "tool_calls"
    )


def test_stream_without_done_is_not_done() -> None:
    _, acc = run_stream("openai", sse(chunk({"content": "Hel"})))
    assert not acc.done


def test_stream_in_band_error_and_garbage() -> None:
    with pytest.raises(ServerError, match="boom"):
        run_stream(
            "openai",
            sse(chunk({"content": "a"}), json.dumps({"error": {"message": "boom", "type": "server_error"}})),
        )
    with pytest.raises(MalformedResponse, match="not JSON"):
        run_stream("openai", sse("{not json"))


def test_embeddings() -> None:
    d = dep("openai")
    from router.types import EmbeddingRequest

    assert openai.embed_to_wire(EmbeddingRequest("e", ["a"], dimensions=3), d)["dimensions"] == 3
    r = openai.embed_from_wire(
        {
            "data": [{"index": 1, "embedding": [2.0]}, {"index": 0, "embedding": [1.0]}],
            "usage": {"prompt_tokens": 2},
        },
        d,
    )
    assert r.vectors == [[1.0], [2.0]] and r.usage.input_tokens == 2
    with pytest.raises(MalformedResponse):
        openai.embed_from_wire({"data": [{"index": 0}]}, d)
