"""How long an ejection by one worker of `turnout serve --workers 2` takes to reach the other.

    .venv/bin/python bench/bench_worker_propagation.py [--trials 10]

A mock upstream whose OpenAI endpoint answers 503 to everything; the sidecar (2 workers, the
default in-memory state, so the supervisor hosts it) has one route per trial, ``[gptK, mis]``
with a breaker of 3 failures. Two keep-alive connections are pinned to different workers (found
by matching the client ports against each worker's sockets in /proc: Linux only). Each trial
sends 3 requests through worker A (gptK fails 3 times: A ejects it), then at once requests
through worker B until one of them no longer reaches the OpenAI endpoint. Printed: the time from
A's third answer to the first such answer of B (an upper bound of propagation: it includes B's
own request), and how many requests B sent to the ejected deployment before it knew.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import aiohttp
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.server import MockServer

DOWN = {"name": "down", "fault": "server_error", "params": {"status": 503}, "match": {"provider": "openai"}}


def config(mock: str, trials: int) -> dict[str, Any]:
    models: dict[str, Any] = {"mis": {"provider": "mistral", "model": "mistral-small-latest"}}
    routes = {}
    for k in range(trials):
        models[f"gpt{k}"] = {"provider": "openai", "model": "gpt-4o-mini"}
        routes[f"r{k}"] = {"chain": [f"gpt{k}", "mis"]}
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": f"{mock}/openai/v1", "api_key": "sk-x"},
            "mistral": {"kind": "mistral", "base_url": f"{mock}/mistral", "api_key": "m-x"},
        },
        "models": models,
        "routes": routes,
        "defaults": {"retries": 0, "breaker": {"failures": 3, "window": "60s", "cooldown": "600s"}},
    }


def children(pid: int) -> list[int]:
    out = []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                if Path(f"/proc/{d}/stat").read_text().split(") ", 1)[1].split()[1] == str(pid):
                    out.append(int(d))
            except (OSError, IndexError):
                pass
    return out


def worker_of(client_port: int, workers: list[int]) -> int | None:
    """The worker holding the server end of the connection from ``client_port``."""
    inodes = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        f = line.split()
        if int(f[2].split(":")[1], 16) == client_port:
            inodes.add(f[9])
    for pid in workers:
        for fd in os.listdir(f"/proc/{pid}/fd"):
            try:
                link = os.readlink(f"/proc/{pid}/fd/{fd}")
            except OSError:
                continue
            if link.startswith("socket:[") and link[8:-1] in inodes:
                return pid
    return None


async def post(s: aiohttp.ClientSession, base: str, route: str) -> None:
    body = {"model": route, "messages": [{"role": "user", "content": "hi"}]}
    async with s.post(f"{base}/v1/chat/completions", json=body) as r:
        await r.read()
        assert r.status == 200, r.status


async def pinned(base: str, workers: list[int]) -> dict[int, aiohttp.ClientSession]:
    """One single-connection session per worker."""
    found: dict[int, aiohttp.ClientSession] = {}
    for _ in range(200):
        with socket.socket() as probe:  # a free client port, to find the connection in /proc
            probe.bind(("127.0.0.1", 0))
            port = probe.getsockname()[1]
        s = aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=1, local_addr=("127.0.0.1", port)))
        async with s.get(f"{base}/healthz") as r:
            await r.read()
        pid = worker_of(port, workers)
        if pid is not None and pid not in found:
            found[pid] = s
        else:
            await s.close()
        if len(found) == len(workers):
            return found
    raise SystemExit("could not pin a connection to each worker")


async def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--trials", type=int, default=10)
    args = ap.parse_args()
    engine = ChaosEngine([Rule.model_validate(DOWN)])
    async with MockServer(app=create_mock_app(engine=engine)) as mock:
        tmp = Path(tempfile.mkdtemp())
        (tmp / "router.yaml").write_text(yaml.safe_dump(config(mock.url.rstrip("/"), args.trials)))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "turnout", "serve", "--config", str(tmp / "router.yaml"),
            "--port", "0", "--workers", "2", stdout=asyncio.subprocess.PIPE,
        )  # fmt: skip
        assert proc.stdout is not None
        line = (await proc.stdout.readline()).decode()
        base = line.split("listening on ", 1)[1].split()[0].removesuffix("/v1")
        try:
            sessions = list((await pinned(base, children(proc.pid))).values())
            a, b = sessions[0], sessions[1]
            times, leaked = [], []
            for k in range(args.trials):
                route = f"r{k}"
                await post(b, base, "r0" if k else "r1")  # warm B's connection
                for _ in range(3):
                    await post(a, base, route)
                t0 = time.perf_counter()
                sent = 0
                while True:
                    before = sum(1 for e in mock.core.journal if e.provider == "openai")
                    await post(b, base, route)
                    if sum(1 for e in mock.core.journal if e.provider == "openai") == before:
                        break
                    sent += 1
                times.append((time.perf_counter() - t0) * 1000)
                leaked.append(sent)
            print(f"ejection A -> B, {args.trials} trials: ms {[round(t, 2) for t in times]}")
            print(
                f"median {statistics.median(times):.2f} ms, max {max(times):.2f} ms;"
                f" requests B sent to the ejected deployment first: {leaked}"
            )
            for s in sessions:
                await s.close()
        finally:
            proc.terminate()
            await proc.wait()


if __name__ == "__main__":
    asyncio.run(main())
