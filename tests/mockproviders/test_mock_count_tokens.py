"""Anthropic's ``client.messages.count_tokens`` against the mock through every front end (socket,
interception, MockTransport): the count is the input the same message is billed for (system,
tools, images, documents, cache reads and writes included), errors come in Anthropic's shape,
and counting is not a message (no rate-limit slot, no usage in the journal's answers)."""

from __future__ import annotations

import base64
import struct
from typing import Any

import anthropic
import pytest
from mock_sdk_client import SDK

from mockproviders.config import MockConfig, RateLimit

SONNET = "claude-sonnet-4-5"
TOOLS: list[dict[str, Any]] = [
    {
        "name": "get_weather",
        "description": "Weather for a city",
        "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    }
]


def png(width: int, height: int) -> str:
    """A PNG's signature and IHDR header: all the mock reads of an image is its size."""
    ihdr = struct.pack(">II", width, height) + bytes([8, 2, 0, 0, 0])
    data = b"\x89PNG\r\n\x1a\n" + struct.pack(">I", 13) + b"IHDR" + ihdr + b"\0\0\0\0"
    return base64.b64encode(data).decode()


def image(width: int, height: int) -> dict[str, Any]:
    return {
        "type": "image",
        "source": {"type": "base64", "media_type": "image/png", "data": png(width, height)},
    }


def user(*blocks: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"role": "user", "content": [*blocks, {"type": "text", "text": "What is in it?"}]}]


async def count(sdk: SDK, messages: list[dict[str, Any]], **kw: Any) -> int:
    result = await sdk.anthropic.messages.count_tokens(model=SONNET, messages=messages, **kw)  # type: ignore[arg-type]
    return result.input_tokens


async def billed(sdk: SDK, messages: list[dict[str, Any]], **kw: Any) -> int:
    answer = await sdk.anthropic.messages.create(model=SONNET, max_tokens=16, messages=messages, **kw)  # type: ignore[arg-type]
    u = answer.usage
    return u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)


@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"system": "You answer about trains."},
        {"system": [{"type": "text", "text": "You answer about trains."}], "tools": TOOLS},
        {"tools": TOOLS, "tool_choice": {"type": "tool", "name": "get_weather"}},
    ],
    ids=["plain", "system", "system-blocks-and-tools", "forced-tool"],
)
async def test_the_count_is_the_input_the_message_is_billed_for(sdk: SDK, kw: dict[str, Any]) -> None:
    messages = [
        {"role": "user", "content": "Which platform?"},
        {"role": "assistant", "content": "Two."},
        {"role": "user", "content": "And when?"},
    ]
    counted = await count(sdk, messages, **kw)
    assert counted == await billed(sdk, messages, **kw)
    assert (
        counted
        == (
            await sdk.anthropic.messages.create(model=SONNET, max_tokens=16, messages=messages, **kw)
        ).usage.input_tokens
    )  # type: ignore[arg-type]


async def test_tools_system_images_and_documents_each_add_their_tokens(sdk: SDK) -> None:
    base = await count(sdk, user())
    assert base == 4 + 3 + 3  # "What is in it?", the message, the request
    assert await count(sdk, user(), system="Be brief.") == base + 2 + 3
    assert await count(sdk, user(), tools=TOOLS) > base
    assert await count(sdk, user(image(200, 150))) == base + 200 * 150 // 750
    # Anthropic resizes to about 1.15 megapixels before counting: 1,150,000 / 750 = 1533.3
    assert await count(sdk, user(image(3000, 2000))) == base + 1534
    text_doc = {
        "type": "document",
        "source": {"type": "text", "media_type": "text/plain", "data": "one two three"},
    }
    assert await count(sdk, user(text_doc)) == base + 3
    pdf = base64.b64encode(b"%PDF-1.4 /Type /Pages /Type /Page x /Type /Page y").decode()
    pdf_doc = {"type": "document", "source": {"type": "base64", "media_type": "application/pdf", "data": pdf}}
    assert await count(sdk, user(pdf_doc)) == base + 2 * 1500  # two pages
    for blocks in ([image(200, 150)], [text_doc], [pdf_doc]):
        assert await count(sdk, user(*blocks)) == await billed(sdk, user(*blocks))


async def test_cached_prefixes_do_not_change_the_count(sdk: SDK) -> None:
    sdk.core.configure(MockConfig(prompt_caching={"min_tokens": {"default": 0}}))  # type: ignore[arg-type]
    system = [{"type": "text", "text": "You answer about trains.", "cache_control": {"type": "ephemeral"}}]
    messages = user()
    counted = await count(sdk, messages, system=system)
    first = await sdk.anthropic.messages.create(model=SONNET, max_tokens=16, system=system, messages=messages)  # type: ignore[arg-type]
    second = await sdk.anthropic.messages.create(
        model=SONNET, max_tokens=16, system=system, messages=messages
    )  # type: ignore[arg-type]
    assert first.usage.cache_creation_input_tokens and second.usage.cache_read_input_tokens
    for u in (first.usage, second.usage):
        assert (
            u.input_tokens + (u.cache_read_input_tokens or 0) + (u.cache_creation_input_tokens or 0)
            == counted
        )


async def test_errors_come_in_anthropics_shape(sdk: SDK) -> None:
    with pytest.raises(anthropic.NotFoundError) as missing:
        await sdk.anthropic.messages.count_tokens(model="claude-nope", messages=user())  # type: ignore[arg-type]
    assert missing.value.body["error"] == {"type": "not_found_error", "message": "model: claude-nope"}  # type: ignore[index]
    with pytest.raises(anthropic.BadRequestError) as bad:
        await sdk.anthropic.messages.count_tokens(model=SONNET, messages=[{"role": "robot", "content": "x"}])  # type: ignore[typeddict-item,list-item]
    assert bad.value.body["type"] == "error"  # type: ignore[index]
    assert bad.value.body["error"]["type"] == "invalid_request_error"  # type: ignore[index]
    assert "messages.0.role" in bad.value.body["error"]["message"]  # type: ignore[index]
    url = sdk.base_urls["anthropic"] + "/v1/messages/count_tokens"
    no_messages = await sdk.http.post(
        url, json={"model": SONNET}, headers={"x-api-key": "k", "anthropic-version": "2023-06-01"}
    )
    assert no_messages.status_code == 400 and "messages" in no_messages.json()["error"]["message"]
    no_version = await sdk.http.post(
        url, json={"model": SONNET, "messages": user()}, headers={"x-api-key": "k"}
    )
    assert no_version.status_code == 400 and no_version.json()["error"]["type"] == "invalid_request_error"
    no_key = await sdk.http.post(url, json={"model": SONNET, "messages": user()})
    assert no_key.status_code == 401 and no_key.json()["error"]["type"] == "authentication_error"


async def test_counting_takes_no_message_rate_limit_slot(sdk: SDK) -> None:
    sdk.core.configure(MockConfig(rate_limits={"anthropic": RateLimit(requests=1)}))
    for _ in range(3):
        assert await count(sdk, user()) == 10
    await sdk.anthropic.messages.create(model=SONNET, max_tokens=16, messages=user())  # type: ignore[arg-type]
    with pytest.raises(anthropic.RateLimitError):
        await sdk.anthropic.messages.create(model=SONNET, max_tokens=16, messages=user())  # type: ignore[arg-type]
    endpoints = [(e.endpoint, e.status) for e in sdk.core.journal.entries]
    assert endpoints == [("count_tokens", 200)] * 3 + [("messages", 200), ("messages", 429)]
