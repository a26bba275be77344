"""The mock continues an assistant prefill as its provider does (WIRE.md "Continuing a cut answer"):
Anthropic continues a trailing assistant message, Mistral one marked ``prefix: true``, both with
the rest of the deterministic answer; OpenAI answers afresh. Driven by the official SDKs."""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from mock_sdk_client import SDK

from mockproviders.tokens import count_tokens

HI: list[Any] = [{"role": "user", "content": "Tell me about switches"}]


def cut_at_word(text: str, words: int) -> str:
    """The first ``words`` words of ``text``, ending in a word (a prefill without trailing space)."""
    return " ".join(text.split(" ")[:words])


async def test_anthropic_continues_its_answer_from_a_prefill(sdk: SDK) -> None:
    full = await sdk.anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=HI)
    whole = full.content[0].text  # type: ignore[union-attr]
    prefill = cut_at_word(whole, 3)
    messages = [*HI, {"role": "assistant", "content": prefill}]
    r = await sdk.anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=messages)
    rest = r.content[0].text  # type: ignore[union-attr]
    assert prefill + rest == whole and rest
    assert r.usage.output_tokens == count_tokens(rest)
    assert r.usage.input_tokens > full.usage.input_tokens  # the prefill is input
    async with sdk.anthropic.messages.stream(
        model="claude-sonnet-4-5", max_tokens=200, messages=messages
    ) as stream:
        streamed = "".join([t async for t in stream.text_stream])
    assert streamed == rest


async def test_anthropic_refuses_a_prefill_ending_in_whitespace(sdk: SDK) -> None:
    messages = [*HI, {"role": "assistant", "content": "Switches are "}]
    with pytest.raises(anthropic.BadRequestError) as info:
        await sdk.anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=50, messages=messages)
    assert "trailing whitespace" in str(info.value)


async def test_mistral_continues_a_prefix_message(sdk: SDK) -> None:
    full = await sdk.mistral.chat.complete_async(model="mistral-small-latest", messages=HI)
    whole = str(full.choices[0].message.content)
    prefill = cut_at_word(whole, 4)
    messages: list[Any] = [*HI, {"role": "assistant", "content": prefill, "prefix": True}]
    r = await sdk.mistral.chat.complete_async(model="mistral-small-latest", messages=messages)
    assert prefill + str(r.choices[0].message.content) == whole
    stream = await sdk.mistral.chat.stream_async(model="mistral-small-latest", messages=messages)
    streamed = "".join([str(e.data.choices[0].delta.content or "") async for e in stream])
    assert prefill + streamed == whole


async def test_a_prefill_that_is_not_the_answer_gets_text_after_it(sdk: SDK) -> None:
    messages = [*HI, {"role": "assistant", "content": "Something else entirely"}]
    r = await sdk.anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=messages)
    rest = r.content[0].text  # type: ignore[union-attr]
    assert rest.startswith(" ") and len(rest) > 1  # a continuation of the prefill, deterministic
    again = await sdk.anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=200, messages=messages)
    assert again.content[0].text == rest  # type: ignore[union-attr]


async def test_openai_answers_afresh_after_an_assistant_message(sdk: SDK) -> None:
    full = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    whole = full.choices[0].message.content or ""
    prefill = cut_at_word(whole, 3)
    r = await sdk.openai.chat.completions.create(
        model="gpt-4o-mini", messages=[*HI, {"role": "assistant", "content": prefill}]
    )
    answer = r.choices[0].message.content or ""
    assert answer and not whole.startswith(prefill + answer)  # a new answer, not the remainder
