"""``turnout serve --workers 2`` without Redis: the workers share health state through the supervisor.

Real processes: the supervisor and its workers against a mock on loopback. One keep-alive
connection stays on one worker; fresh connections are spread over both by the kernel.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
import yaml

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.clock import FakeClock as MockFakeClock
from mockproviders.server import MockServer
from router.state.host import HostStateServer, HostStore
from router.state.resilient import ResilientStore

from .test_workers import serve

BODY = {"model": "chat", "messages": [{"role": "user", "content": "Say something about trains."}]}
DOWN = {"name": "down", "fault": "server_error", "params": {"status": 503}, "match": {"provider": "openai"}}


def write_config(path: Path, mock_url: str, chain: list[str], **gpt: Any) -> None:
    path.write_text(
        yaml.safe_dump(
            {
                "providers": {
                    "openai": {"kind": "openai", "base_url": f"{mock_url}/openai/v1", "api_key": "sk-x"},
                    "mistral": {"kind": "mistral", "base_url": f"{mock_url}/mistral", "api_key": "m-x"},
                },
                "models": {
                    "gpt": {"provider": "openai", "model": "gpt-4o-mini", **gpt},
                    "mis": {"provider": "mistral", "model": "mistral-small-latest"},
                },
                "routes": {"chat": {"chain": chain}},
                "defaults": {"retries": 0, "breaker": {"failures": 3, "window": "60s", "cooldown": "60s"}},
                "server": {"drain_timeout": 10},
            }
        )
    )


async def post_fresh(base: str) -> int:
    """A request on a new connection: the kernel picks the worker."""
    async with (
        aiohttp.ClientSession(connector=aiohttp.TCPConnector(force_close=True)) as s,
        s.post(f"{base}/v1/chat/completions", json=BODY) as r,
    ):
        await r.read()
        return r.status


def openai_calls(mock: MockServer) -> int:
    return sum(1 for e in mock.core.journal if e.provider == "openai")


async def test_the_host_rpm_is_one_limit_for_all_workers(tmp_path: Path) -> None:
    async with MockServer() as mock:
        path = tmp_path / "router.yaml"
        write_config(path, mock.url.rstrip("/"), ["gpt"], rpm=6)
        async with serve(path, "2") as (_proc, base):
            # one keep-alive connection = one worker: it may use the host's whole limit (not 6/2)
            async with aiohttp.ClientSession() as s:
                statuses = []
                for _ in range(8):
                    async with s.post(f"{base}/v1/chat/completions", json=BODY) as r:
                        await r.read()
                        statuses.append(r.status)
            assert statuses.count(200) == 6, statuses
            # and fresh connections, on both workers, find it spent: the host sent 6, not 6 a worker
            more = await asyncio.gather(*(post_fresh(base) for _ in range(16)))
            assert more.count(200) == 0, more
            assert openai_calls(mock) == 6


async def test_an_ejection_by_one_worker_is_honoured_by_the_other(tmp_path: Path) -> None:
    engine = ChaosEngine([Rule.model_validate(DOWN)], clock=MockFakeClock())
    async with MockServer(app=create_mock_app(engine=engine)) as mock:
        path = tmp_path / "router.yaml"
        write_config(path, mock.url.rstrip("/"), ["gpt", "mis"])
        async with serve(path, "2") as (_proc, base):
            async with aiohttp.ClientSession() as s:  # one worker sees 3 failures: it ejects gpt
                for _ in range(3):
                    async with s.post(f"{base}/v1/chat/completions", json=BODY) as r:
                        assert r.status == 200  # the upstream's failure, then the fallback
            assert openai_calls(mock) == 3
            # fresh connections reach both workers (2^-40 that all 40 land on one); the other worker
            # would need 3 failures of its own to eject gpt without shared state
            statuses = [await post_fresh(base) for _ in range(40)]
            assert statuses == [200] * 40
            assert openai_calls(mock) < 6, openai_calls(mock)


async def test_a_silent_supervisor_degrades_to_local_state(tmp_path: Path) -> None:
    server = HostStateServer(str(tmp_path / "state.sock"))
    await server.start()
    store = ResilientStore(HostStore(server.path, timeout=1.0), reconnect_min=0.01, reconnect_max=0.05)
    assert await store.add_spend("b", 1.5, 0) == 1.5
    assert await server.store.get_spend("b", 0) == 1.5  # it went to the supervisor's store
    await server.close()
    assert isinstance(store.primary, HostStore)
    await store.primary.aclose()  # the connection drops with the supervisor
    assert await store.add_spend("b", 1.0, 0) == 1.0  # answered locally, not an error
    assert not store.up
    await store.aclose()
