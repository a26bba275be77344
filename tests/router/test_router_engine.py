"""The engine on a fake adapter and a fake clock: every failure path, deterministically."""

from __future__ import annotations

import json

import pytest
from router_fakes import FakeAdapter, Step, config, err
from structlog.testing import capture_logs

from router import Router
from router import errors as E
from router.audit import AuditLog
from router.clock import FakeClock
from router.headers import RateLimitSnapshot
from router.hooks import BaseListener, RouterStats
from router.types import ChatRequest, EmbeddingRequest, Message, StreamEnd, StreamStart, TextDelta


def req(model: str = "r", **kw: object) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", "hi")], **kw)  # type: ignore[arg-type]


class Rig:
    def __init__(self, **kw: object) -> None:
        self.clock = FakeClock()
        self.fake = FakeAdapter(self.clock)
        self.log = AuditLog()
        self.stats = RouterStats()
        self.changes: list[tuple[str, str, str]] = []
        rig = self

        class Changes(BaseListener):
            def on_breaker_change(self, model: str, old: str, new: str) -> None:
                rig.changes.append((model, old, new))

        self.router = Router(
            config(**kw),  # type: ignore[arg-type]
            clock=self.clock,
            adapters={"p": self.fake},
            listeners=[self.log, self.stats, Changes()],
            rng_seed=1,
        )

    def last(self):  # type: ignore[no-untyped-def]
        rec = self.log.last()
        assert rec is not None
        return rec


async def test_healthy_complete_records_usage_and_cost() -> None:
    rig = Rig()
    resp = await rig.router.complete(req())
    assert resp.content == "hello world" and resp.model == "a" and resp.route == "r" and resp.attempts == 1
    assert resp.cost_usd is not None and resp.cost_usd > 0
    rec = rig.last()
    assert rec.outcome == "success" and rec.winner == "a" and rec.candidates == ["a", "b", "c"]
    assert [a.outcome for a in rec.attempts] == ["success"]
    assert (
        rec.usage.input_tokens == 10 and rec.cost_usd == resp.cost_usd and rec.request_id == resp.request_id
    )
    json.dumps(rig.router.snapshot())


async def test_server_errors_are_retried_with_backoff_then_fall_back() -> None:
    rig = Rig(retries=2)
    rig.fake.script("a", *[Step(error=err(E.ServerError, status=503))] * 3)
    resp = await rig.router.complete(req())
    assert resp.model == "b" and resp.attempts == 4
    rec = rig.last()
    assert [(a.model, a.outcome) for a in rec.attempts] == [("a", "error")] * 3 + [("b", "success")]
    assert [a.wait_source for a in rec.attempts] == ["none", "backoff", "backoff", "none"]
    assert 0.375 <= rec.attempts[1].wait_s <= 0.5 and 0.75 <= rec.attempts[2].wait_s <= 1.0
    assert rig.stats.fallbacks["r"] == 1


async def test_retry_after_is_honoured_and_a_long_one_falls_back() -> None:
    rig = Rig()
    rig.fake.script("a", Step(error=err(E.RateLimited, status=429, retry_after=3.0)))
    t0 = rig.clock.now()
    resp = await rig.router.complete(req())
    assert resp.model == "a"
    rec = rig.last()
    assert rec.attempts[1].wait_source == "retry-after" and rec.attempts[1].wait_s == 3.0
    assert rig.clock.now() - t0 >= 3.0
    # above the 60 s cap: no waiting, fall back; one 429 does not hold the deployment for others
    rig.fake.script("a", Step(error=err(E.RateLimited, status=429, retry_after=120.0)))
    assert (await rig.router.complete(req())).model == "b"
    assert (await rig.router.complete(req())).model == "a"
    # 429s that keep coming (3 in a row, across requests) hold it, for at most retry_after_cap
    rig.fake.script("a", *[Step(error=err(E.RateLimited, status=429, retry_after=1e9))] * 3)
    for _ in range(3):
        assert (await rig.router.complete(req())).model == "b"
    resp = await rig.router.complete(req())
    assert resp.model == "b"
    assert rig.last().attempts[0].outcome == "skipped" and rig.last().attempts[0].wait_source == "rate-limit"
    assert rig.router.deployment("a").limiter.blocked_for() == pytest.approx(60.0, abs=0.1)  # capped
    rig.clock.advance(60.0)
    assert (await rig.router.complete(req())).model == "a"


