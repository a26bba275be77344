"""Added latency of the sidecar: direct-to-mock versus via `turnout serve`, same run, A B A B.

    python bench/bench_sidecar.py [--requests 2000] [--rounds 6] [--stream-requests 400]

The mock (`turnout mock`) and the sidecar (`turnout serve`) each run in their own process; the
client is this process, one long-lived aiohttp session per target. For each concurrency (1, 32)
the two targets alternate in blocks; figures are p50/p99 of each and their difference (added
latency). Streams: added time to first token, and chunks lost (every streamed answer via the
sidecar must carry exactly the text of the direct one). The sidecar's RSS is sampled under load.
Targets (BENCHMARKS.md): p50 added <= 0.5 ms and p99 <= 1.5 ms at c=1; 0 lost chunks; RSS <= 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import socket
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
import yaml

HEADERS = {"Content-Type": "application/json", "Authorization": "Bearer sk-bench"}
BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something about trains."}]}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (less sensitive to a busy machine than wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def pct(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


async def start(cmd: list[str], ready: Callable[[], Awaitable[bool]]) -> asyncio.subprocess.Process:
    proc = await asyncio.create_subprocess_exec(
        *cmd, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    for _ in range(600):
        if await ready():
            return proc
        if proc.returncode is not None:
            raise SystemExit(f"{' '.join(cmd)} exited: {(await proc.stderr.read()).decode()}")  # type: ignore[union-attr]
        await asyncio.sleep(0.05)
    raise SystemExit(f"{' '.join(cmd)} did not come up")


async def up(session: aiohttp.ClientSession, url: str) -> bool:
    try:
        async with session.get(url) as r:
            return r.status == 200
    except aiohttp.ClientError:
        return False


async def one(
    session: aiohttp.ClientSession, url: str, body: bytes, out: list[float], extra: list[float]
) -> None:
    t0 = time.perf_counter()
    async with session.post(url, data=body, headers=HEADERS) as r:
        await r.read()
        assert r.status == 200, r.status
        overhead = r.headers.get("x-turnout-overhead-ms")
    out.append(time.perf_counter() - t0)
    if overhead is not None:
        extra.append(float(overhead) / 1000)


async def block(
    session: aiohttp.ClientSession,
    url: str,
    body: bytes,
    n: int,
    conc: int,
    out: list[float],
    extra: list[float],
) -> None:
    per = n // conc

    async def worker() -> None:
        for _ in range(per):
            await one(session, url, body, out, extra)

    await asyncio.gather(*(worker() for _ in range(conc)))


async def stream_one(session: aiohttp.ClientSession, url: str, body: bytes) -> tuple[float, str, int]:
    """(time to first content chunk, the whole text, content chunks)."""
    t0 = time.perf_counter()
    ttft = None
    text: list[str] = []
    async with session.post(url, data=body, headers=HEADERS) as r:
        assert r.status == 200, r.status
        async for line in r.content:
            if not line.startswith(b"data: ") or line.startswith(b"data: [DONE]"):
                continue
            chunk = json.loads(line[6:])
            for choice in chunk.get("choices", []):
                content = choice.get("delta", {}).get("content")
                if content:
                    if ttft is None:
                        ttft = time.perf_counter() - t0
                    text.append(content)
    return ttft or float("nan"), "".join(text), len(text)


def row(name: str, direct: list[float], via: list[float]) -> str:
    d50, d99, v50, v99 = pct(direct, 0.5), pct(direct, 0.99), pct(via, 0.5), pct(via, 0.99)
    return (
        f"{name:<14} direct p50 {d50 * 1e3:7.3f} p99 {d99 * 1e3:7.3f} ms | sidecar p50 {v50 * 1e3:7.3f} "
        f"p99 {v99 * 1e3:7.3f} ms | added p50 {(v50 - d50) * 1e3:+7.3f} p99 {(v99 - d99) * 1e3:+7.3f} ms"
    )


async def main(args: argparse.Namespace) -> None:
    mock_port, side_port = free_port(), free_port()
    mock_url = f"http://127.0.0.1:{mock_port}"
    side_url = f"http://127.0.0.1:{side_port}"
    config = {
        "providers": {
            "openai": {"kind": "openai", "base_url": f"{mock_url}/openai/v1", "api_key": "sk-bench"}
        },
        "models": {"gpt-4o-mini": {"provider": "openai", "model": "gpt-4o-mini"}},
        "defaults": {"retries": 0},
        "server": {"max_concurrency": 1024},
    }
    tmp = Path(tempfile.mkdtemp(prefix="bench-sidecar-"))
    (tmp / "router.yaml").write_text(yaml.safe_dump(config))
    py = sys.executable
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        mock = await start(
            [py, "-m", "turnout", "mock", "--port", str(mock_port)],
            lambda: up(session, f"{mock_url}/_mock/health"),
        )
        side = await start(
            [
                py,
                "-m",
                "turnout",
                "serve",
                "--config",
                str(tmp / "router.yaml"),
                "--port",
                str(side_port),
                "--log-level",
                "warning",
            ],
            lambda: up(session, f"{side_url}/readyz"),
        )
        try:
            await run(args, session, mock_url, side_url, side.pid)
        finally:
            for proc in (side, mock):
                proc.terminate()
                await proc.wait()


async def run(
    args: argparse.Namespace, session: aiohttp.ClientSession, mock_url: str, side_url: str, pid: int
) -> None:
    direct_url, via_url = f"{mock_url}/openai/v1/chat/completions", f"{side_url}/v1/chat/completions"
    body = json.dumps(BODY).encode()
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    load = " ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average before the run: {load} (other work on the machine inflates every figure)")
    print(
        f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}"
        f"  python {platform.python_version()}"
        f"  aiohttp {aiohttp.__version__}  cpus {os.cpu_count()}  requests/target/concurrency {args.requests}"
        f" in {args.rounds} alternating rounds"
    )
    warm: list[float] = []
    await block(session, direct_url, body, 200, 8, warm, warm)
    await block(session, via_url, body, 200, 8, warm, warm)
    rss: list[float] = [rss_mb(pid)]
    for conc in (1, 32):
        direct: list[float] = []
        via: list[float] = []
        overhead: list[float] = []
        per_round = max(conc, args.requests // args.rounds // conc * conc)
        t_direct = t_via = cpu = 0.0
        for _ in range(args.rounds):
            t0 = time.perf_counter()
            await block(session, direct_url, body, per_round, conc, direct, [])
            t1 = time.perf_counter()
            c0 = cpu_s(pid)
            await block(session, via_url, body, per_round, conc, via, overhead)
            cpu += cpu_s(pid) - c0
            t_direct += t1 - t0
            t_via += time.perf_counter() - t1
            rss.append(rss_mb(pid))
        print(row(f"c={conc}", direct, via))
        print(
            f"{'':<14} throughput direct {len(direct) / t_direct:8.0f}/s sidecar {len(via) / t_via:8.0f}/s"
            f" (ratio {len(via) / t_via / (len(direct) / t_direct):.2f}) | sidecar's own overhead header"
            f" p50 {pct(overhead, 0.5) * 1e3:.3f} p99 {pct(overhead, 0.99) * 1e3:.3f} ms"
            f" | sidecar CPU {cpu / len(via) * 1e3:.3f} ms/request"
        )
    sbody = json.dumps({**BODY, "stream": True}).encode()
    ttft_d: list[float] = []
    ttft_v: list[float] = []
    lost = 0
    for i in range(args.stream_requests):
        d = await stream_one(session, direct_url, sbody)
        v = await stream_one(session, via_url, sbody)
        ttft_d.append(d[0])
        ttft_v.append(v[0])
        if v[1] != d[1]:
            lost += 1
            if lost == 1:
                print(f"stream {i}: texts differ: direct {d[1]!r} via {v[1]!r}")
    print(row("stream TTFT", ttft_d, ttft_v))
    print(f"{'':<14} streamed answers compared {args.stream_requests}, with lost or changed chunks: {lost}")
    steady = statistics.median(rss[len(rss) // 2 :])
    print(f"sidecar RSS: start {rss[0]:.1f} MB, peak {max(rss):.1f} MB, steady {steady:.1f} MB (under load)")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000, help="requests per target per concurrency")
    parser.add_argument("--rounds", type=int, default=6, help="alternating blocks per target")
    parser.add_argument("--stream-requests", type=int, default=300)
    asyncio.run(main(parser.parse_args()))
