"""Plumbing the benchmark scripts share: ports, child processes, timed rounds, stats, header.

Each script runs as ``.venv/bin/python bench/bench_X.py``, so this folder is on ``sys.path``
and the scripts import this module as ``_common``.
"""

from __future__ import annotations

import asyncio
import datetime
import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable, Iterable, Mapping
from importlib import metadata
from pathlib import Path
from typing import Any

import aiohttp
import yaml


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_port(port: int, child: subprocess.Popen[bytes], what: str, poll: float = 0.05) -> None:
    """Block until ``port`` accepts a connection; fail if ``child`` exits or 20 s pass."""
    deadline = time.monotonic() + 20
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
            return
        except OSError:
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError(f"{what} did not start") from None
            time.sleep(poll)


def start_mock(port: int) -> subprocess.Popen[bytes]:
    """``turnout mock --port PORT`` in its own process, output discarded."""
    return subprocess.Popen(
        [sys.executable, "-m", "turnout", "mock", "--port", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


def run_with_mock_and_redis(
    main: Callable[[str, str], Awaitable[None]], describe: Callable[[int, int], str] | None = None
) -> int:
    """Start ``turnout mock`` and a throwaway ``redis-server`` (own processes, free ports), print
    the header, run ``main(mock_url, redis_url)``, stop both; 2 if redis-server is missing."""
    import shutil

    redis_bin = shutil.which("redis-server")
    if redis_bin is None:
        print("redis-server is not installed (apt-get install -y redis-server)", file=sys.stderr)
        return 2
    version = subprocess.run([redis_bin, "--version"], capture_output=True, text=True).stdout.strip()
    print_header(("aiohttp", "redis", "turnout"), version)
    mock_port, redis_port = free_port(), free_port()
    mock = start_mock(mock_port)
    redis = subprocess.Popen(
        [redis_bin, "--port", str(redis_port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        wait_port(mock_port, mock, "turnout mock")
        wait_port(redis_port, redis, "redis-server")
        if describe is not None:
            print(describe(mock_port, redis_port))
        asyncio.run(main(f"http://127.0.0.1:{mock_port}", f"redis://127.0.0.1:{redis_port}/0"))
    finally:
        for child in (mock, redis):
            child.terminate()
            child.wait(timeout=10)
    return 0


def pct(values: list[float], q: float) -> float:
    """The ``q`` quantile of ``values`` (seconds), in milliseconds."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))] * 1000


def rss_mb(pid: int | str = "self") -> tuple[float, float]:
    """(current RSS, peak RSS) of process ``pid``, in MB, from ``/proc``."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith(("VmRSS:", "VmHWM:")):
                out[line.split(":")[0]] = int(line.split()[1]) / 1024
    return out["VmRSS"], out["VmHWM"]


async def timed_round(
    call: Callable[[], Awaitable[Any]], requests: int, concurrency: int
) -> tuple[float, list[float], float]:
    """Run ``call`` ``requests`` times from ``concurrency`` workers.

    Returns (requests per second, each call's latency in seconds, client CPU seconds per call).
    """
    latencies: list[float] = []
    left = requests

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            t0 = time.perf_counter()
            await call()
            latencies.append(time.perf_counter() - t0)

    cpu0 = time.process_time()
    start = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(concurrency)))
    elapsed = time.perf_counter() - start
    return requests / elapsed, latencies, (time.process_time() - cpu0) / requests


def print_header(dists: Iterable[str], *extra: str) -> None:
    """The command, Python and package versions, CPUs, platform, any ``extra`` lines, the date."""
    versions = ", ".join(f"{d} {metadata.version(d)}" for d in dists)
    print(f"command: {' '.join([os.path.basename(sys.executable), *sys.argv])}")
    print(f"python {platform.python_version()}, {versions}, {os.cpu_count()} CPUs, {platform.platform()}")
    for line in extra:
        print(line)
    print(f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}")


def print_table(
    names: Iterable[str],
    rps: Mapping[str, list[float]],
    lat: Mapping[str, list[float]],
    cpu: Mapping[str, list[float]],
) -> None:
    """Median throughput, p50/p95/p99 latency and median client CPU per request, one row a name."""
    print(f"  {'':7} {'req/s (median)':>15} {'p50 ms':>8} {'p95 ms':>8} {'p99 ms':>8} {'CPU us/req':>11}")
    for name in names:
        v = lat[name]
        print(
            f"  {name:7} {statistics.median(rps[name]):15.0f} {pct(v, 0.5):8.2f} {pct(v, 0.95):8.2f}"
            f" {pct(v, 0.99):8.2f} {statistics.median(cpu[name]) * 1e6:11.0f}"
        )


def added_latency_table(
    title: str,
    names: Iterable[str],
    pairs: Iterable[tuple[str, str, str]],
    lat: Mapping[str, list[float]],
    rounds: Mapping[str, list[list[float]]],
) -> None:
    """p50/p99 per name, then for each ``(label, a, b)`` what ``a`` adds over ``b`` at p50 and p99:
    over every request, and as the median over rounds of each round's difference (steadier on a
    shared machine). Latencies in seconds, printed in ms."""
    print(title)
    for n in names:
        print(f"  {n:<10} p50 {pct(lat[n], 0.5):7.3f} p99 {pct(lat[n], 0.99):7.3f} ms  (n={len(lat[n])})")
    pairs = list(pairs)
    width = max(len(label) for label, _, _ in pairs)
    for label, a, b in pairs:
        d50 = pct(lat[a], 0.5) - pct(lat[b], 0.5)
        d99 = pct(lat[a], 0.99) - pct(lat[b], 0.99)
        each = list(zip(rounds[a], rounds[b], strict=True))
        r50 = statistics.median(pct(x, 0.5) - pct(y, 0.5) for x, y in each)
        r99 = statistics.median(pct(x, 0.99) - pct(y, 0.99) for x, y in each)
        print(
            f"  {label:<{width}} p50 {d50:+7.3f} p99 {d99:+7.3f} ms"
            f" | median of rounds p50 {r50:+7.3f} p99 {r99:+7.3f} ms"
        )


def sidecar_config(mock_url: str, model: str, prefix: str) -> Path:
    """A `turnout serve` configuration file (in a new temporary folder) with one OpenAI model on
    the mock at ``mock_url``, named ``model``: no retries, room for 1,024 requests at once."""
    config = {
        "providers": {
            "openai": {"kind": "openai", "base_url": f"{mock_url}/openai/v1", "api_key": "sk-bench"}
        },
        "models": {model: {"provider": "openai", "model": "gpt-4o-mini"}},
        "defaults": {"retries": 0},
        "server": {"max_concurrency": 1024},
    }
    path = Path(tempfile.mkdtemp(prefix=prefix)) / "router.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}


def stream_text(front: str, line: bytes) -> str | None:
    """The answer text one SSE line carries, if any, in a front end's format: ``chat`` (OpenAI chat
    completions), ``messages`` (Anthropic) or ``responses`` (OpenAI Responses)."""
    if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
        return None
    data = json.loads(line[6:])
    if front == "chat":
        return "".join((c.get("delta") or {}).get("content") or "" for c in data.get("choices", [])) or None
    if front == "messages":
        delta = data.get("delta") or {}
        return delta.get("text") if data.get("type") == "content_block_delta" else None
    return data.get("delta") if data.get("type") == "response.output_text.delta" else None


async def timed_stream(
    session: aiohttp.ClientSession, url: str, body: bytes, front: str = "chat"
) -> tuple[float, float, str, int]:
    """One streamed POST: (seconds to the first text, seconds to the end, the text, the lines
    that carried text)."""
    t0 = time.perf_counter()
    first = None
    text: list[str] = []
    async with session.post(url, data=body, headers=HEADERS) as r:
        assert r.status == 200, r.status
        async for line in r.content:
            piece = stream_text(front, line)
            if piece:
                if first is None:
                    first = time.perf_counter() - t0
                text.append(piece)
    return first or float("nan"), time.perf_counter() - t0, "".join(text), len(text)
