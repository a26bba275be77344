"""Added latency of the sidecar: direct-to-mock, via a bare proxy, and via `turnout serve`, same run.

    .venv/bin/python bench/bench_sidecar.py [--requests 3000] [--rounds 6] [--stream-requests 300]
        [--concurrency 1 32]

Three targets, each served by its own process, the client being this process (one long-lived
aiohttp session per target):

- ``direct``: the mock (`turnout mock`) itself;
- ``proxy``: a bare pass-through proxy in front of the mock (this script, run with
  ``--serve-proxy``) on the sidecar's own stack (its front door, turnout's HTTP client,
  uvloop): read the body, POST it upstream, copy the answer back (streams chunk by chunk). It
  is the floor of "one more loopback HTTP hop" with that stack, so ``proxy - direct`` is the hop
  itself and ``sidecar - proxy`` is turnout's own work;
- ``sidecar``: `turnout serve` with one route to the mock.

For each concurrency the targets run in blocks, in an order rotated every round (so none always
goes first after an idle pause). Latency figures are over every request of a target; the added
latency is also given as the median over rounds of each round's difference, which is steadier
on a shared machine. Streams (one at a time, the three targets in turn): added time to first
token, and chunks lost (every streamed answer via the sidecar must carry exactly the text of
the direct one). The sidecar's RSS is sampled after every block.
Targets (BENCHMARKS.md): c=1 added p50 <= 0.5 ms and p99 <= 1.5 ms; added TTFT <= 1 ms;
0 lost chunks; steady RSS <= 100 MB.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import aiohttp
from _common import HEADERS, added_latency_table, free_port, pct, sidecar_config, timed_stream

BODY = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "Say something about trains."}]}
TARGETS = ("direct", "proxy", "sidecar")


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process so far (less sensitive to a busy machine than wall time)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def load_avg() -> str:
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


# --- the bare pass-through proxy (the second baseline), run in its own process ---------------------


def serve_proxy(port: int, upstream: str) -> None:
    """A bare pass-through proxy on the sidecar's own stack, with nothing else done.

    The same front door (:class:`router.sidecar.front.Front`, aiohttp behind it for other
    paths), the same client (:class:`router.transport.HttpPool`) and the same event loop (uvloop
    where `turnout serve` would use it) as the sidecar, so ``sidecar - proxy`` is turnout's own
    work and ``proxy - direct`` is the hop itself.
    """
    from aiohttp import web

    from router.sidecar.front import Exchange, Front
    from router.transport import HttpPool

    pool = HttpPool(limit=1024)
    target = upstream + "/openai/v1/chat/completions"

    async def dispatch(kind: str, ex: Exchange) -> None:
        headers = {"content-type": "application/json", "authorization": ex.headers["authorization"]}
        up = await pool.post(target, ex.body, headers)
        ctype = up.headers.get("Content-Type", "")
        try:
            if ctype.startswith("text/event-stream"):
                await ex.start(up.status, {"content-type": ctype}, await up.readany())
                while chunk := await up.readany():
                    await ex.write(chunk)
                await ex.end()
                return
            ex.respond(up.status, {"content-type": ctype}, await up.read())
        finally:
            up.release()

    async def health(request: web.Request) -> web.Response:
        return web.Response(text="ok")

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/health", health)
        runner = web.AppRunner(app, access_log=None, handle_signals=False)
        await runner.setup()
        assert runner.server is not None
        front = Front(dispatch, runner.server, max_body=1 << 20)
        await asyncio.get_running_loop().create_server(front, "127.0.0.1", port, backlog=1024)
        await asyncio.Event().wait()

    from router.sidecar.serve import loop_factory

    with asyncio.Runner(loop_factory=loop_factory("auto")) as runner:  # as `turnout serve` picks it
        runner.run(main())


# --- the client ------------------------------------------------------------------------------------


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
    # Connection: close: a kept-alive probe connection would be reused for the measured requests,
    # and the front door hands a connection that asked for another path to aiohttp for good.
    try:
        async with session.get(url, headers={"Connection": "close"}) as r:
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


PAIRS = (
    ("sidecar - direct (added)", "sidecar", "direct"),
    ("proxy   - direct (the hop)", "proxy", "direct"),
    ("sidecar - proxy  (turnout)", "sidecar", "proxy"),
)


async def main(args: argparse.Namespace) -> None:
    mock_port, proxy_port, side_port = free_port(), free_port(), free_port()
    mock_url = f"http://127.0.0.1:{mock_port}"
    proxy_url = f"http://127.0.0.1:{proxy_port}"
    side_url = f"http://127.0.0.1:{side_port}"
    config = sidecar_config(mock_url, "gpt-4o-mini", "bench-sidecar-")
    py = sys.executable
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector) as session:
        mock = await start(
            [py, "-m", "turnout", "mock", "--port", str(mock_port)],
            lambda: up(session, f"{mock_url}/_mock/health"),
        )
        procs = [mock]
        try:
            proxy = await start(
                [py, __file__, "--serve-proxy", str(proxy_port), "--upstream", mock_url],
                lambda: up(session, f"{proxy_url}/health"),
            )
            procs.insert(0, proxy)
            side = await start(
                [
                    py,
                    "-m",
                    "turnout",
                    "serve",
                    "--config",
                    str(config),
                    "--port",
                    str(side_port),
                    "--log-level",
                    "warning",
                ],
                lambda: up(session, f"{side_url}/readyz"),
            )
            procs.insert(0, side)
            urls = {
                "direct": f"{mock_url}/openai/v1/chat/completions",
                "proxy": f"{proxy_url}/v1/chat/completions",
                "sidecar": f"{side_url}/v1/chat/completions",
            }
            await run(args, session, urls, side.pid, proxy.pid)
        finally:
            for proc in procs:
                proc.terminate()
                await proc.wait()


def _version_or_none(dist: str) -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version(dist)
    except PackageNotFoundError:
        return "none"


def git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True, check=True
        )
        dirty = subprocess.run(
            ["git", "status", "--porcelain", "--", "router/sidecar"], capture_output=True, text=True
        )
        return out.stdout.strip() + (" (router/sidecar modified)" if dirty.stdout.strip() else "")
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


async def run(
    args: argparse.Namespace,
    session: aiohttp.ClientSession,
    urls: dict[str, str],
    pid: int,
    proxy_pid: int,
) -> None:
    from importlib.metadata import version

    body = json.dumps(BODY).encode()
    print(f"command: {' '.join([sys.executable, *sys.argv])}")
    print(
        f"date: {datetime.datetime.now(datetime.UTC).isoformat(timespec='seconds')}  commit {git_commit()}"
        f"  python {platform.python_version()}  aiohttp {aiohttp.__version__}"
        f"  prometheus_client {version('prometheus_client')}  httptools {version('httptools')}"
        f"  uvloop {_version_or_none('uvloop')}  cpus {os.cpu_count()}"
    )
    print(
        f"requests/target/concurrency {args.requests} in {args.rounds} rounds (order rotated);"
        f" load average before the run: {load_avg()} (other work on the machine inflates every figure)"
    )
    warm: list[float] = []
    for t in TARGETS:
        await block(session, urls[t], body, 400, 8, warm, warm)
    rss: list[float] = [rss_mb(pid)]
    for conc in args.concurrency:
        lat: dict[str, list[float]] = {t: [] for t in TARGETS}
        rounds: dict[str, list[list[float]]] = {t: [] for t in TARGETS}
        overhead: list[float] = []
        wall = dict.fromkeys(TARGETS, 0.0)
        cpu = {"sidecar": 0.0, "proxy": 0.0}
        pids = {"sidecar": pid, "proxy": proxy_pid}
        per_round = max(conc, args.requests // args.rounds // conc * conc)
        for r in range(args.rounds):
            for t in TARGETS[r % 3 :] + TARGETS[: r % 3]:
                out: list[float] = []
                c0 = cpu_s(pids[t]) if t in pids else 0.0
                t0 = time.perf_counter()
                await block(session, urls[t], body, per_round, conc, out, overhead)
                wall[t] += time.perf_counter() - t0
                if t in pids:
                    cpu[t] += cpu_s(pids[t]) - c0
                lat[t] += out
                rounds[t].append(out)
            rss.append(rss_mb(pid))
        added_latency_table(f"c={conc} (load average now {load_avg()})", TARGETS, PAIRS, lat, rounds)
        rate = {t: len(lat[t]) / wall[t] for t in TARGETS}
        print(
            f"  throughput direct {rate['direct']:.0f}/s proxy {rate['proxy']:.0f}/s"
            f" sidecar {rate['sidecar']:.0f}/s (sidecar/direct {rate['sidecar'] / rate['direct']:.2f})"
            f" | CPU per request: proxy {cpu['proxy'] / len(lat['proxy']) * 1e3:.3f} ms,"
            f" sidecar {cpu['sidecar'] / len(lat['sidecar']) * 1e3:.3f} ms"
            f" | sidecar's x-turnout-overhead-ms p50 {pct(overhead, 0.5):.3f}"
            f" p99 {pct(overhead, 0.99):.3f} ms"
        )
    sbody = json.dumps({**BODY, "stream": True}).encode()
    ttft: dict[str, list[float]] = {t: [] for t in TARGETS}
    lost = 0
    for i in range(args.stream_requests):
        texts = {}
        for t in TARGETS[i % 3 :] + TARGETS[: i % 3]:
            first, _, texts[t], _ = await timed_stream(session, urls[t], sbody)
            ttft[t].append(first)
        if texts["sidecar"] != texts["direct"]:
            lost += 1
            if lost == 1:
                print(f"stream {i}: texts differ: direct {texts['direct']!r} via {texts['sidecar']!r}")
    n = args.stream_requests
    chunked = {
        t: [ttft[t][i : i + max(1, n // args.rounds)] for i in range(0, n, max(1, n // args.rounds))]
        for t in TARGETS
    }
    added_latency_table(
        f"stream TTFT, one at a time (load average now {load_avg()})", TARGETS, PAIRS, ttft, chunked
    )
    print(f"  streamed answers compared {n}, with lost or changed chunks via the sidecar: {lost}")
    steady = statistics.median(rss[len(rss) // 2 :])
    print(
        f"sidecar RSS: start {rss[0]:.1f} MB, peak {max(rss):.1f} MB, steady {steady:.1f} MB (under load);"
        f" bare proxy RSS {rss_mb(proxy_pid):.1f} MB"
    )


if __name__ == "__main__":
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=3000, help="requests per target per concurrency")
    parser.add_argument("--rounds", type=int, default=6, help="rounds; each runs every target once")
    parser.add_argument("--stream-requests", type=int, default=300)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 32])
    parser.add_argument("--serve-proxy", type=int, metavar="PORT", help=argparse.SUPPRESS)
    parser.add_argument("--upstream", help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.serve_proxy is not None:
        serve_proxy(ns.serve_proxy, ns.upstream)
    else:
        asyncio.run(main(ns))
