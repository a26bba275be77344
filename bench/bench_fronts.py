"""Added latency of the sidecar's Anthropic Messages and OpenAI Responses front ends against its
chat-completions front end, in the same run, on the same sidecar, route and mock upstream.

    .venv/bin/python bench/bench_fronts.py [--requests 1500] [--rounds 6] [--stream-requests 300]

One ``turnout serve`` in front of ``turnout mock``; every request names the same one-deployment
route (OpenAI's ``gpt-4o-mini`` on the mock), so the upstream call is the same and the difference
between front ends is their own parsing and answer writing. Requests go one at a time (c=1), the
three front ends alternating in rotated order each round. Printed per front end: p50/p99 of the
whole request, the difference to chat (``messages - chat``, ``responses - chat``), the median of
the per-round differences, the sidecar's own ``x-turnout-overhead-ms``, and for streams the time
to the first text and to the end of the stream.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import subprocess
import sys
import time

import aiohttp
from _common import (
    HEADERS,
    added_latency_table,
    free_port,
    pct,
    print_header,
    sidecar_config,
    start_mock,
    timed_stream,
    wait_port,
)

ASK = [{"role": "user", "content": "Say something about trains."}]
FRONTS = {
    "chat": ("/v1/chat/completions", {"model": "gpt", "messages": ASK}),
    "messages": ("/v1/messages", {"model": "gpt", "max_tokens": 256, "messages": ASK}),
    "responses": ("/v1/responses", {"model": "gpt", "input": ASK}),
}
NAMES = tuple(FRONTS)
SERVE = [sys.executable, "-m", "turnout", "serve"]
PAIRS = tuple((f"{n} - chat", n, "chat") for n in NAMES[1:])


async def one(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, float]:
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=HEADERS) as r:
        await r.read()
        assert r.status == 200, (r.status, await r.text())
        overhead = float(r.headers["x-turnout-overhead-ms"]) / 1000
    return time.perf_counter() - t0, overhead


async def run(args: argparse.Namespace, base: str) -> None:
    bodies = {n: json.dumps(b).encode() for n, (_, b) in FRONTS.items()}
    sbodies = {n: json.dumps({**b, "stream": True}).encode() for n, (_, b) in FRONTS.items()}
    urls = {n: base + path for n, (path, _) in FRONTS.items()}
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=0)) as session:
        for n in NAMES:  # warm up every path
            for _ in range(200):
                await one(session, urls[n], bodies[n])
        lat: dict[str, list[float]] = {n: [] for n in NAMES}
        rounds: dict[str, list[list[float]]] = {n: [] for n in NAMES}
        over: dict[str, list[float]] = {n: [] for n in NAMES}
        per = max(1, args.requests // args.rounds)
        for r in range(args.rounds):
            for n in NAMES[r % 3 :] + NAMES[: r % 3]:
                got = [await one(session, urls[n], bodies[n]) for _ in range(per)]
                rounds[n].append([g[0] for g in got])
                lat[n] += rounds[n][-1]
                over[n] += [g[1] for g in got]
        added_latency_table("non-streaming, c=1: whole request", NAMES, PAIRS, lat, rounds)
        print(
            "  x-turnout-overhead-ms p50: "
            + ", ".join(f"{n} {pct(over[n], 0.5):.3f}" for n in NAMES)
            + " | p99: "
            + ", ".join(f"{n} {pct(over[n], 0.99):.3f}" for n in NAMES)
        )
        ttft: dict[str, list[float]] = {n: [] for n in NAMES}
        whole: dict[str, list[float]] = {n: [] for n in NAMES}
        differ = 0
        for i in range(args.stream_requests):
            texts = {}
            for n in NAMES[i % 3 :] + NAMES[: i % 3]:
                first, total, texts[n], _ = await timed_stream(session, urls[n], sbodies[n], n)
                ttft[n].append(first)
                whole[n].append(total)
            differ += len(set(texts.values())) != 1
        k = max(1, args.stream_requests // args.rounds)
        added_latency_table(
            "streaming, c=1: time to first text",
            NAMES,
            PAIRS,
            ttft,
            {n: [ttft[n][i : i + k] for i in range(0, len(ttft[n]) - k + 1, k)] for n in NAMES},
        )
        added_latency_table(
            "streaming, c=1: whole stream",
            NAMES,
            PAIRS,
            whole,
            {n: [whole[n][i : i + k] for i in range(0, len(whole[n]) - k + 1, k)] for n in NAMES},
        )
        print(f"  streams compared {args.stream_requests}; text differing between front ends: {differ}")


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=1500, help="requests per front end")
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--stream-requests", type=int, default=300)
    args = parser.parse_args()
    mock_port, side_port = free_port(), free_port()
    mock_url = f"http://127.0.0.1:{mock_port}"
    config = sidecar_config(mock_url, "gpt", "bench-fronts-")
    mock = start_mock(mock_port)
    side = subprocess.Popen(
        [*SERVE, "--config", str(config), "--port", str(side_port), "--log-level", "warning"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(mock_port, mock, "turnout mock")
        wait_port(side_port, side, "turnout serve")
        print_header(
            ["aiohttp", "anthropic", "openai"],
            "upstream: turnout mock (OpenAI chat, gpt-4o-mini) on this machine; one sidecar;"
            " the machine is shared with other work, so compare figures within this run only",
        )
        asyncio.run(run(args, f"http://127.0.0.1:{side_port}"))
    finally:
        for proc in (side, mock):
            proc.terminate()
            proc.wait()


if __name__ == "__main__":
    main()
