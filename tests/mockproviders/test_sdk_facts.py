"""What the installed SDKs really send and how they retry, as the README states it: checked
here so an SDK upgrade that changes it fails a test rather than leaves the docs wrong."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import anthropic
import openai
import pytest
from mock_sdk_client import SDK

from chaos import ChaosEngine, Rule
from chaos.mock import attach_to_core
from mockproviders.clock import FakeClock
from mockproviders.types import MockRequest, MockResponse

HI: list[Any] = [{"role": "user", "content": "Hello"}]


def capture(sdk: SDK) -> list[MockRequest]:
    seen: list[MockRequest] = []

    async def interceptor(
        req: MockRequest, call_next: Callable[[MockRequest], Awaitable[MockResponse]]
    ) -> MockResponse:
        seen.append(req)
        return await call_next(req)

    sdk.core.add_interceptor(interceptor)
    return seen


@pytest.mark.parametrize("how", ["api_key", "auth_token"])
async def test_anthropic_sends_a_bearer_token_not_x_api_key(sdk: SDK, how: str) -> None:
    seen = capture(sdk)
    client = anthropic.AsyncAnthropic(
        base_url=sdk.base_urls["anthropic"], http_client=sdk.http, max_retries=0, **{how: "sk-ant-secret"}
    )
    await client.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=HI)
    headers = seen[-1].headers
    assert headers.get("authorization") == "Bearer sk-ant-secret"
    assert headers.get("x-api-key") is None
    assert headers.get("anthropic-version") == anthropic._constants.ANTHROPIC_API_VERSION
    with pytest.raises(ValueError, match="at most one"):
        anthropic.AsyncAnthropic(base_url=sdk.base_urls["anthropic"], api_key="key", auth_token="token")
    own = anthropic.AsyncAnthropic(
        base_url=sdk.base_urls["anthropic"],
        http_client=sdk.http,
        api_key="key",
        default_headers={"x-api-key": "key"},
    )
    await own.messages.create(model="claude-sonnet-4-5", max_tokens=5, messages=HI)
    assert seen[-1].headers.get("x-api-key") == "key"


@pytest.mark.parametrize(
    ("params", "attempts"),
    [
        ({"retry_after_ms": 1}, 2),  # a short wait: waited, then retried
        ({"retry_after": 121}, 1),  # above 120 s: no retry at all
        ({"retry_after": 121, "should_retry": True}, 1),  # not even when the server says to
    ],
)
async def test_openai_does_not_retry_a_retry_after_above_120_s(
    sdk: SDK, mock_clock: FakeClock, params: dict[str, Any], attempts: int
) -> None:
    rule = Rule.model_validate({"name": "429", "fault": "rate_limit", "params": params, "when": {"first": 1}})
    attach_to_core(sdk.core, ChaosEngine([rule], clock=mock_clock))
    client = openai.AsyncOpenAI(
        base_url=sdk.base_urls["openai"], api_key="sk", http_client=sdk.http, max_retries=2
    )
    if attempts == 1:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    else:
        await client.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert [e.status for e in sdk.core.journal.entries] == [429, 200][:attempts]
    assert openai._constants.MAX_RETRY_AFTER_DELAY == 120
