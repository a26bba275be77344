"""The engine tests' FakeAdapter keeps the real adapter's limits: same error, same time spent.

router_fakes.FakeAdapter re-implements how HttpAdapter enforces an attempt's limits, so engine
tests can script attempts without bytes. Here each limit runs both ways on a FakeClock: the fake,
and the real HttpAdapter over the in-memory transport; the router must see the same failure kind
after the same virtual time.
"""

from __future__ import annotations

from typing import Any

import pytest
from memory_upstream import openai_json, openai_sse
from router_fakes import FakeAdapter, Step, config

from router import Router
from router import errors as E
from router.audit import AuditLog
from router.clock import FakeClock
from router.transport import MemoryTransport, Pause, Reply
from router.types import ChatRequest, Message

ASK = ChatRequest(model="r", messages=[Message("user", "hi")])

# (what the fake is scripted to do, what the upstream does on the wire, streamed?, budget)
CASES: dict[str, tuple[Step, Reply, bool, str]] = {
    "read timeout": (Step(hang=True), Reply.fail("hang"), False, "60s"),
    "slow answer": (Step(latency=7.0), Reply(delay=7.0, chunks=openai_json().chunks), False, "60s"),
    "first token": (Step(latency=3.0), openai_sse("late", delay=3.0), True, "60s"),
    "budget first": (Step(latency=3.0), openai_sse("late", delay=3.0), True, "1500ms"),
    "stall": (
        Step(latency=0.0, stall_after=1, text="ab", chunks=2),
        openai_sse("a", Pause(30.0), "b"),
        True,
        "60s",
    ),
    "on time": (Step(latency=0.5, chunks=1), openai_sse("ok", delay=0.5), True, "60s"),
}


async def run(adapter_of: Any, streamed: bool, total: str) -> tuple[list[tuple[str, str | None]], float]:
    clock = FakeClock()
    log = AuditLog()
    cfg = config(("a",), retries=0, total=total)
    router = Router(cfg, clock=clock, listeners=[log], **adapter_of(clock))
    try:
        if streamed:
            async for _ in router.stream(ASK):
                pass
        else:
            await router.complete(ASK)
    except E.RouterError:  # the audit record says what happened, for both
        pass
    rec = log.last()
    assert rec is not None
    return [(a.outcome, a.error_kind) for a in rec.attempts], clock.now()


@pytest.mark.parametrize("case", sorted(CASES))
async def test_the_fake_and_the_real_adapter_agree(case: str) -> None:
    step, reply, streamed, total = CASES[case]

    def fake(clock: FakeClock) -> dict[str, Any]:
        adapter = FakeAdapter(clock)
        adapter.script("a", step)
        return {"adapters": {"p": adapter}}

    def real(clock: FakeClock) -> dict[str, Any]:
        return {"transport": MemoryTransport(clock=clock).add("/chat/completions", reply)}

    faked, faked_at = await run(fake, streamed, total)
    wired, wired_at = await run(real, streamed, total)
    assert faked == wired
    assert faked_at == pytest.approx(wired_at)
