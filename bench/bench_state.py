"""Benchmark: the cost per request of the Redis state store against the in-memory default.

The mock (``turnout mock``) and ``redis-server`` run in child processes; this process runs two
routers on the same config, one with ``state: {backend: memory}`` (the baseline: local breaker and
limiter objects, no store call) and one with ``state: {backend: redis}`` (one Lua admission per
attempt, outcomes queued), alternating rounds A B A B at fixed concurrency. The deployment has
rpm and tpm limits, so the admission script really runs both buckets.

It prints throughput, latency and client CPU per request for both, the ratio redis/memory, and
the raw cost of one admission: the local objects, ``MemoryStore.admit`` and ``RedisStore.admit``
(one at a time, and at the same concurrency). Last, the time an ejection takes to reach every
replica: three routers sharing the store under traffic, the provider made to fail (``/_chaos/``),
from the first replica's ejection to the last one's.

    .venv/bin/python bench/bench_state.py [--rounds 4] [--requests 3000] [--concurrency 32]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from _common import (
    pct,
    print_table,
    run_with_mock_and_redis,
    timed_round,
)

PROMPT = "Say hello to the bench."


def _config(base: str, backend: str, redis_url: str, lease: float = 0.25) -> Any:
    from router import parse_config

    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": f"{base}/openai/v1", "api_key": "sk-bench"}
            },
            "models": {"gpt": {"provider": "openai", "model": "gpt-4o-mini", "rpm": 10**7, "tpm": 10**10}},
            "defaults": {"retries": 0},
            "state": {
                "backend": backend,
                "url": redis_url,
                "prefix": "bench",
                "timeout": "1s",
                "lease": lease,
            },
        }
    )


async def _routers(args: argparse.Namespace, base: str, redis_url: str) -> None:
    from router import ChatRequest, Message, Router
    from router.state.resilient import ResilientStore

    # "redis0" is state.lease 0 (one Redis call per admission: the store before leases), "redis" the
    # default lease: before and after in the same run, alternating with the baseline.
    routers = {
        "memory": Router(_config(base, "memory", redis_url)),
        "redis0": Router(_config(base, "redis", redis_url, lease=0.0)),
        "redis": Router(_config(base, "redis", redis_url)),
    }
    request = ChatRequest(model="gpt", messages=[Message("user", PROMPT)])
    calls = {b: (lambda r=r: r.complete(request)) for b, r in routers.items()}
    rps: dict[str, list[float]] = {b: [] for b in routers}
    lat: dict[str, list[float]] = {b: [] for b in routers}
    cpu: dict[str, list[float]] = {b: [] for b in routers}
    try:
        for b in routers:
            await timed_round(calls[b], min(500, args.requests), args.concurrency)
        print(f"\n== router.complete against the mock, c={args.concurrency} ==")
        for i in range(args.rounds):
            for b in routers:
                t, ls, c = await timed_round(calls[b], args.requests, args.concurrency)
                rps[b].append(t)
                lat[b].extend(ls)
                cpu[b].append(c)
                print(f"  round {i + 1} {b:6}: {t:7.0f} req/s, client CPU {c * 1e6:5.0f} us/req", flush=True)
        for b in ("redis0", "redis"):
            store = routers[b].state_store
            assert isinstance(store, ResilientStore)
            if not store.up or store.errors:
                raise RuntimeError(f"the redis store failed during the run: {store.snapshot()}")
    finally:
        for r in routers.values():
            await r.aclose()
    print_table(routers, rps, lat, cpu)
    for b, what in (("redis0", "state.lease 0"), ("redis", "state.lease 0.25s")):
        ratio = statistics.median(rps[b]) / statistics.median(rps["memory"])
        pairs = [r / m for r, m in zip(rps[b], rps["memory"], strict=True)]
        added_cpu = (statistics.median(cpu[b]) - statistics.median(cpu["memory"])) * 1e6
        added_p50 = pct(lat[b], 0.5) - pct(lat["memory"], 0.5)
        print(
            f"  ratio {b}/memory throughput ({what}): {ratio:.2f}"
            f" (per round: {', '.join(f'{p:.2f}' for p in pairs)});"
            f" added client CPU {added_cpu:.0f} us/request, added p50 {added_p50:.2f} ms"
        )


async def _raw(args: argparse.Namespace, redis_url: str) -> None:
    from router.breaker import CircuitBreaker
    from router.ratelimit import RateLimiter
    from router.state import BreakerSpec, BucketSpec
    from router.state.memory import MemoryStore
    from router.state.redis import RedisStore

    limits, spec = BucketSpec(10**9, 10**12), BreakerSpec()
    n = args.ops
    print(f"\n== one admission (breaker + request and token buckets), {n} ops ==")
    breaker, limiter = CircuitBreaker(), RateLimiter(10**9, 10**12)
    t0 = time.perf_counter()
    for _ in range(n):
        breaker.allow()
        limiter.try_acquire(100)
    local = (time.perf_counter() - t0) / n
    print(f"  local objects (the memory hot path): {local * 1e6:8.2f} us/op")
    results: dict[str, float] = {}
    for store in (MemoryStore(), RedisStore(redis_url, prefix="bench-raw", timeout=1.0)):
        await store.admit("d", limits, spec, 100, time.time(), 30.0, "me")  # load the script

        async def one(store: Any = store) -> None:
            await store.admit("d", limits, spec, 100, time.time(), 30.0, "me")

        t0 = time.perf_counter()
        for _ in range(n):
            await one()
        seq = (time.perf_counter() - t0) / n
        rate, _, cpu_per = await timed_round(one, n, args.concurrency)
        results[store.name] = seq
        print(
            f"  {type(store).__name__:12} sequential {seq * 1e6:8.1f} us/op;"
            f" c={args.concurrency}: {rate:8.0f} ops/s, client CPU {cpu_per * 1e6:5.1f} us/op"
        )
        await store.aclose()
    print(f"  ratio RedisStore/local objects per admission: {results['redis'] / local:.0f}x")


class _Ejections:
    """A router listener noting when replica ``i`` first ejected gpt; ``all`` is set at 3."""

    def __init__(self, opened: dict[int, float], i: int, every: asyncio.Event) -> None:
        self.opened, self.i, self.every = opened, i, every

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        if model == "gpt" and new == "open" and self.i not in self.opened:
            self.opened[self.i] = time.perf_counter()
            if len(self.opened) == 3:
                self.every.set()

    def on_attempt(self, route: str, record: Any) -> None:
        return None

    def on_request(self, record: Any) -> None:
        return None


async def _one_outage(http: Any, base: str, cfg: Any, request: Any) -> dict[int, float]:
    from router import Router

    opened: dict[int, float] = {}
    every, stop = asyncio.Event(), asyncio.Event()
    routers = [Router(cfg, listeners=[_Ejections(opened, i, every)]) for i in range(3)]

    async def loop(r: Router) -> None:
        while not stop.is_set():
            await r.complete(request)

    tasks = [asyncio.create_task(loop(r)) for r in routers for _ in range(4)]
    try:
        await asyncio.sleep(0.5)
        rule = {"name": "down", "fault": "server_error", "params": {"status": 503}}
        rule["match"] = {"provider": "openai"}
        async with http.post(f"{base}/_chaos/rules", json=rule) as resp:
            resp.raise_for_status()
        await asyncio.wait_for(every.wait(), 30)
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        async with http.delete(f"{base}/_chaos/rules"):
            pass
        for r in routers:
            await r.aclose()
    return opened


async def _propagation(args: argparse.Namespace, base: str, redis_url: str) -> None:
    """Three replicas (routers with their own store) under traffic; the provider goes down: the
    time from the first replica's ejection to the last replica's (each ejects on its own failures
    or on the shared ejection it reads at its next admission, whichever comes first)."""
    import aiohttp

    from router import ChatRequest, Message, parse_config

    print(f"\n== ejection reaching every replica: 3 replicas x c=4, {args.trials} outages ==")
    request = ChatRequest(model="chat", messages=[Message("user", PROMPT)])
    spreads: list[float] = []
    async with aiohttp.ClientSession() as http:
        for trial in range(args.trials):
            cfg = parse_config(
                {
                    "providers": {
                        "openai": {"kind": "openai", "base_url": f"{base}/openai/v1", "api_key": "sk-b"},
                        "mistral": {"kind": "mistral", "base_url": f"{base}/mistral", "api_key": "m-b"},
                    },
                    "models": {
                        "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
                        "mis": {"provider": "mistral", "model": "mistral-small-latest"},
                    },
                    "routes": {"chat": {"chain": ["gpt", "mis"]}},
                    "defaults": {"retries": 0},
                    "state": {
                        "backend": "redis",
                        "url": redis_url,
                        "prefix": f"eject{trial}",
                        "timeout": "1s",
                    },
                }
            )
            opened = await _one_outage(http, base, cfg, request)
            times = sorted(opened.values())
            spreads.append(times[-1] - times[0])
            print(
                f"  outage {trial + 1}: every replica ejected within {spreads[-1] * 1e3:.2f} ms of the first"
            )
    print(
        f"  first to last ejection: median {statistics.median(spreads) * 1e3:.2f} ms,"
        f" max {max(spreads) * 1e3:.2f} ms"
    )


async def _main(args: argparse.Namespace, base: str, redis_url: str) -> None:
    await _routers(args, base, redis_url)
    await _raw(args, redis_url)
    if args.trials:
        await _propagation(args, base, redis_url)


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--ops", type=int, default=5000, help="operations for the raw admission cost")
    parser.add_argument("--trials", type=int, default=5, help="outages for the ejection time (0: none)")
    args = parser.parse_args()
    return run_with_mock_and_redis(
        lambda base, redis_url: _main(args, base, redis_url),
        lambda mock_port, redis_port: (
            f"rounds {args.rounds} x {args.requests} requests, concurrency {args.concurrency}, "
            "A/B alternating\n"
            f"mock: turnout mock --port {mock_port}; redis-server --port {redis_port} (own processes)"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