@pytest.mark.parametrize("cls", [E.AuthError, E.NotFound, E.QuotaExceeded])
async def test_deployment_faults_fall_back_without_retry(cls: type[E.RouterError]) -> None:
    rig = Rig()
    rig.fake.script("a", Step(error=err(cls)))
    resp = await rig.router.complete(req())
    assert resp.model == "b" and rig.fake.calls == ["a", "b"]


async def test_bad_request_is_final_and_not_retried() -> None:
    rig = Rig()
    rig.fake.script("a", Step(error=err(E.BadRequest, status=400)))
    with pytest.raises(E.BadRequest):
        await rig.router.complete(req())
    assert (
        rig.fake.calls == ["a"] and rig.last().outcome == "error" and rig.last().error_kind == "bad_request"
    )


async def test_should_retry_false_is_not_retried() -> None:
    rig = Rig()
    rig.fake.script("a", Step(error=err(E.ServerError, status=503, should_retry=False)))
    assert (await rig.router.complete(req())).model == "b"
    assert rig.fake.calls == ["a", "b"]


async def test_context_length_switches_to_the_larger_chain() -> None:
    rig = Rig(chain=("a", "b"), route={"on_error": {"context_length": ["big"]}}, models={"big": {}})
    rig.fake.script("a", Step(error=err(E.ContextLengthExceeded, status=400)))
    resp = await rig.router.complete(req())
    assert resp.model == "big" and rig.fake.calls == ["a", "big"]
    assert any("switching to ['big']" in d for d in rig.last().decisions)


async def test_content_policy_reason_reaches_the_caller() -> None:
    rig = Rig()
    rig.fake.script("a", Step(error=err(E.ContentPolicy, status=400)))
    with pytest.raises(E.ContentPolicy, match="scripted ContentPolicy"):
        await rig.router.complete(req())
    assert rig.fake.calls == ["a"]
    rig2 = Rig(chain=("a", "b"), route={"on_error": {"content_policy": ["c"]}}, models={"c": {}})
    rig2.fake.script("a", Step(error=err(E.ContentPolicy, status=400)))
    assert (await rig2.router.complete(req())).model == "c"


async def test_a_silent_provider_is_failed_over_not_retried() -> None:
    rig = Rig()
    rig.fake.script("a", Step(hang=True))
    t0 = rig.clock.now()
    resp = await rig.router.complete(req())
    assert resp.model == "b" and rig.fake.calls == ["a", "b"]
    assert rig.last().attempts[0].error_kind == "timeout"
    assert rig.clock.now() - t0 == pytest.approx(5.01)  # one read timeout, then b


async def test_breaker_opens_skips_and_recovers_with_one_probe() -> None:
    rig = Rig(retries=0)
    rig.fake.script("a", *[Step(error=err(E.ServerError, status=500))] * 3)
    for _ in range(3):
        assert (await rig.router.complete(req())).model == "b"
    assert ("a", "closed", "open") in rig.changes
    calls = len(rig.fake.calls)
    assert (await rig.router.complete(req())).model == "b"
    assert rig.fake.calls[calls:] == ["b"]  # a dead provider costs nothing while open
    assert rig.last().attempts[0].outcome == "skipped"
    rig.clock.advance(10.0)
    assert (await rig.router.complete(req())).model == "a"  # the probe, and traffic is back
    assert rig.changes[-2:] == [("a", "open", "half_open"), ("a", "half_open", "closed")]


