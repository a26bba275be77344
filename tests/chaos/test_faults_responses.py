"""The chaos catalogue applies to OpenAI's Responses API as to chat: status errors, stream cuts
and stalls, completion patches, and scenario limits, seen through the official SDK."""

from __future__ import annotations

import openai
import pytest
from chaos_helpers import MockFactory, openai_client, rule

from chaos import Limit
from mockproviders.clock import FakeClock

MODEL = "gpt-4o-mini"
ONLY_RESPONSES = {"endpoint": ["responses"]}


async def test_status_faults_answer_in_the_error_shape(chaos_mock: MockFactory) -> None:
    rules = (
        rule("429", "rate_limit", match=ONLY_RESPONSES, when={"first": 1}),
        rule("503", "server_error", params={"status": 503}, match=ONLY_RESPONSES, when={"first": 2}),
    )
    async with chaos_mock(*rules) as server:
        client = openai_client(server)
        with pytest.raises(openai.RateLimitError) as limited:
            await client.responses.create(model=MODEL, input="Hello")
        assert limited.value.code == "rate_limit_exceeded"
        with pytest.raises(openai.InternalServerError):
            await client.responses.create(model=MODEL, input="Hello")
        ok = await client.responses.create(model=MODEL, input="Hello")
        assert ok.status == "completed"
        chat = await client.chat.completions.create(model=MODEL, messages=[{"role": "user", "content": "Hi"}])
        assert chat.choices[0].message.content  # the rules target the Responses endpoint only


async def test_a_cut_stream_never_completes(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("cut", "cut", params={"after_tokens": 3})) as server:
        stream = await openai_client(server).responses.create(model=MODEL, input="Hello", stream=True)
        kinds: list[str] = []
        with pytest.raises(openai.APIConnectionError):
            async for event in stream:
                kinds.append(event.type)
        assert kinds.count("response.output_text.delta") == 3
        assert "response.completed" not in kinds


async def test_a_stall_then_resume_completes_late(chaos_mock: MockFactory) -> None:
    clock = FakeClock()
    params = {"after_tokens": 2, "duration": "30s", "then": "resume"}
    async with chaos_mock(rule("stall", "stall", params=params), clock=clock) as server:
        stream = await openai_client(server).responses.create(model=MODEL, input="Hello", stream=True)
        kinds = [event.type async for event in stream]
        assert kinds[-1] == "response.completed"
        assert clock.sleeps == [30.0]


@pytest.mark.parametrize(
    ("reason", "detail"), [("length", "max_output_tokens"), ("content_filter", "content_filter")]
)
async def test_finish_reason_fault_makes_an_incomplete_response(
    chaos_mock: MockFactory, reason: str, detail: str
) -> None:
    async with chaos_mock(rule("short", "finish_reason", params={"reason": reason})) as server:
        r = await openai_client(server).responses.create(model=MODEL, input="Hello")
        assert r.status == "incomplete"
        assert r.incomplete_details is not None and r.incomplete_details.reason == detail


async def test_scenario_limits_govern_responses_with_their_headers(chaos_mock: MockFactory) -> None:
    limit = Limit.model_validate({"rpm": 3, "match": ONLY_RESPONSES})
    async with chaos_mock(limits=[limit]) as server:
        client = openai_client(server)
        seen = []
        for _ in range(3):
            raw = await client.responses.with_raw_response.create(model=MODEL, input="Hello")
            seen.append(raw.headers["x-ratelimit-remaining-requests"])
            assert raw.headers["x-ratelimit-limit-requests"] == "3"
        assert seen == ["2", "1", "0"]
        with pytest.raises(openai.RateLimitError):
            await client.responses.create(model=MODEL, input="Hello")
