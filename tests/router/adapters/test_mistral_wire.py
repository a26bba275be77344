"""Mistral translation: OpenAI's format with its own differences."""

import json

from router_wire_helpers import dep, run_stream, sse

from router.adapters import mistral
from router.types import ChatRequest, Message


def test_to_wire_differences() -> None:
    d = dep("mistral")
    assert d.chat_url == "http://h/x/v1/chat/completions" and d.embeddings_url == "http://h/x/v1/embeddings"
    body = mistral.to_wire(
        ChatRequest(
            "r", [Message("user", "hi")], seed=4, stream=True, tool_choice="required", user="u", max_tokens=9
        ),
        d,
    )
    assert "stream_options" not in body and "seed" not in body and body["random_seed"] == 4
    assert body["tool_choice"] == "any" and "user" not in body and body["max_tokens"] == 9


def test_finish_reasons_and_stream_usage() -> None:
    body = {
        "model": "mistral-small",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "x"}, "finish_reason": "model_length"}
        ],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1},
    }
    assert mistral.from_wire(body, dep("mistral")).finish_reason == "length"
    raw = sse(
        json.dumps({"choices": [{"index": 0, "delta": {"content": "a"}, "finish_reason": None}]}),
        json.dumps(
            {
                "choices": [{"index": 0, "delta": {}, "finish_reason": "error"}],
                "usage": {"prompt_tokens": 3, "completion_tokens": 1},
            }
        ),
        "[DONE]",
    )
    _, acc = run_stream("mistral", raw)
    r = acc.response()
    assert r.finish_reason == "error" and r.usage.input_tokens == 3
