"""The outcome calls: each request hands back its own audit record, and the listeners still hear it."""

from __future__ import annotations

import asyncio

import pytest
from router_fakes import FakeAdapter, Step, config, err

from router import Router
from router import errors as E
from router.audit import AuditLog
from router.clock import FakeClock
from router.types import ChatRequest, EmbeddingRequest, Message, StreamEnd, StreamStart


def req(model: str = "r", **kw: object) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", "hi")], **kw)  # type: ignore[arg-type]


def rig(**kw: object) -> tuple[Router, FakeAdapter, AuditLog]:
    clock = FakeClock()
    fake = FakeAdapter(clock)
    log = AuditLog()
    router = Router(config(**kw), clock=clock, adapters={"p": fake}, listeners=[log], rng_seed=1)  # type: ignore[arg-type]
    return router, fake, log


async def test_a_completion_hands_back_its_own_record_the_listeners_hear_too() -> None:
    router, fake, log = rig()
    fake.script(
        "a", Step(error=err(E.ServerError)), Step(error=err(E.ServerError)), Step(error=err(E.ServerError))
    )
    out = await router.complete_outcome(req())
    assert out.error is None and out.response is not None and out.audit is not None
    assert out.audit is log.last()  # the very record the listeners were given
    assert out.audit.request_id == out.response.request_id and out.audit.winner == "b"
    assert [a.outcome for a in out.audit.attempts] == ["error", "error", "error", "success"]
    assert any("falling back to b" in d for d in out.audit.decisions)


async def test_concurrent_requests_each_get_their_own_record() -> None:
    router, fake, _ = rig()
    fake.script("a", *[Step(latency=0.01 * (i + 1)) for i in range(5)])
    outs = await asyncio.gather(*(router.complete_outcome(req()) for _ in range(5)))
    ids = [o.audit.request_id for o in outs if o.audit is not None]
    assert len(set(ids)) == 5
    assert all(
        o.response is not None and o.audit is not None and o.audit.request_id == o.response.request_id
        for o in outs
    )


async def test_a_failure_is_returned_with_its_record_and_raised_by_the_plain_call() -> None:
    router, fake, log = rig(chain=("a",), retries=0)
    fake.script("a", Step(error=err(E.BadRequest)), Step(error=err(E.BadRequest)))
    out = await router.complete_outcome(req())
    assert isinstance(out.error, E.BadRequest) and out.response is None
    assert out.audit is not None and out.audit.outcome == "error" and out.audit.error_kind == "bad_request"
    with pytest.raises(E.BadRequest):
        out.result()
    with pytest.raises(E.BadRequest):
        await router.complete(req())
    assert log.last() is not out.audit and len(log.records()) == 2


async def test_a_request_refused_before_any_call_still_has_its_record() -> None:
    router, _, log = rig()
    out = await router.complete_outcome(req("nope"))
    assert isinstance(out.error, E.UnknownRoute)
    assert out.audit is not None and out.audit is log.last() and out.audit.attempts == []
    stream = router.stream_outcome(req("nope"))
    with pytest.raises(E.UnknownRoute):
        async for _ in stream.events:
            pass
    assert stream.audit is not None and stream.audit.error_kind == "unknown_route"


async def test_a_stream_has_its_record_from_the_first_event_complete_at_its_end() -> None:
    router, _, log = rig()
    stream = router.stream_outcome(req())
    assert stream.audit is None  # nothing has run yet
    events = [ev async for ev in stream.events]
    assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
    assert stream.audit is not None and stream.audit is log.last()
    assert stream.audit.outcome == "success" and stream.audit.request_id == events[0].request_id


async def test_an_embedding_hands_back_its_record() -> None:
    router, _, log = rig(models={"e": {"model": "text-embedding-3-small"}})
    out = await router.embed_outcome(EmbeddingRequest("e", ["one", "two"]))
    assert out.response is not None and out.audit is log.last()
    assert out.audit is not None and out.audit.request_id == out.response.request_id
