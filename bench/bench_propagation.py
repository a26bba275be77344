"""Benchmark: how long a replica's ejection takes to stop another replica, with and without leases.

Two routers (two replicas) share one ``redis-server`` (own process) and send traffic to the mock
(``turnout mock``, own process), both busy enough to admit ``gpt`` from a lease. At ``t0`` replica
A ejects ``gpt`` (its breaker trips: the ejection is queued to Redis); the figure is the time from
``t0`` to replica B refusing ``gpt`` (its breaker mirror opens: B's next lease renewal read the
shared ejection, or, without leases, its next admission did). B never sees a failure itself, so
the shared state is the only way it can learn. ``state.lease`` 0.25 s (the default) and 0 (one
Redis call per admission) alternate, one fresh pair of routers per trial.

    .venv/bin/python bench/bench_propagation.py [--trials 6] [--concurrency 4]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import time
from typing import Any

from _common import run_with_mock_and_redis

PROMPT = "Say hello to the bench."


class _Refused:
    """A router listener: the first time this replica's breaker for ``gpt`` opens."""

    def __init__(self) -> None:
        self.at: float | None = None
        self.event = asyncio.Event()

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        if model == "gpt" and new == "open" and self.at is None:
            self.at = time.perf_counter()
            self.event.set()

    def on_attempt(self, route: str, record: Any) -> None:
        return None

    def on_request(self, record: Any) -> None:
        return None


def _config(base: str, redis_url: str, prefix: str, lease: float) -> Any:
    from router import parse_config

    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": f"{base}/openai/v1", "api_key": "sk-b"},
                "mistral": {"kind": "mistral", "base_url": f"{base}/mistral", "api_key": "m-b"},
            },
            "models": {
                "gpt": {"provider": "openai", "model": "gpt-4o-mini", "rpm": 10**6, "tpm": 10**9},
                "mis": {"provider": "mistral", "model": "mistral-small-latest"},
            },
            "routes": {"chat": {"chain": ["gpt", "mis"]}},
            "defaults": {"retries": 0, "breaker": {"cooldown": "60s"}},
            "state": {"backend": "redis", "url": redis_url, "prefix": prefix, "timeout": "1s"}
            | {"lease": lease},
        }
    )


async def _trial(args: argparse.Namespace, base: str, redis_url: str, prefix: str, lease: float) -> float:
    from router import ChatRequest, Message, Router

    cfg = _config(base, redis_url, prefix, lease)
    refused = _Refused()
    a, b = Router(cfg), Router(cfg, listeners=[refused])
    request = ChatRequest(model="chat", messages=[Message("user", PROMPT)])
    stop = asyncio.Event()

    async def loop(r: Router) -> None:
        while not stop.is_set():
            await r.complete(request)

    tasks = [asyncio.create_task(loop(r)) for r in (a, b) for _ in range(args.concurrency)]
    try:
        await asyncio.sleep(args.warmup)  # both replicas busy: B admits gpt from a lease
        shared = b.deployment("gpt").breaker.shared
        leased = getattr(shared, "_lease_r", 0)
        t0 = time.perf_counter()
        a.deployment("gpt").breaker.trip(a.clock.now() + 60)  # A ejects gpt, for every replica
        await asyncio.wait_for(refused.event.wait(), 10)
        assert refused.at is not None
        took = refused.at - t0
        print(f"  lease {lease:g}s: B refused gpt {took * 1e3:7.2f} ms after A's ejection (B held {leased})")
        return took
    finally:
        stop.set()
        await asyncio.gather(*tasks)
        await a.aclose()
        await b.aclose()


async def _main(args: argparse.Namespace, base: str, redis_url: str) -> None:
    leases = (0.25, 0.0)
    took: dict[float, list[float]] = {x: [] for x in leases}
    for i in range(args.trials):
        for lease in leases:
            took[lease].append(await _trial(args, base, redis_url, f"prop{i}-{lease:g}", lease))
    print("\n== from A's ejection to B refusing the deployment ==")
    for lease in leases:
        t = took[lease]
        print(
            f"  state.lease {lease:g}s: median {statistics.median(t) * 1e3:.2f} ms, max {max(t) * 1e3:.2f} ms"
            f" over {len(t)} trials" + (f" (bound: one lease period, {lease * 1e3:.0f} ms)" if lease else "")
        )


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--trials", type=int, default=6, help="trials per setting (alternating)")
    parser.add_argument("--concurrency", type=int, default=4, help="requests in flight per replica")
    parser.add_argument("--warmup", type=float, default=0.5, help="seconds of traffic before the ejection")
    args = parser.parse_args()
    return run_with_mock_and_redis(
        lambda base, redis_url: _main(args, base, redis_url),
        lambda mock_port, redis_port: (
            f"2 replicas x c={args.concurrency}, {args.trials} trials per setting, alternating"
        ),
    )


if __name__ == "__main__":
    sys.exit(main())