async def test_everything_failing_says_when_to_come_back() -> None:
    rig = Rig(chain=("a", "b"), retries=0, defaults={"rate_limit_wait": 0})  # 0: fail fast
    rig.fake.script("a", Step(error=err(E.Overloaded, status=529, retry_after=4.0)))
    rig.fake.script("b", Step(error=err(E.RateLimited, status=429, retry_after=90.0)))
    with pytest.raises(E.AllAttemptsFailed) as info:
        await rig.router.complete(req())
    assert info.value.retry_after == pytest.approx(4.0)
    assert [e.kind for e in info.value.errors] == [E.ErrorKind.OVERLOADED, E.ErrorKind.RATE_LIMIT]
    # one 529 with a retry-after does not eject a (it is one failure, under the thresholds), and
    # one 429 does not hold b: the next request is served
    assert rig.router.deployment("a").breaker.state == "closed"
    assert (await rig.router.complete(req())).model == "a"
    assert rig.fake.calls == ["a", "b", "a"]


def block(rig: Rig, name: str, seconds: float) -> None:
    """What a 429 with ``retry-after: seconds`` does to a deployment: its limiter holds everyone."""
    rig.router.deployment(name).limiter.observe(
        RateLimitSnapshot(remaining_requests=0, reset_requests_s=seconds)
    )


async def test_a_chain_closed_for_a_moment_waits_for_the_soonest_and_succeeds() -> None:
    rig = Rig()
    block(rig, "a", 3.0)
    block(rig, "b", 2.0)
    rig.router.deployment("c").breaker.trip(rig.clock.now() + 4.0)  # a 503's retry-after
    t0 = rig.clock.now()
    resp = await rig.router.complete(req())
    assert resp.model == "b" and rig.fake.calls == ["b"]
    # the wait (spread by up to a quarter of it, so waiters do not arrive as a herd), then b's answer
    assert 2.0 + 0.01 <= rig.clock.now() - t0 <= 2.5 + 0.01
    rec = rig.last()
    assert [(a.model, a.outcome, a.wait_source) for a in rec.attempts] == [
        ("a", "skipped", "rate-limit"),
        ("b", "skipped", "rate-limit"),
        ("c", "skipped", "retry-after"),
        ("b", "success", "rate-limit"),
    ]
    assert 2.0 <= rec.attempts[-1].wait_s <= 2.5
    assert any("waiting 2" in d and "s for b" in d for d in rec.decisions)


async def test_a_retry_after_trip_and_a_cooldown_are_waited_out_with_their_source() -> None:
    rig = Rig(chain=("a", "b"))
    rig.router.deployment("a").breaker.trip(rig.clock.now() + 3.0)
    rig.router.deployment("b").breaker.trip(rig.clock.now() + 1.0)
    assert (await rig.router.complete(req())).model == "b"
    last = rig.last().attempts[-1]
    assert last.wait_source == "retry-after" and 1.0 <= last.wait_s <= 1.25


async def test_a_chain_whose_every_deployment_is_ejected_is_tried_in_panic_mode() -> None:
    rig = Rig(chain=("a", "b"), retries=0, defaults={"breaker": {"failures": 1, "cooldown": "2s"}})
    fail = Step(error=err(E.ServerError, status=500))
    rig.fake.script("a", fail)
    rig.fake.script("b", fail)
    with pytest.raises(E.AllAttemptsFailed):
        await rig.router.complete(req())  # both ejected, a's probe due first (it failed first)
    t0 = rig.clock.now()
    assert (await rig.router.complete(req())).model == "a"  # not refused, and no wait
    rec = rig.last()
    assert [(a.model, a.outcome) for a in rec.attempts] == [
        ("a", "skipped"),
        ("b", "skipped"),
        ("a", "success"),
    ]
    assert any(d.startswith("panic:") and "trying a" in d for d in rec.decisions)
    assert rig.clock.now() - t0 == pytest.approx(0.01)
    assert rig.router.deployment("a").breaker.state == "closed"  # its success closed it
    # a fails again, b is still ejected: rather than fail, the request tries b anyway, last
    rig.fake.script("a", fail)
    assert (await rig.router.complete(req())).model == "b"
    rec = rig.last()
    assert [(a.model, a.outcome) for a in rec.attempts] == [
        ("a", "error"),
        ("b", "skipped"),
        ("b", "success"),
    ]
    assert any(d.startswith("panic:") and "trying b" in d for d in rec.decisions)
    assert rig.router.deployment("b").breaker.state == "closed"
    # panic walks only ejected deployments: one held by the provider is left alone
    rig.fake.script("a", fail)
    rig.router.deployment("b").limiter.observe(RateLimitSnapshot(remaining_requests=0, reset_requests_s=30))
    with pytest.raises(E.AllAttemptsFailed):
        await rig.router.complete(req())
    assert rig.fake.calls[-1] == "a"


