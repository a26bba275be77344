"""Throughput of `turnout serve --workers 2` against `--workers 1`, same run, same upstream.

    .venv/bin/python bench/bench_workers.py [--rounds 6] [--seconds 3] [--concurrency 64] [--workers 2]

On a small machine the load generator and the upstream share the cores with the sidecar, so both
are kept as cheap as Python allows: the upstream is a raw asyncio protocol answering every request
with one fixed OpenAI chat completion, and the client is a raw asyncio protocol per connection
sending one pre-built request and reading the answer by its Content-Length (closed loop,
``--concurrency`` keep-alive connections, opened fresh each round so the kernel spreads them over
the workers). Both run on uvloop when it is installed, in their own processes (the client one
process per worker count being measured, so the client is never the bottleneck alone).

Both sidecars stay up; rounds alternate A B A B with the order rotated. It prints requests per
second per round, the ratio workers=N / workers=1 per round and its median, and the CPU seconds
each sidecar (supervisor and workers) used per request.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import yaml
from _common import free_port, print_header, wait_port

REPLY = json.dumps(
    {
        "id": "chatcmpl-bench",
        "object": "chat.completion",
        "created": 1,
        "model": "gpt-4o-mini",
        "choices": [
            {"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}
        ],
        "usage": {"prompt_tokens": 9, "completion_tokens": 2, "total_tokens": 11},
    }
).encode()
BODY = json.dumps({"model": "chat", "messages": [{"role": "user", "content": "Say hello."}]}).encode()


def _loop() -> asyncio.AbstractEventLoop:
    try:
        import uvloop

        return uvloop.new_event_loop()
    except ImportError:
        return asyncio.new_event_loop()


class _Http(asyncio.Protocol):
    """Reads HTTP/1.1 messages with a Content-Length; calls ``done(head)`` for each complete one."""

    def __init__(self) -> None:
        self.buf = b""
        self.transport: Any = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # uvloop's transports are not asyncio.Transport instances

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            end = self.buf.find(b"\r\n\r\n")
            if end < 0:
                return
            head = self.buf[:end].lower()
            i = head.find(b"content-length:")
            length = (
                int(head[i + 15 : head.find(b"\r\n", i) if head.find(b"\r\n", i) > 0 else None])
                if i >= 0
                else 0
            )
            if len(self.buf) < end + 4 + length:
                return
            self.buf = self.buf[end + 4 + length :]
            self.done(head)

    def done(self, head: bytes) -> None:
        raise NotImplementedError


def serve_upstream(port: int) -> None:
    answer = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n%s" % (
        len(REPLY),
        REPLY,
    )

    class Upstream(_Http):
        def done(self, head: bytes) -> None:
            assert self.transport is not None
            self.transport.write(answer)

    loop = _loop()
    loop.run_until_complete(loop.create_server(Upstream, "127.0.0.1", port, backlog=1024))
    loop.run_forever()


def run_client(port: int, seconds: float, concurrency: int) -> None:
    """Closed loop for ``seconds``; prints the completed count and any non-200 answers."""
    request = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n%s" % (len(BODY), BODY)
    )
    counts = {"ok": 0, "bad": 0}
    stop = False

    class Client(_Http):
        def connection_made(self, transport: asyncio.BaseTransport) -> None:
            super().connection_made(transport)
            assert self.transport is not None
            self.transport.write(request)

        def done(self, head: bytes) -> None:
            counts["ok" if head.startswith(b"http/1.1 200") else "bad"] += 1
            if not stop and self.transport is not None:
                self.transport.write(request)

    async def main() -> None:
        nonlocal stop
        loop = asyncio.get_running_loop()
        conns = [await loop.create_connection(Client, "127.0.0.1", port) for _ in range(concurrency)]
        t0 = time.perf_counter()
        await asyncio.sleep(seconds)
        stop = True
        elapsed = time.perf_counter() - t0
        print(json.dumps({"rps": counts["ok"] / elapsed, "bad": counts["bad"]}), flush=True)
        for transport, _ in conns:
            transport.close()

    loop = _loop()
    loop.run_until_complete(main())


def cpu_s(pid: int) -> float:
    """CPU seconds of ``pid`` and its children (live ones), from /proc."""
    total = 0.0
    pids = [pid]
    try:
        for task in Path(f"/proc/{pid}/task").iterdir():
            pids += [int(p) for p in (task / "children").read_text().split()]
    except OSError:
        pass
    for p in pids:
        try:
            fields = Path(f"/proc/{p}/stat").read_text().rsplit(")", 1)[1].split()
            total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
        except OSError:
            pass
    return total


def main() -> int:
    parser = argparse.ArgumentParser(description=(__doc__ or "").split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=6)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--concurrency", type=int, default=64)
    parser.add_argument("--workers", type=int, default=2, help="compared against 1")
    parser.add_argument("--serve-upstream", type=int, help=argparse.SUPPRESS)
    parser.add_argument("--client", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.serve_upstream:
        serve_upstream(args.serve_upstream)
        return 0
    if args.client:
        run_client(args.client, args.seconds, args.concurrency)
        return 0
    print_header(("aiohttp", "turnout"))
    print(f"rounds {args.rounds} x {args.seconds:g}s, {args.concurrency} connections, A/B alternating")
    py, me = sys.executable, str(Path(__file__).resolve())
    up_port = free_port()
    tmp = Path(tempfile.mkdtemp(prefix="bench-workers-"))
    config = {
        "providers": {
            "openai": {"kind": "openai", "base_url": f"http://127.0.0.1:{up_port}/v1", "api_key": "sk-bench"}
        },
        "models": {"gpt": {"provider": "openai", "model": "gpt-4o-mini"}},
        "routes": {"chat": {"chain": ["gpt"]}},
        "defaults": {"retries": 0},
        "server": {"max_concurrency": 4096},
    }
    (tmp / "router.yaml").write_text(yaml.safe_dump(config))
    procs = [subprocess.Popen([py, me, "--serve-upstream", str(up_port)])]
    sidecars: dict[int, tuple[int, subprocess.Popen[bytes]]] = {}
    try:
        wait_port(up_port, procs[0], "upstream")
        for n in (1, args.workers):
            port = free_port()
            proc = subprocess.Popen(
                [
                    *(
                        py,
                        "-m",
                        "turnout",
                        "serve",
                        "--config",
                        str(tmp / "router.yaml"),
                        "--port",
                        str(port),
                    ),
                    *("--workers", str(n), "--log-level", "warning"),
                ],
                stdout=subprocess.DEVNULL,
            )
            procs.append(proc)
            wait_port(port, proc, f"turnout serve --workers {n}")
            sidecars[n] = (port, proc)
        time.sleep(1.0)  # every worker is up (the port answers as soon as the first one is)
        rps: dict[int, list[float]] = {n: [] for n in sidecars}
        cpu: dict[int, list[float]] = {n: [] for n in sidecars}
        order = list(sidecars)
        for i in range(args.rounds + 1):  # round 0 warms up and is not counted
            for n in order if i % 2 == 0 else order[::-1]:
                port, proc = sidecars[n]
                c0 = cpu_s(proc.pid)
                out = subprocess.run(
                    [
                        py,
                        me,
                        "--client",
                        str(port),
                        "--seconds",
                        str(args.seconds),
                        *("--concurrency", str(args.concurrency)),
                    ],
                    capture_output=True,
                    text=True,
                    check=True,
                )
                result = json.loads(out.stdout)
                if result["bad"]:
                    raise RuntimeError(f"--workers {n}: {result['bad']} answers were not 200")
                used = cpu_s(proc.pid) - c0
                if i == 0:
                    continue
                rps[n].append(result["rps"])
                cpu[n].append(used / max(1, result["rps"] * args.seconds))
                print(
                    f"  round {i} workers={n}: {result['rps']:7.0f} req/s,"
                    f" sidecar CPU {cpu[n][-1] * 1e6:4.0f} us/req",
                    flush=True,
                )
        n = args.workers
        pairs = [b / a for a, b in zip(rps[1], rps[n], strict=True)]
        print(
            f"\nratio workers={n}/workers=1: median {statistics.median(pairs):.2f}"
            f" (per round {', '.join(f'{p:.2f}' for p in pairs)}; min {min(pairs):.2f}, max {max(pairs):.2f})"
        )
        print(
            f"median req/s: workers=1 {statistics.median(rps[1]):.0f},"
            f" workers={n} {statistics.median(rps[n]):.0f};"
            f" load average {os.getloadavg()[0]:.1f} (the machine is shared)"
        )
    finally:
        for proc in reversed(procs):
            proc.terminate()
            proc.wait(timeout=30)
    return 0


if __name__ == "__main__":
    sys.exit(main())
