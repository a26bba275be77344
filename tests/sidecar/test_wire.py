"""The hand-spliced response bytes are exactly what json.dumps of the dicts gives."""

from __future__ import annotations

import json

import pytest

from router.sidecar.wire import ChunkWriter, chat_body, chat_json
from router.types import ChatResponse, ToolCall, Usage

TEXTS = ["", "plain", 'quotes " and \\ backslash', "new\nline\ttab \x00 \x1f", "é 日本 \U0001f600"]


@pytest.mark.parametrize("text", TEXTS)
@pytest.mark.parametrize("finish", ["stop", "length", "tool_calls", "content_filter", "error", "other"])
def test_chat_body_is_json_dumps_of_chat_json(text: str, finish: str) -> None:
    resp = ChatResponse(
        content=text,
        model="fast",
        provider="openai",
        provider_model="gpt-4o-mini" if text else "",
        finish_reason=finish,  # type: ignore[arg-type]
        usage=Usage(10, 13, 4),
    )
    want = json.dumps(chat_json(resp, "chatcmpl-ab-1", 1700000000)).encode()
    assert chat_body(resp, "chatcmpl-ab-1", 1700000000) == want


def test_chat_body_with_tool_calls_or_odd_types() -> None:
    calls = [ToolCall("call_1", "lookup", '{"q": "x"}')]
    for resp in (
        ChatResponse("", "m", "p", "q", "tool_calls", Usage(1, 2), tool_calls=calls),
        ChatResponse("x", "m", "p", "q", "stop", Usage(1.0, 2)),  # type: ignore[arg-type]
    ):
        assert chat_body(resp, "c", 1) == json.dumps(chat_json(resp, "c", 1)).encode()


@pytest.mark.parametrize("usage", [False, True])
def test_chunk_writer_text_frames(usage: bool) -> None:
    fast, slow = ChunkWriter("c-1", 5, "m", usage), ChunkWriter("c-1", 5, "m", usage)
    for text in TEXTS:
        assert fast.text(text) == slow._delta({"content": text})


@pytest.mark.parametrize("model", ["gpt-4o-mini", 'odd "model" é'])
def test_chunk_writer_frames_are_json_dumps_of_the_chunk(model: str) -> None:
    w = ChunkWriter("chatcmpl-ab-1", 1700000000, model, False)
    head = {"id": "chatcmpl-ab-1", "object": "chat.completion.chunk", "created": 1700000000, "model": model}

    def frame(delta: dict[str, str]) -> bytes:
        choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": None}
        return b"data: " + json.dumps({**head, "choices": [choice]}).encode() + b"\n\n"

    assert w.text("first") == frame({"role": "assistant", "content": "first"})
    assert w.text('then "more"') == frame({"content": 'then "more"'})
