"""The same contract over both stores: the Lua scripts must agree with the plain Python."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from typing import Any

import pytest
from state_redis import RedisServer, free_port

from router.clock import FakeClock
from router.headers import RateLimitSnapshot
from router.state import BreakerSpec, BucketSpec, StateStore, StateStoreError
from router.state.base import Lease
from router.state.host import HostStateServer, HostStore
from router.state.memory import MemoryStore
from router.state.redis import RedisStore

T0 = 1_700_000_000.0
SPEC = BreakerSpec(failures=3, window=10.0, cooldown=5.0, max_cooldown=40.0, backoff=2.0)


@pytest.fixture(params=["memory", "redis", "host"])
async def store(request: pytest.FixtureRequest, tmp_path: Any) -> AsyncIterator[StateStore]:
    if request.param == "memory":
        yield MemoryStore(FakeClock(epoch=T0))
        return
    if request.param == "host":  # the supervisor's MemoryStore over its Unix socket
        server = HostStateServer(str(tmp_path / "state.sock"), FakeClock(epoch=T0))
        await server.start()
        client = HostStore(server.path, timeout=5.0)
        yield client
        await client.aclose()
        await server.close()
        return
    url = request.getfixturevalue("redis_url")
    s = RedisStore(url, prefix="t", timeout=1.0)
    yield s
    await s.aclose()


async def test_bucket_takes_then_waits_then_refills(store: StateStore) -> None:
    lim = BucketSpec(rpm=3)
    for _ in range(3):
        assert await store.acquire("d", lim, 0, T0) == 0.0
    wait = await store.acquire("d", lim, 0, T0)
    assert wait == pytest.approx(20.0)  # one request refills in 60/3 s
    assert await store.acquire("d", lim, 0, T0 + 20.0) == 0.0
    assert await store.acquire("d", lim, 0, T0 + 20.0) > 0


async def test_token_bucket_and_refund(store: StateStore) -> None:
    lim = BucketSpec(tpm=600)
    assert await store.acquire("d", lim, 500, T0) == 0.0
    assert await store.acquire("d", lim, 200, T0) == pytest.approx(10.0)  # 100 short at 10/s
    await store.refund("d", lim, 300, 0, T0)
    assert await store.acquire("d", lim, 200, T0) == 0.0


async def test_unlimited_is_free_until_headers_block(store: StateStore) -> None:
    lim = BucketSpec()
    assert await store.acquire("d", lim, 10**6, T0) == 0.0
    await store.observe_headroom("d", lim, RateLimitSnapshot(remaining_requests=0, reset_requests_s=2.5), T0)
    assert await store.acquire("d", lim, 0, T0 + 1) == pytest.approx(1.5)
    assert await store.acquire("d", lim, 0, T0 + 2.5) == 0.0


async def test_headers_lower_the_bucket(store: StateStore) -> None:
    lim = BucketSpec(rpm=60)
    await store.observe_headroom("d", lim, RateLimitSnapshot(remaining_requests=1), T0)
    assert await store.acquire("d", lim, 0, T0) == 0.0
    assert await store.acquire("d", lim, 0, T0) == pytest.approx(1.0)


async def test_breaker_opens_after_threshold_within_window(store: StateStore) -> None:
    assert await store.record_failure("d", SPEC, T0) is None
    assert await store.record_failure("d", SPEC, T0 + 20) is None  # the first fell out of the window
    assert await store.record_failure("d", SPEC, T0 + 21) is None
    until = await store.record_failure("d", SPEC, T0 + 22)
    assert until == pytest.approx(T0 + 27)
    view = await store.read_breaker("d", T0 + 23)
    assert (view.state, view.until) == ("open", pytest.approx(T0 + 27))
    assert await store.record_failure("d", SPEC, T0 + 23) is None  # open: adds nothing
    assert (await store.read_breaker("d", T0 + 27)).state == "half_open"


async def test_admit_open_probe_lease_and_recovery(store: StateStore) -> None:
    lim = BucketSpec()
    for t in (0, 1, 2):
        await store.record_failure("d", SPEC, T0 + t)
    adm = await store.admit("d", lim, SPEC, 0, T0 + 3, 1.0, "a")
    assert (adm.verdict, adm.until) == ("open", pytest.approx(T0 + 7))
    first = await store.admit("d", lim, SPEC, 0, T0 + 8, 30.0, "a")
    assert (first.verdict, first.probe) == ("ok", True)
    other = await store.admit("d", lim, SPEC, 0, T0 + 8, 30.0, "b")
    assert other.verdict == "probing"
    await store.release_probe("d", "b")  # not b's lease: nothing happens
    assert (await store.admit("d", lim, SPEC, 0, T0 + 8, 30.0, "b")).verdict == "probing"
    await store.record_success("d", T0 + 8)
    view = await store.read_breaker("d", T0 + 8)
    assert view.state == "closed"
    again = await store.admit("d", lim, SPEC, 0, T0 + 8, 30.0, "b")
    assert (again.verdict, again.probe) == ("ok", False)


async def test_failed_probe_reopens_with_backoff(store: StateStore) -> None:
    for t in (0, 1, 2):
        await store.record_failure("d", SPEC, T0 + t)  # open until T0+7, cooldown 5
    assert (await store.admit("d", BucketSpec(), SPEC, 0, T0 + 8, 30.0, "a")).probe
    until = await store.record_failure("d", SPEC, T0 + 8)
    assert until == pytest.approx(T0 + 18)  # cooldown doubled to 10
    # the lease went with the verdict: after this cooldown, a new probe is possible
    assert (await store.admit("d", BucketSpec(), SPEC, 0, T0 + 18, 30.0, "b")).probe


async def test_trip_only_moves_later(store: StateStore) -> None:
    assert await store.trip("d", T0 + 10, SPEC, T0) == pytest.approx(T0 + 10)
    assert await store.trip("d", T0 + 5, SPEC, T0) == pytest.approx(T0 + 10)
    assert await store.trip("d", T0 + 12, SPEC, T0) == pytest.approx(T0 + 12)
    assert (await store.read_breaker("d", T0 + 11)).state == "open"
    await store.trip("e", T0 - 1, SPEC, T0)  # a time already past changes nothing
    assert (await store.read_breaker("e", T0)).state == "closed"


async def test_success_does_not_close_an_open_breaker(store: StateStore) -> None:
    await store.trip("d", T0 + 10, SPEC, T0)
    await store.record_success("d", T0 + 1)  # a straggler from before it opened
    assert (await store.read_breaker("d", T0 + 1)).state == "open"


async def test_rate_limited_admission_gives_the_probe_back(store: StateStore) -> None:
    lim = BucketSpec(rpm=1)
    assert (await store.admit("d", lim, SPEC, 0, T0, 30.0, "a")).verdict == "ok"
    await store.trip("d", T0 + 1, SPEC, T0)
    adm = await store.admit("d", lim, SPEC, 0, T0 + 1, 30.0, "a")
    assert adm.verdict == "wait" and not adm.probe
    assert await store.try_probe("d", "b", 30.0)  # the lease is free


async def test_spend_adds_per_period(store: StateStore) -> None:
    assert await store.get_spend("team", 100) == 0.0
    assert await store.add_spend("team", 1.25, 100) == pytest.approx(1.25)
    assert await store.add_spend("team", 0.5, 100) == pytest.approx(1.75)
    assert await store.get_spend("team", 100) == pytest.approx(1.75)
    assert await store.get_spend("team", 200) == 0.0


async def test_concurrent_admissions_are_exact(store: StateStore) -> None:
    # 50 at once against rpm 20 and tpm 1000 (40 tokens each: 25 fit): exactly 20 pass. On Redis
    # most ride batches (one script for all that arrived while one was in flight).
    lim = BucketSpec(rpm=20, tpm=1000)
    got = await asyncio.gather(*(store.admit("d", lim, SPEC, 40, T0, 30.0, "a") for _ in range(50)))
    verdicts = [a.verdict for a in got]
    assert verdicts.count("ok") == 20 and verdicts.count("wait") == 30
    assert verdicts[:20] == ["ok"] * 20  # in arrival order
    assert await store.acquire("d", lim, 0, T0) == pytest.approx(3.0)  # empty: one request in 60/20 s


async def test_concurrent_admissions_share_one_probe(store: StateStore) -> None:
    await store.trip("d", T0 + 5, SPEC, T0)
    opened = await asyncio.gather(
        *(store.admit("d", BucketSpec(), SPEC, 0, T0 + 1, 30.0, "a") for _ in range(5))
    )
    assert [(a.verdict, a.until) for a in opened] == [("open", pytest.approx(T0 + 5))] * 5
    half = await asyncio.gather(
        *(store.admit("d", BucketSpec(), SPEC, 0, T0 + 6, 30.0, o) for o in ("a", "b", "c", "d"))
    )
    assert [a.probe for a in half] == [True, False, False, False]
    assert [a.verdict for a in half] == ["ok", "probing", "probing", "probing"]


async def test_redis_batches_concurrent_admissions(redis_url: str) -> None:
    store = RedisStore(redis_url, prefix="b", timeout=1.0)
    sent: list[int] = []
    many = store._admit_many

    async def counting(*, keys: Any, args: Any) -> Any:
        sent.append(int(args[0]))
        return await many(keys=keys, args=args)

    store._admit_many = counting  # type: ignore[assignment]
    try:
        got = await asyncio.gather(
            *(store.admit("d", BucketSpec(rpm=100), SPEC, 0, T0, 30.0, "a") for _ in range(40))
        )
    finally:
        await store.aclose()
    assert all(a.verdict == "ok" for a in got)
    assert sum(sent) == 39 and len(sent) <= 2  # one alone, the 39 that came meanwhile in one batch


async def test_redis_down_fails_every_batched_admission(redis_server: RedisServer) -> None:
    store = RedisStore(f"redis://127.0.0.1:{free_port()}/0", prefix="b", timeout=0.5)  # nobody there
    try:
        got = await asyncio.gather(
            *(store.admit("d", BucketSpec(rpm=5), SPEC, 0, T0, 30.0, "a") for _ in range(10)),
            return_exceptions=True,
        )
    finally:
        await store.aclose()
    assert all(isinstance(g, StateStoreError) for g in got), got
    assert not store._riders  # nothing left waiting: the next admission goes alone


async def test_lease_takes_what_the_buckets_have_and_no_more(store: StateStore) -> None:
    lim = BucketSpec(rpm=10, tpm=1000)
    assert await store.lease("d", lim, 4, 300, T0) == Lease("ok", 4, 300)
    assert await store.lease("d", lim, 10, 1000, T0) == Lease("ok", 6, 700)  # the rest, exactly
    assert await store.lease("d", lim, 3, 10, T0) == Lease("ok", 0, 0)  # empty: nothing taken
    assert await store.acquire("d", lim, 0, T0) == pytest.approx(6.0)  # leased is taken: one per 6 s
    await store.refund("d", lim, 500, 2, T0)  # a lease's unused part, given back
    assert await store.lease("d", lim, 5, 800, T0) == Lease("ok", 2, 500)


async def test_lease_with_no_limits_grants_what_was_asked(store: StateStore) -> None:
    assert await store.lease("d", BucketSpec(), 50, 0, T0) == Lease("ok", 50, 0)


async def test_no_lease_while_the_breaker_is_not_closed_or_a_hold_is_in_force(store: StateStore) -> None:
    lim = BucketSpec(rpm=100)
    until = await store.trip("d", T0 + 5, SPEC, T0)
    assert await store.lease("d", lim, 5, 0, T0 + 1) == Lease("open", until=pytest.approx(until))
    assert await store.lease("d", lim, 5, 0, T0 + 6) == Lease("half")  # the probe goes one by one
    await store.record_success("d", T0 + 6)
    assert (await store.lease("d", lim, 5, 0, T0 + 6)).requests == 5
    await store.observe_headroom("e", lim, RateLimitSnapshot(remaining_requests=0, reset_requests_s=3), T0)
    assert await store.lease("e", lim, 5, 0, T0 + 1) == Lease("hold", until=pytest.approx(T0 + 3))
    assert (await store.lease("e", lim, 5, 0, T0 + 3)).requests == 5  # the hold is over (refilled by then)
