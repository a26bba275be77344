"""Real rate limits: truthful retry-after, headers that agree, per API key and model."""

from __future__ import annotations

import itertools
import math
from typing import Any

import httpx2
import openai
from chaos_helpers import CHAT, MockFactory, ok, openai_client, request
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chaos import ChaosEngine, Limit
from chaos.limits import estimate_tokens
from mockproviders.clock import FakeClock, SystemClock


def limited(clock: FakeClock, **limit: Any) -> ChaosEngine:
    return ChaosEngine(limits=[Limit.model_validate(limit)], clock=clock)


async def test_a_burst_drains_the_bucket_and_retry_after_tells_when_it_refills() -> None:
    clock = FakeClock()
    engine = limited(clock, rpm=3, window=60)
    statuses = [(await engine(request(), ok)).status for _ in range(3)]
    assert statuses == [200, 200, 200]
    refused = await engine(request(), ok)
    assert refused.status == 429
    h = refused.headers
    assert (h["retry-after"], h["retry-after-ms"]) == ("20", "20000")  # one request per 20 s
    assert h["x-ratelimit-remaining-requests"] == "0" and h["x-ratelimit-limit-requests"] == "3"
    assert h["x-ratelimit-reset-requests"] == "1m0s"  # all three back in a minute
    assert engine.journal[-1]["fault"] == "real_rate_limit"
    clock.advance(19.9)
    assert (await engine(request(), ok)).status == 429  # a client that does not wait is refused again
    clock.advance(0.1)
    answer = await engine(request(), ok)
    assert answer.status == 200 and answer.headers["x-ratelimit-remaining-requests"] == "0"


async def test_limits_are_per_api_key_and_model_and_follow_match() -> None:
    clock = FakeClock()
    engine = limited(clock, rpm=1, match={"provider": "openai"})
    assert (await engine(request(model="a"), ok)).status == 200
    assert (await engine(request(model="b"), ok)).status == 200  # another model, another bucket
    other_key = request(model="a")
    other_key.api_key = "sk-2"
    assert (await engine(other_key, ok)).status == 200
    assert (await engine(request(model="a"), ok)).status == 429
    assert (await engine(request("anthropic", model="a"), ok)).status == 200  # not matched


async def test_token_limits_count_prompt_and_max_tokens() -> None:
    clock = FakeClock()
    engine = limited(clock, tpm=100, window=10)
    big = request()
    big.json = {"messages": [{"role": "user", "content": "one two three"}], "max_tokens": 60}
    assert estimate_tokens(big) == 3 + 3 + 3 + 60
    assert (await engine(big, ok)).status == 200
    refused = await engine(big, ok)
    assert refused.status == 429 and refused.headers["x-ratelimit-remaining-tokens"] == "0"
    # 31 tokens left, 69 needed: 38 more at 10 per second = 3.8 s.
    assert refused.headers["retry-after-ms"] == "3800" and refused.headers["retry-after"] == "4"
    huge = request()
    huge.json = {"messages": [], "max_tokens": 500}
    never = await engine(huge, ok)
    assert (
        never.status == 429
        and never.headers["x-should-retry"] == "false"
        and "retry-after" not in never.headers
    )


async def test_anthropic_headers_and_body() -> None:
    engine = limited(FakeClock(), rpm=1)
    await engine(request("anthropic"), ok)
    refused = await engine(request("anthropic"), ok)
    assert refused.status == 429 and b'"rate_limit_error"' in (refused.body or b"")
    assert refused.headers["anthropic-ratelimit-requests-remaining"] == "0"
    assert refused.headers["retry-after"] == "60" and "retry-after-ms" not in refused.headers


@settings(max_examples=25, deadline=None)
@given(
    rpm=st.integers(1, 5),
    window=st.floats(1, 120),
    gaps=st.lists(st.floats(0, 30), min_size=1, max_size=30),
)
@example(rpm=1, window=1.02, gaps=[0.0, 0.0, 0.0])  # epoch float rounding once made a 2nd 429
def test_a_client_that_honours_retry_after_never_gets_two_429s_in_a_row(
    rpm: int, window: float, gaps: list[float]
) -> None:
    import asyncio

    async def run() -> None:
        clock = FakeClock()
        engine = limited(clock, rpm=rpm, window=window)
        previous_refused = False
        for gap in gaps:
            clock.advance(gap)
            answer = await engine(request(), ok)
            refused = answer.status == 429
            assert not (refused and previous_refused)
            if refused:
                wait = int(answer.headers["retry-after-ms"]) / 1000
                assert math.ceil(wait) == int(answer.headers["retry-after"])
                clock.advance(wait)  # the honest client waits exactly what it was told
            previous_refused = refused

    asyncio.run(run())


async def test_openai_sdk_honours_the_real_limit_and_a_raw_client_does_not(chaos_mock: MockFactory) -> None:
    limit = Limit(rpm=2, window=0.2)  # one request back every 0.1 s
    async with chaos_mock(clock=SystemClock(), limits=[limit]) as server:
        client = openai_client(server, max_retries=3)
        for _ in range(4):
            await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        statuses = [e["status"] for e in server.engine.journal]
        assert statuses.count(200) == 4
        assert all(not (a == b == 429) for a, b in itertools.pairwise(statuses))
        server.engine.reset()
        async with httpx2.AsyncClient() as raw:
            url = server.base_urls["openai"] + "/chat/completions"
            body = {"model": "gpt-4o-mini", "messages": CHAT}
            codes = [
                (await raw.post(url, json=body, headers={"authorization": "Bearer sk-test"})).status_code
                for _ in range(4)
            ]
        assert codes[:2] == [200, 200] and codes[2:] == [429, 429]  # no waiting: 429 after 429
        with_sdk = openai_client(server, max_retries=0)
        try:
            await with_sdk.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        except openai.RateLimitError as exc:
            assert int(exc.response.headers["retry-after-ms"]) <= 100
