"""Benchmark: Router.complete against a bare aiohttp client, on the same mock, in one run.

The mock (``turnout mock``) runs in a child process, so it does not share the client's event
loop; the client process runs both the bare ``aiohttp.ClientSession`` and the router, alternating
rounds A B A B at fixed concurrency. Two scenarios (BENCHMARKS.md targets):

- healthy: the route's first model answers; target router >= 0.6 x bare throughput;
- fallback: a chaos rule makes the first model answer 503 to every request, so each router
  request makes two HTTP calls (503, then the fallback); target >= 0.3 x bare throughput.
  (Retries are 0 and the health model's thresholds are out of reach here, so every request really
  does hit the 503 first: with the defaults the dead model would be ejected and skipped.)

Besides throughput and latency it prints the client's CPU time per request (the router's real
cost, which a saturated mock can hide), RSS, versions and the command.

    .venv/bin/python bench/bench_router.py [--rounds 4] [--requests 3000] [--concurrency 32]
        [--scenario healthy|fallback|both] [--profile FILE.html]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import resource
import statistics
import sys
from pathlib import Path
from typing import Any

from _common import free_port, print_header, print_table, rss_mb, start_mock, timed_round, wait_port

PRIMARY, FALLBACK = "gpt-4o", "gpt-4o-mini"
PROMPT = "Say hello to the bench."
HEADERS = {"authorization": "Bearer sk-bench", "content-type": "application/json"}


def _config(base: str) -> Any:
    from router import parse_config

    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": f"{base}/openai/v1", "api_key": "sk-bench"}
            },
            "models": {
                "primary": {"provider": "openai", "model": PRIMARY},
                "fallback": {"provider": "openai", "model": FALLBACK},
            },
            "routes": {"bench": {"chain": ["primary", "fallback"]}},
            # ejection out of reach (no run, age or rate of failures ejects): every request pays
            "defaults": {
                "retries": 0,
                "breaker": {"failures": 1_000_000_000, "min_calls": 1_000_000_000, "failing_for": "1000000s"},
            },
        }
    )


async def _scenario(name: str, args: argparse.Namespace, base: str) -> dict[str, float]:
    import aiohttp

    from router import ChatRequest, Message, Router

    async with aiohttp.ClientSession() as control:
        async with control.delete(f"{base}/_chaos/rules") as r:
            r.raise_for_status()
        if name == "fallback":
            rule = {
                "name": "primary-503",
                "fault": "server_error",
                "params": {"status": 503},
                "match": {"model": PRIMARY},
            }
            async with control.post(f"{base}/_chaos/rules", json=rule) as r:
                r.raise_for_status()

    url = f"{base}/openai/v1/chat/completions"
    body = json.dumps({"model": FALLBACK, "messages": [{"role": "user", "content": PROMPT}]})
    session = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=args.concurrency))
    router = Router(_config(base))
    request = ChatRequest(model="bench", messages=[Message("user", PROMPT)])
    expected = "primary" if name == "healthy" else "fallback"

    async def bare() -> None:
        async with session.post(url, data=body, headers=HEADERS) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"bare: status {resp.status}")

    async def routed() -> None:
        resp = await router.complete(request)
        if resp.model != expected:
            raise RuntimeError(f"router answered from {resp.model}, expected {expected}")

    calls = {"bare": bare, "router": routed}
    rps: dict[str, list[float]] = {"bare": [], "router": []}
    lat: dict[str, list[float]] = {"bare": [], "router": []}
    cpu: dict[str, list[float]] = {"bare": [], "router": []}
    try:
        for who in ("bare", "router"):  # warm up both
            await timed_round(calls[who], min(500, args.requests), args.concurrency)
        print(f"\n== {name} ==")
        for i in range(args.rounds):
            for who in ("bare", "router"):
                throughput, latencies, cpu_per = await timed_round(
                    calls[who], args.requests, args.concurrency
                )
                rps[who].append(throughput)
                lat[who].extend(latencies)
                cpu[who].append(cpu_per)
                print(
                    f"  round {i + 1} {who:6}: {throughput:7.0f} req/s,"
                    f" client CPU {cpu_per * 1e6:5.0f} us/req",
                    flush=True,
                )
        if args.profile and name == args.profile_scenario:
            from pyinstrument import Profiler

            profiler = Profiler(interval=0.0005, async_mode="disabled")
            profiler.start()
            await timed_round(routed, args.requests, args.concurrency)
            profiler.stop()
            await asyncio.to_thread(Path(args.profile).write_text, profiler.output_html())
            print(profiler.output_text(unicode=False, color=False, show_all=False)[:6000])
    finally:
        await router.aclose()
        await session.close()
    print_table(("bare", "router"), rps, lat, cpu)
    ratio = statistics.median(rps["router"]) / statistics.median(rps["bare"])
    pairs = [r / b for r, b in zip(rps["router"], rps["bare"], strict=True)]
    target = 0.6 if name == "healthy" else 0.3
    verdict = "meets" if ratio >= target else "MISSES"
    print(
        f"  ratio router/bare throughput: {ratio:.2f} ({verdict} the >= {target} target);"
        f" per round: {', '.join(f'{p:.2f}' for p in pairs)}"
    )
    return {"ratio": ratio}


async def _main(args: argparse.Namespace, base: str) -> None:
    steady = []
    for name in ("healthy", "fallback") if args.scenario == "both" else (args.scenario,):
        await _scenario(name, args, base)
        steady.append(rss_mb()[0])
    peak = rss_mb()[1]
    steady_mb = statistics.median(steady)
    print(f"\nclient process RSS (bare client + router): steady {steady_mb:.1f} MB, peak {peak:.1f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=3000, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--scenario", choices=["healthy", "fallback", "both"], default="both")
    parser.add_argument(
        "--profile", metavar="FILE.html", help="profile one extra router round (pyinstrument)"
    )
    parser.add_argument("--profile-scenario", choices=["healthy", "fallback"], default="healthy")
    args = parser.parse_args()
    print_header(("aiohttp", "turnout", "pydantic"))
    print(f"rounds {args.rounds} x {args.requests} requests, concurrency {args.concurrency}, A/B alternating")
    port = free_port()
    child = start_mock(port)
    try:
        wait_port(port, child, "turnout mock", poll=0.1)
        print(f"mock: turnout mock --port {port} (pid {child.pid}, its own process)")
        asyncio.run(_main(args, f"http://127.0.0.1:{port}"))
    finally:
        child.terminate()
        child.wait(timeout=10)
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    print(f"mock process CPU: {usage.ru_utime + usage.ru_stime:.1f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
