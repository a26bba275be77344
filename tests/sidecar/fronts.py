"""The whole stack for the Anthropic and Responses front ends: SDK -> sidecar -> Router -> mock."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import aiohttp
import anthropic
import openai

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.clock import FakeClock
from mockproviders.server import MockServer
from router import Router, parse_config
from router.sidecar import Built, SidecarSettings, create_app
from router.sidecar.server import SidecarServer

PROVIDER_KEY = "sk-fronts-SECRET-0a1b2c3d4e5f6789"


def rule(name: str, fault: str, **kw: Any) -> Rule:
    return Rule.model_validate({"name": name, "fault": fault, **kw})


def down(provider: str) -> Rule:
    """Every call to ``provider`` answers 503."""
    return rule(f"{provider}-down", "server_error", params={"status": 503}, match={"provider": [provider]})


def config(mock_url: str) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": f"{mock_url}/openai/v1", "api_key": PROVIDER_KEY},
            "anthropic": {
                "kind": "anthropic",
                "base_url": f"{mock_url}/anthropic",
                "api_key": "sk-ant-k-123456",
            },
            "mistral": {"kind": "mistral", "base_url": f"{mock_url}/mistral", "api_key": "mistral-k-123456"},
        },
        "models": {
            "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
            "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 256},
            "mistral": {"provider": "mistral", "model": "mistral-small-latest"},
        },
        "routes": {
            "claude-first": {"chain": ["claude", "gpt"]},  # a Claude-shaped request that can fall back
            "gpt-first": {"chain": ["gpt", "claude"]},  # OpenAI first, Claude behind it
            "mistral-first": {"chain": ["mistral", "claude"]},
            "claude-only": {"chain": ["claude"]},
            "gpt-only": {"chain": ["gpt"]},
        },
        "defaults": {"retries": 0},
    }


@asynccontextmanager
async def stack(*rules: Rule, **server: Any) -> AsyncIterator[SidecarServer]:
    engine = ChaosEngine(list(rules), clock=FakeClock())
    async with MockServer(app=create_mock_app(engine=engine)) as mock:
        cfg = parse_config(config(mock.url.rstrip("/")), source="fronts.yaml")

        def factory() -> Built:
            return Built(Router(cfg), frozenset({PROVIDER_KEY}))

        settings = SidecarSettings.model_validate({"server": server}) if server else SidecarSettings()
        sidecar = SidecarServer(create_app(settings, factory))
        await sidecar.start_server()
        try:
            yield sidecar
        finally:
            await sidecar.close()


def claude_client(server: SidecarServer, **kw: Any) -> anthropic.AsyncAnthropic:
    kw.setdefault("api_key", "unused")
    return anthropic.AsyncAnthropic(base_url=str(server.make_url("")), max_retries=0, **kw)


def openai_client(server: SidecarServer) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="unused", max_retries=0)


async def metrics_text(server: SidecarServer) -> str:
    async with aiohttp.ClientSession() as s, s.get(server.make_url("/metrics")) as r:
        return await r.text()