async def test_panic_mode_never_overrides_a_providers_hold() -> None:
    rig = Rig(chain=("a", "b"), retries=0, defaults={"rate_limit_wait": 0})
    block(rig, "a", 30.0)  # 0 remaining until the reset: the provider says no
    rig.router.deployment("b").breaker.trip(rig.clock.now() + 20.0)  # a provider's retry-after
    with pytest.raises(E.Unavailable):
        await rig.router.complete(req())
    assert rig.fake.calls == []


async def test_requests_waiting_out_a_retry_after_all_get_through_after_the_probe() -> None:
    import asyncio

    rig = Rig(chain=("a",), retries=0)
    rig.fake.script("a", Step(latency=0.5))
    rig.router.deployment("a").breaker.trip(rig.clock.now() + 2.0)  # a provider asked to wait
    got = await asyncio.gather(*(rig.router.complete(req()) for _ in range(3)))
    assert [r.model for r in got] == ["a"] * 3  # one probe; the others waited for its verdict
    assert len(rig.fake.calls) == 3
    skipped = [a.message for r in rig.log.records()[-3:] for a in r.attempts if a.outcome == "skipped"]
    assert "circuit breaker half-open, probe in flight" in skipped
    for record in rig.log.records()[-3:]:  # re-checked every 50 ms while the probe is out...
        skips = [a.model for a in record.attempts if a.outcome == "skipped"]
        assert len(skips) == len(set(skips))  # ...but recorded once per deployment


async def test_requests_to_an_ejected_chain_are_served_in_panic_mode_not_refused() -> None:
    import asyncio

    rig = Rig(chain=("a",), retries=0, defaults={"breaker": {"failures": 1, "cooldown": "2s"}})
    rig.fake.script("a", Step(error=err(E.ServerError, status=500)), Step(latency=0.5))
    with pytest.raises(E.AllAttemptsFailed):
        await rig.router.complete(req())
    got = await asyncio.gather(*(rig.router.complete(req()) for _ in range(3)))
    assert [r.model for r in got] == ["a"] * 3
    assert len(rig.fake.calls) == 4 and rig.clock.now() < 2.0  # none waited for the ejection
    assert all(any(d.startswith("panic:") for d in r.decisions) for r in rig.log.records()[-3:])
    assert rig.router.deployment("a").breaker.state == "closed"


async def test_a_chain_closed_beyond_the_wait_fails_at_once_saying_when() -> None:
    rig = Rig()
    block(rig, "a", 8.0)
    block(rig, "b", 6.0)
    rig.router.deployment("c").breaker.trip(rig.clock.now() + 7.0)
    t0 = rig.clock.now()
    with pytest.raises(E.Unavailable) as info:
        await rig.router.complete(req())
    assert info.value.retry_after == pytest.approx(6.0)  # b opens first
    assert rig.clock.now() == t0 and rig.fake.calls == []
    # a breaker that opens before its limiter does is not "open": the later of the two counts
    block(rig, "b", 9.0)
    with pytest.raises(E.Unavailable) as info:
        await rig.router.complete(req())
    assert info.value.retry_after == pytest.approx(7.0)  # c now
    # a longer wait, when configured, is taken
    rig = Rig(defaults={"rate_limit_wait": "10s"})
    block(rig, "a", 8.0)
    assert (await rig.router.complete(req())).model == "b"  # b is open: no wait at all
    block(rig, "b", 6.0)
    block(rig, "c", 7.0)
    assert (await rig.router.complete(req())).model == "b"
    assert 6.0 <= rig.last().attempts[-1].wait_s <= 6.5


