"""Two routers (two replicas) sharing one real redis-server, against the mock with chaos faults."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
from state_redis import REDIS_BIN, SKIP_REASON, RedisServer
from structlog.testing import capture_logs

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.clock import FakeClock as MockFakeClock
from mockproviders.server import MockServer
from router import Router, parse_config
from router import errors as E
from router.clock import FakeClock
from router.state.resilient import ResilientStore
from router.types import ChatRequest, Message


def config(urls: dict[str, str], redis_url: str | None, **gpt: Any) -> Any:
    data: dict[str, Any] = {
        "providers": {
            "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk-test"},
            "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": "m-test"},
        },
        "models": {
            "gpt": {"provider": "openai", "model": "gpt-4o-mini", **gpt},
            "mis": {"provider": "mistral", "model": "mistral-small-latest"},
        },
        "routes": {"chat": {"chain": ["gpt", "mis"]}},
        "defaults": {
            "retries": 0,
            "rate_limit_wait": 0,  # what the shared state admits, not how long a request waits for it
            "timeouts": {"total": "20s", "connect": "1s", "read": "2s", "first_token": "2s"},
            "breaker": {"failures": 3, "window": "60s", "cooldown": "30s"},
        },
    }
    if redis_url is not None:
        data["state"] = {"backend": "redis", "url": redis_url, "prefix": "t", "timeout": "2s"}
    return parse_config(data)


def ask(model: str = "gpt") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", "Say something about trains.")])


class Pair:
    def __init__(self, server: MockServer, a: Router, b: Router, clock: FakeClock) -> None:
        self.server, self.a, self.b, self.clock = server, a, b, clock

    def seen(self, provider: str | None = None) -> int:
        return sum(1 for e in self.server.core.journal if provider is None or e.provider == provider)

    @staticmethod
    def store(router: Router) -> ResilientStore:
        assert isinstance(router.state_store, ResilientStore)
        return router.state_store


PairFactory = Callable[..., AbstractAsyncContextManager[Pair]]


@pytest.fixture
def pair() -> PairFactory:
    @asynccontextmanager
    async def factory(redis_url: str | None, *rules: Rule, **gpt: Any) -> AsyncIterator[Pair]:
        engine = ChaosEngine(rules, clock=MockFakeClock())
        async with MockServer(app=create_mock_app(engine=engine)) as server:
            clock = FakeClock()  # both replicas read one virtual wall clock: no timing in the verdicts
            a = Router(config(server.base_urls, redis_url, **gpt), clock=clock)
            b = Router(config(server.base_urls, redis_url, **gpt), clock=clock)
            try:
                yield Pair(server, a, b, clock)
            finally:
                await a.aclose()
                await b.aclose()

    return factory


async def outcomes(routers: list[Router], model: str = "gpt") -> list[str]:
    async def one(r: Router) -> str:
        try:
            await r.complete(ask(model))
            return "ok"
        except E.RouterError as exc:
            return exc.kind.value

    return await asyncio.gather(*(one(r) for r in routers))


async def test_two_replicas_never_exceed_a_shared_rpm_together(redis_url: str, pair: PairFactory) -> None:
    async with pair(redis_url, rpm=10) as p:
        got = await outcomes([p.a, p.b] * 20)
        assert got.count("ok") == 10
        assert p.seen() == 10  # what the provider saw: the limit, not twice it
        snap = p.a.snapshot()["state"]
        assert snap["backend"] == "redis" and snap["up"] is True


async def test_without_shared_state_each_replica_spends_the_whole_limit(pair: PairFactory) -> None:
    async with pair(None, rpm=10) as p:  # the baseline the shared store exists to fix
        got = await outcomes([p.a, p.b] * 20)
        assert got.count("ok") == 20 and p.seen() == 20


async def test_a_breaker_opened_by_one_replica_is_open_on_the_other(
    redis_url: str, pair: PairFactory
) -> None:
    down = Rule.model_validate(
        {"name": "down", "fault": "server_error", "params": {"status": 503}, "match": {"provider": "openai"}}
    )
    async with pair(redis_url, down) as p:
        for _ in range(3):  # 3 in a row: A ejects gpt, and says so in the store
            assert (await p.a.complete(ask("chat"))).model == "mis"
        await p.store(p.a).flush()
        assert p.seen("openai") == 3
        assert (await p.b.complete(ask("chat"))).model == "mis"
        assert p.seen("openai") == 3  # B skipped gpt: it never called the provider
        assert p.b.snapshot()["deployments"]["gpt"]["breaker"]["state"] == "open"

        # Ejection over: both replicas ask at once, and exactly one of them probes.
        p.clock.advance(31)
        got = await outcomes([p.a, p.b], "chat")
        assert got == ["ok", "ok"]  # the probe failed over, the other skipped gpt
        assert p.seen("openai") == 4


async def test_a_probe_success_closes_the_breaker_for_both(redis_url: str, pair: PairFactory) -> None:
    async with pair(redis_url) as p:
        p.b.deployment("gpt").breaker.trip(p.clock.now() + 5)  # ejected, on B
        await p.store(p.b).flush()
        assert (await p.a.complete(ask("chat"))).model == "mis"  # A skips it too
        assert p.seen("openai") == 0
        p.clock.advance(6)
        await p.a.complete(ask())  # A's probe succeeds
        await p.store(p.a).flush()
        await p.b.complete(ask())
        assert p.b.snapshot()["deployments"]["gpt"]["breaker"]["state"] == "closed"
        assert p.a.snapshot()["deployments"]["gpt"]["breaker"]["state"] == "closed"


@pytest.fixture
def own_redis(tmp_path: Path) -> Any:
    if REDIS_BIN is None:
        pytest.skip(SKIP_REASON)
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.kill()


async def wait_for(cond: Callable[[], bool], tries: int = 500) -> None:
    for _ in range(tries):  # synchronisation with a background reconnect, not a timed assertion
        if cond():
            return
        await asyncio.sleep(0.01)
    raise AssertionError("condition never became true")


async def test_redis_killed_and_restarted_mid_traffic_loses_no_request(
    own_redis: RedisServer, pair: PairFactory
) -> None:
    async with pair(own_redis.url, rpm=100_000) as p:
        sa, sb = p.store(p.a), p.store(p.b)
        results: list[str] = []
        with capture_logs() as logs:
            results += await outcomes([p.a, p.b] * 8)
            own_redis.kill()
            results += await outcomes([p.a, p.b] * 8)  # the store fails under these: local state
            for _ in range(500):  # a busy deployment admits from its lease: it meets the store at renewal
                if not sa.up and not sb.up:
                    break
                results += await outcomes([p.a, p.b])
                await asyncio.sleep(0.01)
            assert not sa.up and not sb.up
            results += await outcomes([p.a, p.b] * 8)  # down: no Redis call at all
            own_redis.start()
            await wait_for(lambda: sa.up and sb.up)
            results += await outcomes([p.a, p.b] * 8)
        assert results == ["ok"] * len(results)
        assert p.seen() == len(results)
        assert sa.outages == 1 and sb.outages == 1 and sa.errors >= 1
        warnings = [e for e in logs if e["log_level"] == "warning"]
        assert len(warnings) == 2  # one per replica per outage, not one per request
        assert "local state" in warnings[0]["event"]
        assert any("resumed" in e["event"] for e in logs)


async def test_while_redis_is_down_replicas_split_the_limit_by_those_alive(
    own_redis: RedisServer, pair: PairFactory
) -> None:
    async with pair(own_redis.url, rpm=10) as p:
        sa, sb = p.store(p.a), p.store(p.b)
        await sa.beat()
        await sb.beat()
        await sa.beat()
        assert (sa.live_replicas, sb.live_replicas) == (2, 2)
        assert sa.snapshot()["live_replicas"] == 2
        own_redis.kill()
        got = await outcomes([p.a] * 10 + [p.b] * 10)  # the first calls find Redis gone: local state
        assert not sa.up and not sb.up
        assert got.count("ok") == 10  # 5 each (the other 5 wait for their share), not 10 each
        assert p.seen() == 10
        assert p.a.snapshot()["deployments"]["gpt"]["limiter"]["rpm"] == 5

        own_redis.start()
        await wait_for(lambda: sa.up and sb.up)
        assert p.a.snapshot()["deployments"]["gpt"]["limiter"]["rpm"] == 10  # shared truth again
        # Redis came back empty: its bucket is full, so the shared limit admits 10 more in all
        got = await outcomes([p.a, p.b] * 10)
        assert got.count("ok") == 10


async def test_a_replica_that_stops_is_counted_out(own_redis: RedisServer, pair: PairFactory) -> None:
    async with pair(own_redis.url) as p:
        sa, sb = p.store(p.a), p.store(p.b)
        await sa.beat()
        await sb.beat()
        await p.b.aclose()
        await sa.beat()
        assert sa.live_replicas == 1


def count_admissions(store: ResilientStore) -> list[int]:
    """Count the round trips ``store`` makes to admit one request (the per-request path leases
    avoid): a wrapper on this replica's primary store."""
    calls = [0]
    admit = store.primary.admit

    async def counted(*args: Any) -> Any:
        calls[0] += 1
        return await admit(*args)

    store.primary.admit = counted  # type: ignore[method-assign]
    return calls


