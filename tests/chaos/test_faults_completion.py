"""Bad completions: a 200 whose answer is wrong in a way the client must handle."""

from __future__ import annotations

import json
from typing import Any

import pytest
from chaos_helpers import CHAT, MockFactory, anthropic_client, openai_client, rule

TOOLS: Any = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {
                "type": "object",
                "properties": {"city": {"type": "string"}},
                "required": ["city"],
            },
        },
    }
]


@pytest.mark.parametrize(
    ("reason", "anthropic_reason"), [("length", "max_tokens"), ("content_filter", "refusal")]
)
async def test_finish_reason(chaos_mock: MockFactory, reason: str, anthropic_reason: str) -> None:
    async with chaos_mock(rule("fin", "finish_reason", params={"reason": reason})) as server:
        answer = await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert answer.choices[0].finish_reason == reason
        stream = await openai_client(server).chat.completions.create(
            model="gpt-4o-mini", messages=CHAT, stream=True
        )
        assert [c.choices[0].finish_reason async for c in stream if c.choices][-1] == reason
        message = await anthropic_client(server).messages.create(
            model="claude-haiku-4-5", max_tokens=50, messages=CHAT
        )
        assert message.stop_reason == anthropic_reason


async def test_empty_content(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("empty", "empty_content")) as server:
        answer = await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert answer.choices[0].message.content == ""
        assert server.core.journal.entries[0].annotations["fault_kind"] == "empty_content"


async def test_tool_arguments_that_are_not_json(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("args", "bad_tool_arguments")) as server:
        client = openai_client(server)
        answer = await client.chat.completions.create(
            model="gpt-4o-mini", messages=CHAT, tools=TOOLS, tool_choice="required"
        )
        calls: Any = answer.choices[0].message.tool_calls
        assert calls and calls[0].function.arguments == '{"city": "Par'
        with pytest.raises(json.JSONDecodeError):
            json.loads(calls[0].function.arguments)
        # A request without tools cannot get this fault: it passes untouched and is not counted.
        plain = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert plain.choices[0].message.content
        assert [e["fault"] for e in server.engine.journal] == ["bad_tool_arguments", None]