async def test_a_chain_wait_never_passes_the_deadline() -> None:
    rig = Rig(total="3s", defaults={"rate_limit_wait": "10s"})
    for name in ("a", "b", "c"):
        block(rig, name, 3.5)
    with pytest.raises(E.Unavailable) as info:
        await rig.router.complete(req())
    assert info.value.retry_after == pytest.approx(3.5) and rig.clock.now() == 0.0
    rig = Rig(total="3s", defaults={"rate_limit_wait": "10s"})
    for name in ("a", "b", "c"):
        block(rig, name, 2.5)
    rig.fake.script("a", Step(hang=True))  # opens in 2.5 s, then hangs past the deadline
    t0 = rig.clock.now()
    with pytest.raises(E.DeadlineExceeded):
        await rig.router.complete(req())
    assert rig.clock.now() - t0 == pytest.approx(3.0)


async def test_a_real_failure_in_the_chain_means_no_waiting() -> None:
    rig = Rig(chain=("a", "b"), retries=0)
    block(rig, "a", 1.0)
    rig.fake.script("b", Step(error=err(E.ServerError, status=500)))
    with pytest.raises(E.AllAttemptsFailed) as info:
        await rig.router.complete(req())
    assert info.value.retry_after == pytest.approx(0.99)  # from now, after b's 10 ms
    assert rig.fake.calls == ["b"] and rig.clock.now() == pytest.approx(0.01)


async def test_total_deadline_is_never_exceeded() -> None:
    rig = Rig(total="3s")
    rig.fake.script("a", Step(hang=True))
    t0 = rig.clock.now()
    with pytest.raises(E.DeadlineExceeded):
        await rig.router.complete(req())
    assert rig.clock.now() - t0 <= 3.0
    assert rig.last().error_kind == "deadline"


async def test_stream_healthy() -> None:
    rig = Rig()
    events = [ev async for ev in rig.router.stream(req())]
    assert isinstance(events[0], StreamStart) and events[0].model == "a"
    assert isinstance(events[-1], StreamEnd) and events[-1].response.content == "hello world"
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hello world"
    assert events[-1].response.ttft_s is not None and rig.last().streamed


async def test_stream_failover_before_first_token_is_invisible() -> None:
    rig = Rig()
    rig.fake.script("a", Step(hang=True))
    rig.fake.script("b", Step(cut_after=0), Step(error=err(E.ServerError)), Step(error=err(E.Overloaded)))
    events = [ev async for ev in rig.router.stream(req())]
    assert isinstance(events[0], StreamStart) and events[0].model == "c"
    kinds = [a.error_kind for a in rig.last().attempts]
    assert kinds == ["first_token_timeout", "stream_cut", "server", "overloaded", None]
    assert rig.fake.calls.count("a") == 1  # the silent one is not retried


async def test_cut_after_output_is_an_error_never_a_success() -> None:
    rig = Rig()
    rig.fake.script("a", Step(cut_after=2))
    got: list[object] = []
    with pytest.raises(E.StreamInterrupted) as info:
        async for ev in rig.router.stream(req()):
            got.append(ev)
    assert not any(isinstance(e, StreamEnd) for e in got)
    assert info.value.partial == "".join(e.text for e in got if isinstance(e, TextDelta)) != ""
    assert info.value.cause_kind is E.ErrorKind.STREAM_CUT
    assert rig.last().outcome == "error" and rig.fake.calls == ["a"]


async def test_stall_after_output_is_interrupted() -> None:
    rig = Rig()
    rig.fake.script("a", Step(stall_after=1))
    with pytest.raises(E.StreamInterrupted) as info:
        async for _ in rig.router.stream(req()):
            pass
    assert info.value.cause_kind is E.ErrorKind.STALL


async def test_buffered_stream_fails_over_cleanly() -> None:
    rig = Rig(route={"buffer_stream": True}, retries=0)
    rig.fake.script("a", Step(cut_after=2, text="partial answer that is lost"))
    events = [ev async for ev in rig.router.stream(req())]
    assert events[0].model == "b"  # type: ignore[union-attr]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "hello world"
    assert isinstance(events[-1], StreamEnd) and events[-1].response.content == "hello world"


