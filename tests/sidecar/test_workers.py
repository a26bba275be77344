"""`turnout serve --workers N` as real processes: one port, restarts, reload and drain, one /metrics."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import yaml
from openai import AsyncOpenAI

from mockproviders.server import MockServer
from router import parse_config
from router.sidecar.workers import WorkerRole, split_between_workers, worker_count

pytestmark = pytest.mark.skipif(sys.platform != "linux", reason="reads worker processes from /proc")

MSG = [{"role": "user", "content": "Say something about trains."}]


def children(pid: int) -> set[int]:
    found: set[int] = set()
    for task in Path(f"/proc/{pid}/task").iterdir():
        text = (task / "children").read_text().split()
        found |= {int(p) for p in text}
    return found


def alive(pid: int) -> bool:
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return False


def alive_dir(path: Path) -> bool:
    return path.exists()


def metrics_dir_of(pid: int) -> Path:
    env = Path(f"/proc/{pid}/environ").read_text().split("\0")
    return Path(dict(kv.split("=", 1) for kv in env if "=" in kv)["PROMETHEUS_MULTIPROC_DIR"])


def writers(metrics_dir: Path) -> set[int]:
    """The processes that wrote counters to the shared metric files (counter_<pid>.db)."""
    return {int(f.stem.rsplit("_", 1)[1]) for f in metrics_dir.glob("counter_*.db")}


def write_config(path: Path, mock_url: str, routes: dict[str, Any], **extra: Any) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "providers": {
                    "openai": {"kind": "openai", "base_url": f"{mock_url}/openai/v1", "api_key": "sk-x"}
                },
                "models": {"gpt": {"provider": "openai", "model": "gpt-4o-mini"}},
                "routes": routes,
                "server": {"drain_timeout": 10},
                **extra,
            }
        )
    )


@asynccontextmanager
async def serve(path: Path, workers: str) -> AsyncIterator[tuple[asyncio.subprocess.Process, str]]:
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "turnout", "serve", "--config", str(path), "--port", "0",
        "--workers", workers, "--loop", "asyncio",
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        line = (await asyncio.wait_for(proc.stdout.readline(), 60)).decode()
        assert "listening on http://127.0.0.1:" in line and f"({workers} workers" in line, line
        yield proc, line.split("listening on ", 1)[1].split()[0].removesuffix("/v1")
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()


async def fresh_get(base: str, path: str) -> Any:
    """A GET on a new connection (the kernel picks the worker per connection)."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s,
        s.get(f"{base}{path}") as r,
    ):
        assert r.status == 200
        return await r.json() if "json" in r.content_type else await r.text()


def metric(text: str, name: str) -> float:
    return sum(float(ln.rsplit(" ", 1)[1]) for ln in text.splitlines() if ln.startswith(name))


async def test_workers_share_one_port_and_reload_restart_and_drain_together(tmp_path: Path) -> None:
    async with MockServer() as mock:
        path = tmp_path / "router.yaml"
        write_config(path, mock.url.rstrip("/"), {"chat": {"chain": ["gpt"]}})
        async with serve(path, "2") as (proc, base):
            workers = children(proc.pid)
            assert len(workers) == 2
            client = AsyncOpenAI(base_url=f"{base}/v1", api_key="none", max_retries=0)
            for _ in range(3):
                reply = await client.chat.completions.create(model="chat", messages=MSG)  # type: ignore[arg-type]
                assert reply.choices[0].message.content
            await client.close()
            for _ in range(37):  # new connections: spread over both workers by the kernel
                async with (
                    aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s,
                    s.post(f"{base}/v1/chat/completions", json={"model": "chat", "messages": MSG}) as r,
                ):
                    assert r.status == 200
            # each worker wrote its own metric files; any worker's /metrics shows the sum of both
            metrics_dir = metrics_dir_of(min(workers))
            assert writers(metrics_dir) == workers
            for _ in range(200):  # each worker flushes its counts every second: poll
                text = await fresh_get(base, "/metrics")
                if metric(text, "turnout_requests_total{") == 40:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"/metrics never showed 40 requests:\n{text}")
            assert "worker" not in text  # aggregated: one sidecar, no per-worker series

            # POST /admin/reload on one worker reloads every worker
            write_config(
                path, mock.url.rstrip("/"), {"chat": {"chain": ["gpt"]}, "second": {"chain": ["gpt"]}}
            )
            async with aiohttp.ClientSession() as s, s.post(f"{base}/admin/reload") as r:
                assert r.status == 200
            seen = 0
            for _ in range(400):  # the others reload asynchronously: until 20 fresh connections agree
                ids = [m["id"] for m in (await fresh_get(base, "/v1/models"))["data"]]
                seen = seen + 1 if "second" in ids else 0
                if seen == 20:
                    break
                await asyncio.sleep(0.01)
            else:
                pytest.fail("the reload did not reach every worker")

            # a worker that dies is replaced; the port keeps answering meanwhile
            victim = min(workers)
            os.kill(victim, signal.SIGKILL)
            for _ in range(600):
                now = children(proc.pid)
                if len(now) == 2 and victim not in now:
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"worker {victim} was not replaced: {children(proc.pid)}")
            assert (await fresh_get(base, "/healthz"))["status"] == "ok"

            proc.send_signal(signal.SIGTERM)  # every worker drains, then the supervisor exits
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            assert not any(alive(pid) for pid in now)
            assert not alive_dir(metrics_dir)


async def test_workers_stop_when_the_supervisor_is_killed(tmp_path: Path) -> None:
    async with MockServer() as mock:
        path = tmp_path / "router.yaml"
        write_config(path, mock.url.rstrip("/"), {"chat": {"chain": ["gpt"]}})
        async with serve(path, "2") as (proc, _):
            workers = children(proc.pid)
            proc.kill()
            await proc.wait()
            for _ in range(600):  # orphans notice their supervisor's end of the pair closing
                if not any(alive(pid) for pid in workers):
                    break
                await asyncio.sleep(0.05)
            else:
                pytest.fail(f"workers {workers} outlived their supervisor")


def test_worker_count_and_role() -> None:
    assert worker_count("3") == 3
    assert worker_count("auto") >= 1
    for bad in ("0", "-1", "many"):
        with pytest.raises(ValueError, match="--workers"):
            worker_count(bad)
    assert WorkerRole.from_env() is None or os.environ.get("TURNOUT_WORKER")


def test_without_a_shared_store_workers_split_the_limits() -> None:
    cfg = parse_config(
        {
            "providers": {"openai": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}},
            "models": {
                "gpt": {"provider": "openai", "model": "gpt-4o-mini", "rpm": 100, "tpm": 9000},
                "free": {"provider": "openai", "model": "gpt-4o"},
            },
            "routes": {"chat": {"chain": ["gpt"]}},
            "budgets": {"team": {"route": "chat", "limit_usd": 10.0}},
        }
    )
    half = split_between_workers(cfg, 2)
    assert (half.models["gpt"].rpm, half.models["gpt"].tpm) == (50, 4500)
    assert (half.models["free"].rpm, half.models["free"].tpm) == (None, None)
    assert half.budgets["team"].limit_usd == 5.0
    assert split_between_workers(cfg, 1) is cfg
    shared = cfg.model_copy(update={"state": cfg.state.model_copy(update={"backend": "redis"})})
    assert split_between_workers(shared, 4) is shared  # the store enforces the whole limit once
