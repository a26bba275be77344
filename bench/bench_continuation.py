"""What continuing a cut stream costs the caller: the wait between the last text before the cut
and the next text, against the same stream's normal gaps and a fresh stream's first token.

    .venv/bin/python bench/bench_continuation.py [--streams 300] [--provider anthropic|mistral]

`turnout mock` runs in its own process with a chaos scenario that cuts the primary key's
streams after a few tokens on every other stream to it ("fail 1, pass 1": a stream is cut, its
continuation is not). The router (the library, in this process) streams one request at a time,
alternating a clean route (another key, same model: the baseline, same run) and the cut one:

- ``splice gap``: on a continued stream, from the last text before the cut to the first text of
  the continuation, as the caller sees it: noticing the cut, one more request upstream (with the
  prefill), its first token;
- ``inter-token gap``: every other gap between two texts of the same streams (the normal pace);
- ``fresh TTFT``: a clean stream's time to first text through the router.

The mock streams without latency, so these are the router's and the loopback's costs alone; a
real provider adds its own time to first token to the splice gap. A cut here is a closed
connection, noticed at once; a stall is noticed only after the route's ``idle`` limit, which
then comes on top. The machine is shared: read the ratios, not the milliseconds.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml
from _common import free_port, pct, print_header, wait_port

from router import ChatRequest, Message, Router, StreamEnd, TextDelta, parse_config


def scenario(provider: str) -> dict[str, object]:
    return {
        "name": "bench-continuation",
        "seed": 1,
        "rules": [
            {
                "name": "cut",
                "fault": "cut",
                "params": {"after_tokens": 6},
                "match": {"provider": provider, "api_key": "sk-cut"},
                "when": {"sequence": "fail 1, pass 1"},
            }
        ],
    }


def config(url: str, provider: str) -> dict[str, object]:
    base = f"{url}/anthropic" if provider == "anthropic" else f"{url}/mistral"
    model = "claude-haiku-4-5" if provider == "anthropic" else "mistral-small-latest"
    return {
        "providers": {
            "cut": {"kind": provider, "base_url": base, "api_key": "sk-cut"},
            "clean": {"kind": provider, "base_url": base, "api_key": "sk-clean"},
        },
        "models": {
            "cut": {"provider": "cut", "model": model, "max_tokens": 200},
            "clean": {"provider": "clean", "model": model, "max_tokens": 200},
        },
        "defaults": {"retries": 0, "breaker": {"failures": 1_000_000, "stream_failure_rate": 1.0}},
    }


async def one(router: Router, model: str) -> tuple[list[float], str, int]:
    """Stream one answer from ``model``: the times of its text deltas (from the request's start),
    the text, and the number of attempts."""
    req = ChatRequest(model=model, messages=[Message("user", "Say something about trains.")])
    t0 = time.perf_counter()
    times: list[float] = []
    parts: list[str] = []
    attempts = 0
    async for ev in router.stream(req):
        if isinstance(ev, TextDelta):
            times.append(time.perf_counter() - t0)
            parts.append(ev.text)
        elif isinstance(ev, StreamEnd):
            attempts = ev.response.attempts
    return times, "".join(parts), attempts


async def measure(url: str, args: argparse.Namespace) -> tuple[list[float], list[float], list[float]]:
    """(splice gaps, other inter-token gaps, fresh TTFTs) in seconds."""
    splice: list[float] = []
    gaps: list[float] = []
    ttft: list[float] = []
    async with Router(parse_config(config(url, args.provider))) as router:
        for _ in range(20):  # warm up both routes and the connection pool
            await one(router, "clean")
            await one(router, "cut")
        for _ in range(args.streams):
            times, clean_text, _ = await one(router, "clean")
            ttft.append(times[0])
            gaps.extend(b - a for a, b in itertools.pairwise(times))
            times, text, attempts = await one(router, "cut")
            if text != clean_text:
                raise SystemExit("a continued stream differs from the clean one: the splice is wrong")
            if attempts < 2:
                continue  # this one was not cut (the sequence is per mock request)
            deltas = [b - a for a, b in itertools.pairwise(times)]
            worst = max(range(len(deltas)), key=deltas.__getitem__)
            splice.append(deltas[worst])  # the cut is the one long gap of the stream
            gaps.extend(d for i, d in enumerate(deltas) if i != worst)
    return splice, gaps, ttft


def main(args: argparse.Namespace) -> None:
    port = free_port()
    faults = Path(tempfile.mkdtemp(prefix="bench-continuation-")) / "faults.yaml"
    faults.write_text(yaml.safe_dump(scenario(args.provider)))
    mock = subprocess.Popen(
        [sys.executable, "-m", "turnout", "mock", "--port", str(port), "--scenario", str(faults)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(port, mock, "turnout mock")
        splice, gaps, ttft = asyncio.run(measure(f"http://127.0.0.1:{port}", args))
    finally:
        mock.terminate()
        mock.wait()
    print_header(["aiohttp"], f"provider: {args.provider}; a machine shared with other work")
    print(
        f"streams: {args.streams} clean + {args.streams} on the cut route; "
        f"continued: {len(splice)}, every one equal to the clean text"
    )
    print(f"  {'':16} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8}")
    for name, values in (("splice gap", splice), ("inter-token gap", gaps), ("fresh TTFT", ttft)):
        print(f"  {name:16} {pct(values, 0.5):8.3f} {pct(values, 0.95):8.3f} {pct(values, 0.99):8.3f}")
    print(
        f"splice gap / fresh TTFT (medians): {statistics.median(splice) / statistics.median(ttft):.2f}; "
        f"extra cost of a continuation (median splice gap - median inter-token gap): "
        f"{(statistics.median(splice) - statistics.median(gaps)) * 1000:.3f} ms"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--streams", type=int, default=300)
    parser.add_argument("--provider", choices=["anthropic", "mistral"], default="anthropic")
    main(parser.parse_args())