async def test_hedge_keeps_the_first_answer_and_cancels_the_other() -> None:
    rig = Rig(chain=("a", "b"), route={"hedge": {"after": "1s"}})
    rig.fake.script("a", Step(block=True))
    resp = await rig.router.complete(req())
    assert resp.model == "b"
    rec = rig.last()
    assert sorted((a.model, a.outcome) for a in rec.attempts) == [("a", "cancelled"), ("b", "success")]
    assert any(d.startswith("hedge:") for d in rec.decisions)
    assert rig.router.deployment("a").breaker.state == "closed"


async def test_stream_hedge() -> None:
    rig = Rig(chain=("a", "b"), route={"hedge": {"after": "500ms"}})
    rig.fake.script("a", Step(block=True))
    events = [ev async for ev in rig.router.stream(req())]
    assert events[0].model == "b"  # type: ignore[union-attr]
    assert isinstance(events[-1], StreamEnd)


async def test_embed_and_unknown_route() -> None:
    rig = Rig(models={n: {"model": "text-embedding-3-small"} for n in "abc"})
    resp = await rig.router.embed(EmbeddingRequest(model="r", input=["x", "y"]))
    assert resp.vectors == [[1.0], [1.0]] and resp.route == "r"
    rig = Rig()
    with pytest.raises(E.UnknownRoute, match="nope"):
        await rig.router.complete(req("nope"))
    assert rig.last().error_kind == "unknown_route"
    assert "r" in rig.router.route_names() and "a" in rig.router.route_names()
    assert (await rig.router.complete(req("b"))).model == "b"  # a deployment by name


async def test_local_rate_limit_skips_to_the_next_model() -> None:
    rig = Rig(chain=("a", "b"), models={"a": {"rpm": 1}})
    assert (await rig.router.complete(req())).model == "a"
    assert (await rig.router.complete(req())).model == "b"
    rig.clock.advance(60)
    assert (await rig.router.complete(req())).model == "a"


async def test_a_failing_listener_never_breaks_a_request() -> None:
    class Broken(BaseListener):
        def on_request(self, record: object) -> None:
            raise RuntimeError("listener bug")

    rig = Rig()
    broken = Broken()
    rig.router.add_listener(broken)
    with capture_logs() as logs:
        assert (await rig.router.complete(req())).model == "a"
    assert [(e["log_level"], e["event"], e["positional_args"], e["exc_info"]) for e in logs] == [
        ("error", "router listener %r failed in on_request", (broken,), True)
    ]


async def test_aclose_and_context_manager() -> None:
    rig = Rig()
    async with rig.router as r:
        await r.complete(req())
    assert rig.fake.closed


async def test_tools_skip_deployments_without_them_and_a_route_without_any_refuses() -> None:
    from router.types import ToolSpec

    rig = Rig(chain=("a", "b"), models={"a": {"tools": False}})
    with_tools = req(tools=[ToolSpec("lookup")])
    assert (await rig.router.complete(with_tools)).model == "b"
    assert rig.fake.calls == ["b"] and any("skipping ['a']" in d for d in rig.last().decisions)
    assert (await rig.router.complete(req())).model == "a"  # without tools, a serves as usual
    rig = Rig(chain=("a",), models={"a": {"tools": False}})
    for _ in range(20):
        with pytest.raises(E.Unsupported, match="route 'r' has no deployment that takes tools") as info:
            await rig.router.complete(with_tools)
        assert info.value.http_status == 400
    assert rig.fake.calls == [] and rig.router.deployment("a").breaker.state == "closed"


async def test_requests_waiting_for_a_held_chain_are_released_spread_not_as_a_herd() -> None:
    import asyncio

    rig = Rig(chain=("a",))
    block(rig, "a", 2.0)  # the provider said 0 remaining, reset in 2 s
    got = await asyncio.gather(*(rig.router.complete(req()) for _ in range(20)))
    assert [r.model for r in got] == ["a"] * 20
    starts = sorted(a.started_at for r in rig.log.records() for a in r.attempts if a.outcome == "success")
    assert starts[0] >= 2.0 and starts[-1] <= 2.5  # within a quarter of the wait after it opens
    assert len(set(starts)) == 20  # each at its own time
