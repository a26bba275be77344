"""A mock with scripted answers (and chaos faults) on a real loopback socket, and a router over it.

Deployments: ``fast`` (openai gpt-4o-mini), ``mid`` (mistral-small), ``best`` (anthropic
claude-sonnet-4-5), ``big`` (openai gpt-4.1, the long-context one). Prices are set in the config so
costs are exact. The router runs on a FakeClock: its waits (backoff) take no real time.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from chaos import ChaosEngine, Rule
from chaos.mock import attach
from mockproviders.clock import FakeClock as MockFakeClock
from mockproviders.clock import SystemClock as MockSystemClock
from mockproviders.config import parse_config as parse_mock_config
from mockproviders.server import MockServer, create_app
from router import Router, parse_config
from router.audit import AuditLog
from router.clock import FakeClock
from router.types import AuditRecord, ChatRequest, Message

PRICES = {
    "fast": {"input": 0.15, "output": 0.6},
    "mid": {"input": 0.2, "output": 0.6},
    "best": {"input": 3.0, "output": 15.0},
    "big": {"input": 2.0, "output": 8.0},
}


def fault(name: str, kind: str, **kw: Any) -> Rule:
    return Rule.model_validate({"name": name, "fault": kind, **kw})


def answer(
    text: str, *, model: str | None = None, contains: str | None = None, **more: Any
) -> dict[str, Any]:
    match: dict[str, Any] = {}
    if model is not None:
        match["model"] = model
    if contains is not None:
        match["contains"] = contains
    return {"match": match, "answer": {"text": text, **more}}


def config(urls: dict[str, str], **sections: Any) -> dict[str, Any]:
    routes = sections.pop("routes", {})
    defaults = sections.pop("defaults", {})
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk-test"},
            "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": "sk-ant-test"},
            "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": "m-test"},
        },
        "models": {
            "fast": {"provider": "openai", "model": "gpt-4o-mini", "prices": PRICES["fast"]},
            "mid": {"provider": "mistral", "model": "mistral-small-latest", "prices": PRICES["mid"]},
            "best": {
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "max_tokens": 256,
                "prices": {**PRICES["best"], "cached": 0.3, "cache_write": 3.75},
            },
            "big": {"provider": "openai", "model": "gpt-4.1", "prices": PRICES["big"]},
        },
        "routes": routes,
        "defaults": {
            "retries": 0,
            "timeouts": {"total": "20s", "connect": "1s", "read": "2s", "first_token": "2s", "idle": "2s"},
            "breaker": {"failures": 50, "window": "60s", "cooldown": "30s"},
            **defaults,
        },
        **sections,
    }


class Rig:
    def __init__(self, server: MockServer, engine: ChaosEngine, router: Router, log: AuditLog) -> None:
        self.server, self.engine, self.router, self.log = server, engine, router, log

    def record(self, route: str) -> AuditRecord:
        """The last audit record of ``route`` (a pattern's summary record has the pattern's name)."""
        found = [r for r in self.log.records() if r.route == route]
        assert found, f"no audit record for {route!r}: {[r.route for r in self.log.records()]}"
        return found[-1]


@asynccontextmanager
async def rig(
    answers: list[dict[str, Any]] = (),  # type: ignore[assignment]
    faults: tuple[Rule, ...] = (),
    *,
    real_time: bool = False,
    **sections: Any,
) -> AsyncIterator[Rig]:
    engine = ChaosEngine(faults, clock=MockSystemClock() if real_time else MockFakeClock())
    mock_cfg = parse_mock_config({"rules": list(answers), "default": {"text": "Default mock answer."}})
    app = create_app(mock_cfg, clock=engine.clock)
    attach(app, engine)
    async with MockServer(app=app) as server:
        log = AuditLog()
        router = Router(
            parse_config(config(server.base_urls, **sections)), clock=FakeClock(), listeners=[log]
        )
        try:
            yield Rig(server, engine, router, log)
        finally:
            await router.aclose()


def ask(model: str, text: str = "Hello?", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", text)], **kw)