async def test_leasing_replicas_admit_locally_and_never_exceed_a_shared_rpm_together(
    redis_url: str, pair: PairFactory
) -> None:
    # rpm 200: a lease holds at most 10 requests (1/20 of the minute). The virtual clock stands
    # still, so the buckets never refill: whatever the leases do, 200 is all there is.
    async with pair(redis_url, rpm=200) as p:
        trips = count_admissions(p.store(p.a)), count_admissions(p.store(p.b))
        got: list[str] = []
        for _ in range(9):  # 180 requests: within the limit whatever the leases hold
            got += await outcomes([p.a, p.b] * 10)
        assert got == ["ok"] * 180
        assert trips[0][0] + trips[1][0] < 90  # most came from a lease, not a round trip to Redis
        for _ in range(20):
            got += await outcomes([p.a, p.b] * 10)
        ok = got.count("ok")
        assert p.seen() == ok  # what the provider saw is what was admitted
        assert ok <= 200  # never above the shared limit
        assert ok >= 200 - 2 * 10  # at most each replica's last lease is left unspent
        for r in (p.a, p.b):  # what a replica holds goes back to the buckets
            r.deployment("gpt").shared.drop_lease()  # type: ignore[union-attr]
        await p.store(p.a).flush()
        await p.store(p.b).flush()
        assert (await outcomes([p.a, p.b] * 20)).count("ok") == 200 - ok


