"""Benchmark: the mock's non-streaming OpenAI chat endpoint against a bare aiohttp handler.

Both servers run in one child process (one core for the servers, one for the client), on two
ports; the client is one long-lived ``aiohttp.ClientSession`` at fixed concurrency, alternating
rounds A B A B … so both see the same machine state. The bare handler returns a fixed JSON body
the size of the mock's answer. Target (BENCHMARKS.md): mock >= 0.5 x bare throughput.

    .venv/bin/python bench/bench_mock.py [--rounds 4] [--requests 4000] [--concurrency 16]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import statistics
import subprocess
import sys

from _common import pct, print_header, rss_mb, timed_round

PATH = "/openai/v1/chat/completions"
BODY = json.dumps(
    {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say hello to the bench."}]}
)
HEADERS = {"authorization": "Bearer sk-bench", "content-type": "application/json"}


# -- the child process: both servers ---------------------------------------------------------------


async def _serve() -> None:
    from aiohttp import web

    from mockproviders.core import MockCore
    from mockproviders.server import create_app

    core = MockCore()
    sample = await core.dispatch("POST", PATH, HEADERS, BODY.encode())
    fixed = sample.body or b"{}"
    core.reset()

    async def bare(request: web.Request) -> web.Response:
        await request.read()
        return web.Response(body=fixed, content_type="application/json")

    bare_app = web.Application()
    bare_app.router.add_post(PATH, bare)
    runners = []
    ports = []
    for app in (bare_app, create_app(core=core)):
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        runners.append(runner)
        ports.append(runner.addresses[0][1])
    print(json.dumps({"bare": ports[0], "mock": ports[1]}), flush=True)
    await asyncio.get_running_loop().run_in_executor(None, sys.stdin.read)  # until the parent closes stdin
    for runner in runners:
        await runner.cleanup()


# -- the parent: the client ------------------------------------------------------------------------


async def _round(session, url: str, requests: int, concurrency: int) -> tuple[float, list[float]]:  # type: ignore[no-untyped-def]
    async def post() -> None:
        async with session.post(url, data=BODY, headers=HEADERS) as resp:
            await resp.read()
            if resp.status != 200:
                raise RuntimeError(f"{url}: status {resp.status}")

    throughput, latencies, _ = await timed_round(post, requests, concurrency)
    return throughput, latencies


async def _client(args: argparse.Namespace, ports: dict[str, int], pid: int) -> None:
    import aiohttp

    urls = {name: f"http://127.0.0.1:{port}{PATH}" for name, port in ports.items()}
    rps: dict[str, list[float]] = {"bare": [], "mock": []}
    lat: dict[str, list[float]] = {"bare": [], "mock": []}
    connector = aiohttp.TCPConnector(limit=args.concurrency)
    async with aiohttp.ClientSession(connector=connector) as session:
        for name in ("bare", "mock"):  # warm up both
            await _round(session, urls[name], min(500, args.requests), args.concurrency)
        steady = []
        for r in range(args.rounds):
            for name in ("bare", "mock"):
                throughput, latencies = await _round(session, urls[name], args.requests, args.concurrency)
                rps[name].append(throughput)
                lat[name].extend(latencies)
                print(f"  round {r + 1} {name:4}: {throughput:8.0f} req/s", flush=True)
            steady.append(rss_mb(pid)[0])
    print()
    print(f"{'':6} {'req/s (median)':>15} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name in ("bare", "mock"):
        vals = lat[name]
        med = statistics.median(rps[name])
        print(f"{name:6} {med:15.0f} {pct(vals, 0.5):8.2f} {pct(vals, 0.95):8.2f} {pct(vals, 0.99):8.2f}")
    ratio = statistics.median(rps["mock"]) / statistics.median(rps["bare"])
    verdict = "meets" if ratio >= 0.5 else "MISSES"
    print(f"\nratio mock/bare throughput: {ratio:.2f} ({verdict} the >= 0.50 target)")
    pairs = [m / b for m, b in zip(rps["mock"], rps["bare"], strict=True)]
    print(f"per-round ratios: {', '.join(f'{p:.2f}' for p in pairs)} (median {statistics.median(pairs):.2f})")
    peak = rss_mb(pid)[1]
    print(f"server process RSS: steady {statistics.median(steady):.1f} MB, peak {peak:.1f} MB")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0] if __doc__ else None)
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--requests", type=int, default=4000, help="requests per round")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--serve", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve:
        asyncio.run(_serve())
        return 0
    print_header(("aiohttp", "turnout"))
    print(f"rounds {args.rounds} x {args.requests} requests, concurrency {args.concurrency}\n")
    child = subprocess.Popen(
        [sys.executable, __file__, "--serve"], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert child.stdout is not None
        ports = json.loads(child.stdout.readline())
        asyncio.run(_client(args, ports, child.pid))
    finally:
        if child.stdin is not None:
            child.stdin.close()
        child.wait(timeout=10)
    return 0


if __name__ == "__main__":
    sys.exit(main())
