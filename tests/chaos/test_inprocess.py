"""The same engine in the mock's in-process front end (httpx2 transport, no socket)."""

from __future__ import annotations

import httpx2
import openai
import pytest
from chaos_helpers import CHAT, rule

from chaos import ChaosEngine, attach_to_core
from mockproviders.clock import FakeClock
from mockproviders.core import MockCore
from mockproviders.inprocess import MockTransport


async def test_faults_work_without_a_socket() -> None:
    core = MockCore(clock=FakeClock())
    engine = attach_to_core(core, ChaosEngine([rule("r", "reset", when={"first": 1})], clock=core.clock))
    attach_to_core(core, engine)  # idempotent
    assert core.interceptors == (engine,)
    http = httpx2.AsyncClient(transport=MockTransport(core))
    async with openai.AsyncOpenAI(api_key="sk-test", http_client=http, max_retries=0) as client:
        with pytest.raises(openai.APIConnectionError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        answer = await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert answer.choices[0].message.content
    assert [e.annotations.get("fault") for e in core.journal] == ["r", None]
