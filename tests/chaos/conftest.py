"""Shared helpers for the chaos tests: a mock server with an engine, and SDK clients for it."""

# ruff: noqa: E402 - the sys.path repair below must run before the imports it repairs

from __future__ import annotations

import sys
from pathlib import Path

# tests/conftest.py puts tests/ on sys.path, where tests/chaos/ (no __init__.py) would shadow
# the real ``chaos`` package as a namespace package; the repository root restores it (a regular
# package anywhere on the path wins over a namespace portion).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
if getattr(sys.modules.get("chaos"), "__file__", "") is None:
    del sys.modules["chaos"]

from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any, TypeVar

import anthropic
import openai
import pytest

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.clock import FakeClock
from mockproviders.server import MockServer

CHAT: Any = [{"role": "user", "content": "Say something about trains."}]


def rule(name: str, fault: str, **kw: Any) -> Rule:
    return Rule.model_validate({"name": name, "fault": fault, **kw})


class ChaosMockServer(MockServer):
    """A mock server on port 0 with a chaos engine, and the SDK clients to close at the end."""

    def __init__(self, engine: ChaosEngine) -> None:
        super().__init__(app=create_mock_app(engine=engine))
        self.engine = engine
        self.clients: list[Any] = []


MockFactory = Callable[..., AbstractAsyncContextManager[ChaosMockServer]]


@pytest.fixture
def chaos_mock() -> MockFactory:
    """``async with chaos_mock(rule(...), ...) as server`` — a mock on port 0 with those rules;
    ``server.engine`` is the engine. A FakeClock by default, so faults never sleep for real."""

    @asynccontextmanager
    async def factory(*rules: Rule, clock: Any = None, **engine_kw: Any) -> AsyncIterator[ChaosMockServer]:
        engine = ChaosEngine(rules, clock=clock if clock is not None else FakeClock(), **engine_kw)
        async with ChaosMockServer(engine) as server:
            try:
                yield server
            finally:
                for client in server.clients:
                    await client.close()

    return factory


def openai_client(server: MockServer, **kw: Any) -> openai.AsyncOpenAI:
    kw.setdefault("max_retries", 0)
    return _track(server, openai.AsyncOpenAI(base_url=server.base_urls["openai"], api_key="sk-test", **kw))


def anthropic_client(server: MockServer, **kw: Any) -> anthropic.AsyncAnthropic:
    kw.setdefault("max_retries", 0)
    client = anthropic.AsyncAnthropic(base_url=server.base_urls["anthropic"], api_key="sk-ant-test", **kw)
    return _track(server, client)


C = TypeVar("C")


def _track(server: MockServer, client: C) -> C:
    """Clients are closed when the server fixture ends (an open pool would warn)."""
    if isinstance(server, ChaosMockServer):
        server.clients.append(client)
    return client
