"""Faults before any byte, seen through the official SDKs: reset, refuse, hang, latency."""

from __future__ import annotations

import asyncio

import openai
import pytest
from chaos_helpers import CHAT, MockFactory, openai_client, rule

from mockproviders.clock import FakeClock


@pytest.fixture
def quick_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """The SDK's own back-off (0.5 s, doubling) shrunk to a millisecond: nothing waits for real."""
    import openai._base_client as base

    monkeypatch.setattr(base, "INITIAL_RETRY_DELAY", 0.001)


@pytest.mark.parametrize("fault", ["reset", "refuse"])
async def test_reset_and_refuse_are_connection_errors_the_sdk_retries(
    chaos_mock: MockFactory, fault: str, quick_backoff: None
) -> None:
    async with chaos_mock(rule("down", fault, when={"first": 3})) as server:
        with pytest.raises(openai.APIConnectionError):
            await openai_client(server, max_retries=1).chat.completions.create(
                model="gpt-4o-mini", messages=CHAT
            )
        assert [(e["fault"], e["aborted"]) for e in server.engine.journal] == [(fault, "reset")] * 2
        # The SDK retries connection errors: the third attempt fails, the fourth gets through.
        answer = await openai_client(server, max_retries=1).chat.completions.create(
            model="gpt-4o-mini", messages=CHAT
        )
        assert answer.choices[0].message.content
        assert [e["fault"] for e in server.engine.journal] == [fault, fault, fault, None]
        assert server.engine.counters() == {"down": {"matched": 4, "injected": 3}}


async def test_hang_holds_until_the_client_times_out(chaos_mock: MockFactory) -> None:
    async with chaos_mock(rule("hang", "hang", when={"first": 1})) as server:
        client = openai_client(server, timeout=0.2)
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        # The next request (a new connection or a kept-alive one) is answered normally.
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert answer.choices[0].message.content
        first = server.engine.journal[0]
        assert (first["fault"], first["status"]) == ("hang", None)
        # The held request notices the client left at its next check of the socket.
        for _ in range(200):
            if first["aborted"]:
                break
            await asyncio.sleep(0.01)
        assert first["aborted"] == "close"


async def test_latency_adds_fixed_plus_seeded_jitter_before_headers(chaos_mock: MockFactory) -> None:
    delays = []
    for _ in range(2):  # the same seed gives the same jitter, run after run
        clock = FakeClock()
        async with chaos_mock(
            rule("slow", "latency", params={"delay": "2s", "jitter": "1s"}), clock=clock, seed=11
        ) as server:
            client = openai_client(server)
            for _ in range(3):
                answer = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
                assert answer.choices[0].message.content
            delays.append(list(clock.sleeps))
    assert delays[0] == delays[1]
    assert len(delays[0]) == 3 and all(2 <= d < 3 for d in delays[0])
    assert len(set(delays[0])) == 3  # jitter differs per request