async def test_a_leasing_replica_learns_a_peers_ejection_within_one_lease_period(
    redis_url: str, pair: PairFactory
) -> None:
    async with pair(redis_url) as p:
        shared_b = p.b.deployment("gpt").shared
        assert shared_b is not None and shared_b.lease_s == 0.25  # the default
        await outcomes([p.b] * 4)  # busy enough to lease
        await wait_for(lambda: shared_b._lease_r > 0)
        sa = p.store(p.a)
        await sa.primary.trip("gpt", p.clock.wall() + 30, p.a.deployment("gpt").shared.spec, p.clock.wall())  # type: ignore[union-attr]
        assert (await p.b.complete(ask("chat"))).model == "gpt"  # within its lease period B may still send
        p.clock.advance(0.25)  # one lease period later the lease has run out: B asks the store
        seen = p.seen("openai")
        assert (await p.b.complete(ask("chat"))).model == "mis"
        assert p.seen("openai") == seen  # gpt was not called: B skipped it
        assert p.b.snapshot()["deployments"]["gpt"]["breaker"]["state"] == "open"


async def test_a_replica_that_dies_holding_a_lease_strands_its_slice_for_one_refill_at_most(
    redis_url: str, pair: PairFactory
) -> None:
    # rpm 200: a lease holds at most 10 requests, which the buckets refill in 60/20 = 3 s.
    async with pair(redis_url, rpm=200) as p:
        shared_a = p.a.deployment("gpt").shared
        assert shared_a is not None
        got_a = await outcomes([p.a] * 6)  # busy enough to lease
        await wait_for(lambda: shared_a._lease_r > 0 and not shared_a._renewing)
        held = shared_a._lease_r
        assert got_a == ["ok"] * 6 and 1 <= held <= 10
        # A "dies" here: its slice vanishes with it, never given back (as a killed process). B,
        # alone, gets the rest of the minute's 200, less what A held, and not one more.
        shared_a._lease_r = 0
        got_b: list[str] = []
        for _ in range(11):
            got_b += await outcomes([p.b] * 20)
        assert got_b.count("ok") == 200 - 6 - held
        assert p.seen() == 200 - held  # the provider saw the limit less the stranded slice
        # One refill of a slice later (3 s at 200 rpm), the stranded capacity is back for B.
        p.clock.advance(3.0)
        assert (await outcomes([p.b] * 20)).count("ok") == 10
        assert p.seen() == 200 - held + 10


async def test_a_busy_replica_keeps_leasing_period_after_period(redis_url: str, pair: PairFactory) -> None:
    # Regression: once a lease's period ended with requests left in it, the replica went back to
    # a round trip per admission for good (the left-over count kept it from asking again).
    async with pair(redis_url) as p:
        trips = count_admissions(p.store(p.b))
        for period in range(4):
            before = trips[0]
            for _ in range(5):
                await outcomes([p.b] * 8)
                await asyncio.sleep(0)  # the renewal's round trip
            assert trips[0] - before < 20, (
                f"period {period}: {trips[0] - before} of 40 admissions went to Redis"
            )
            p.clock.advance(0.3)  # past the lease period
