"""Issue 15's rows that involve the chaos layer, with the official SDKs through every front end
(socket, interception of the real hosts, MockTransport): scenario ``limits:`` put their own
rate-limit headers on every answer they govern (successful ones included), and faults from the
catalogue apply to the Responses API as to chat."""

from __future__ import annotations

from typing import Any

import anthropic
import openai
import pytest
from mock_sdk_client import SDK

from chaos import ChaosEngine, Limit, Rule
from chaos.mock import attach_to_core
from mockproviders.clock import FakeClock

HI: list[Any] = [{"role": "user", "content": "Hello there"}]


def chaos(
    sdk: SDK, clock: FakeClock, *rules: dict[str, Any], limits: tuple[dict[str, Any], ...] = ()
) -> ChaosEngine:
    engine = ChaosEngine(
        [Rule.model_validate(r) for r in rules],
        limits=[Limit.model_validate(limit) for limit in limits],
        clock=clock,
    )
    return attach_to_core(sdk.core, engine)


async def test_limits_headers_on_successful_openai_chat_and_responses(
    sdk: SDK, mock_clock: FakeClock
) -> None:
    chaos(sdk, mock_clock, limits=({"rpm": 3, "match": {"provider": "openai"}},))
    seen = []
    for _ in range(2):
        raw = await sdk.openai.chat.completions.with_raw_response.create(model="gpt-4o-mini", messages=HI)
        seen.append(
            (raw.headers["x-ratelimit-limit-requests"], raw.headers["x-ratelimit-remaining-requests"])
        )
    raw = await sdk.openai.responses.with_raw_response.create(model="gpt-4o-mini", input="Hello")
    assert raw.http_response.status_code == 200
    seen.append((raw.headers["x-ratelimit-limit-requests"], raw.headers["x-ratelimit-remaining-requests"]))
    assert seen == [("3", "2"), ("3", "1"), ("3", "0")]
    with pytest.raises(openai.RateLimitError) as info:
        await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert info.value.response.headers["x-ratelimit-limit-requests"] == "3"


async def test_limits_headers_on_successful_anthropic_and_mistral_answers(
    sdk: SDK, mock_clock: FakeClock
) -> None:
    chaos(sdk, mock_clock, limits=({"rpm": 2},))
    raw = await sdk.anthropic.messages.with_raw_response.create(
        model="claude-sonnet-4-5", max_tokens=10, messages=HI
    )
    assert raw.headers["anthropic-ratelimit-requests-limit"] == "2"
    assert raw.headers["anthropic-ratelimit-requests-remaining"] == "1"
    r = await sdk.http.post(
        sdk.base_urls["mistral"] + "/v1/chat/completions",
        json={"model": "mistral-small-latest", "messages": HI},
        headers={"authorization": "Bearer m-key"},
    )
    assert r.status_code == 200
    assert (r.headers["x-ratelimit-limit-req-minute"], r.headers["x-ratelimit-remaining-req-minute"]) == (
        "2",
        "1",
    )
    await sdk.anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)
    with pytest.raises(anthropic.RateLimitError):
        await sdk.anthropic.messages.create(model="claude-sonnet-4-5", max_tokens=10, messages=HI)


async def test_a_429_and_a_5xx_on_the_responses_api_then_an_answer(sdk: SDK, mock_clock: FakeClock) -> None:
    responses_only = {"endpoint": ["responses"]}
    chaos(
        sdk,
        mock_clock,
        {"name": "429", "fault": "rate_limit", "match": responses_only, "when": {"first": 1}},
        {
            "name": "503",
            "fault": "server_error",
            "params": {"status": 503},
            "match": responses_only,
            "when": {"first": 2},
        },
    )
    with pytest.raises(openai.RateLimitError):
        await sdk.openai.responses.create(model="gpt-4o-mini", input="Hello")
    with pytest.raises(openai.InternalServerError) as info:
        await sdk.openai.responses.create(model="gpt-4o-mini", input="Hello")
    assert info.value.status_code == 503
    answer = await sdk.openai.responses.create(model="gpt-4o-mini", input="Hello")
    assert answer.status == "completed" and answer.output_text


async def test_a_cut_responses_stream_never_completes(sdk: SDK, mock_clock: FakeClock) -> None:
    chaos(sdk, mock_clock, {"name": "cut", "fault": "cut", "params": {"after_tokens": 2}})
    stream = await sdk.openai.responses.create(model="gpt-4o-mini", input="Hello", stream=True)
    events: list[str] = []
    with pytest.raises(openai.APIConnectionError):
        async for event in stream:
            events.append(event.type)
    assert events.count("response.output_text.delta") == 2 and "response.completed" not in events
