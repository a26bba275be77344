"""Status errors in each provider's own body and headers, seen through the official SDKs."""

from __future__ import annotations

import itertools

import anthropic
import httpx2
import mistralai.client as mistral_client
import openai
import pytest
from chaos_helpers import CHAT, MockFactory, anthropic_client, openai_client, rule

from mockproviders.clock import SystemClock

CLAUDE = "claude-haiku-4-5"


async def test_openai_sdk_waits_the_injected_retry_after_ms(chaos_mock: MockFactory) -> None:
    # A real clock here: the SDK really waits, and the journal's times must show it did.
    async with chaos_mock(
        rule("429", "rate_limit", params={"retry_after_ms": 60}, when={"first": 2}), clock=SystemClock()
    ) as server:
        client = openai_client(server, max_retries=2)
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert answer.choices[0].message.content
        times = [e["time"] for e in server.engine.journal]
        assert [e["status"] for e in server.engine.journal] == [429, 429, 200]
        assert all(b - a >= 0.06 for a, b in itertools.pairwise(times))
        retries = [e.retry_count for e in server.core.journal]
        assert retries == [0, 1, 2]


@pytest.mark.parametrize(("value", "retried"), [("121", False), ("3", True)])
async def test_openai_sdk_refuses_a_retry_after_beyond_120_seconds(
    chaos_mock: MockFactory, value: str, retried: bool
) -> None:
    # Above OpenAI's cap (120 s) the SDK gives up at once; below it, it would wait (here, with
    # retry-after-ms overriding the seconds so the test does not wait 3 s).
    params = {"retry_after": value} if not retried else {"retry_after": value, "retry_after_ms": 1}
    async with chaos_mock(rule("429", "rate_limit", params=params, when={"first": 1})) as server:
        client = openai_client(server, max_retries=1)
        if retried:
            await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        else:
            with pytest.raises(openai.RateLimitError) as info:
                await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
            assert info.value.response.headers["retry-after"] == value
        assert len(server.engine.journal) == (2 if retried else 1)


async def test_a_429_without_retry_after_sends_none(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("429", "rate_limit")) as server:
        with pytest.raises(openai.RateLimitError) as info:
            await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        headers = info.value.response.headers
        assert "retry-after" not in headers and "retry-after-ms" not in headers
        assert info.value.code == "rate_limit_exceeded"


async def test_x_should_retry_false_stops_the_sdk_retrying_a_503(chaos_mock: MockFactory) -> None:
    async with chaos_mock(
        rule("503", "server_error", params={"status": 503, "should_retry": False})
    ) as server:
        with pytest.raises(openai.InternalServerError) as info:
            await openai_client(server, max_retries=3).chat.completions.create(
                model="gpt-4o-mini", messages=CHAT
            )
        assert info.value.status_code == 503
        assert len(server.engine.journal) == 1


@pytest.mark.parametrize(
    ("fault", "params", "exc", "status", "code"),
    [
        ("insufficient_quota", {}, openai.RateLimitError, 429, "insufficient_quota"),
        ("server_error", {"status": 500}, openai.InternalServerError, 500, None),
        ("server_error", {"status": 502}, openai.InternalServerError, 502, None),
        ("server_error", {"status": 504}, openai.InternalServerError, 504, None),
        ("overloaded", {}, openai.InternalServerError, 503, None),
        ("context_length", {}, openai.BadRequestError, 400, "context_length_exceeded"),
        ("content_policy", {}, openai.BadRequestError, 400, "content_policy_violation"),
        ("unauthorized", {}, openai.AuthenticationError, 401, "invalid_api_key"),
        ("not_found", {}, openai.NotFoundError, 404, "model_not_found"),
        ("http_error", {"status": 422}, openai.UnprocessableEntityError, 422, None),
    ],
)
async def test_openai_status_faults(
    chaos_mock: MockFactory,
    fault: str,
    params: dict[str, object],
    exc: type[openai.APIStatusError],
    status: int,
    code: str | None,
) -> None:
    async with chaos_mock(rule("f", fault, params=params)) as server:
        with pytest.raises(exc) as info:
            await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert info.value.status_code == status
        assert info.value.code == code
        assert info.value.response.headers["x-request-id"].startswith("req_")
        assert server.core.journal.entries[0].annotations == {"fault": "f", "fault_kind": fault}


@pytest.mark.parametrize(
    ("fault", "exc", "status", "error_type"),
    [
        ("overloaded", anthropic.OverloadedError, 529, "overloaded_error"),
        ("rate_limit", anthropic.RateLimitError, 429, "rate_limit_error"),
        ("unauthorized", anthropic.AuthenticationError, 401, "authentication_error"),
        ("not_found", anthropic.NotFoundError, 404, "not_found_error"),
        ("context_length", anthropic.BadRequestError, 400, "invalid_request_error"),
        ("server_error", anthropic.InternalServerError, 500, "api_error"),
    ],
)
async def test_anthropic_status_faults(
    chaos_mock: MockFactory, fault: str, exc: type[anthropic.APIStatusError], status: int, error_type: str
) -> None:
    async with chaos_mock(rule("f", fault, match={"provider": "anthropic"})) as server:
        with pytest.raises(exc) as info:
            await anthropic_client(server).messages.create(model=CLAUDE, max_tokens=20, messages=CHAT)
        assert info.value.status_code == status
        body = info.value.body
        assert isinstance(body, dict) and body["type"] == "error" and body["error"]["type"] == error_type
        assert info.value.response.headers["request-id"] == body["request_id"]


async def test_mistral_sdk_sees_its_own_error_shape(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("f", "server_error", params={"status": 503})) as server:
        async with mistral_client.Mistral(api_key="m-test", server_url=server.base_urls["mistral"]) as client:
            with pytest.raises(mistral_client.errors.SDKError) as info:
                await client.chat.complete_async(model="mistral-small-latest", messages=CHAT)
        assert info.value.status_code == 503
        assert '"object":"error"' in info.value.body


async def test_retry_after_values_are_written_as_given(chaos_mock: MockFactory) -> None:
    async with chaos_mock(
        rule("f", "rate_limit", params={"retry_after": 150, "retry_after_ms": 1500.5})
    ) as server:
        async with httpx2.AsyncClient() as raw:
            r = await raw.post(
                server.base_urls["anthropic"] + "/v1/messages",
                headers={"x-api-key": "k", "anthropic-version": "2023-06-01"},
                json={"model": CLAUDE, "max_tokens": 5, "messages": CHAT},
            )
        assert r.status_code == 429
        assert (r.headers["retry-after"], r.headers["retry-after-ms"]) == ("150", "1500.5")
