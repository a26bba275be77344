"""Helpers shared by the chaos tests (a module, not conftest: ``conftest`` is not a unique
module name once several test folders have one): rules, a mock server with an engine, SDK
clients, and a fake downstream handler for engine-level tests."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractAsyncContextManager
from typing import Any, TypeVar

import anthropic
import openai

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.server import MockServer
from mockproviders.types import AbortConnection, MockRequest, MockResponse, StreamEvent

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


def request(
    provider: Any = "openai", model: str = "gpt-4o-mini", stream: bool = False, **headers: Any
) -> MockRequest:
    endpoint: Any = "messages" if provider == "anthropic" else "chat"
    return MockRequest(
        provider=provider,
        endpoint=endpoint,
        method="POST",
        path="/v1/chat/completions",
        headers={k.replace("_", "-"): v for k, v in headers.items()},
        body=b"{}",
        index=0,
        received_at=0.0,
        json={"tools": [{"type": "function"}]},
        model=model,
        api_key="sk-1",
        stream=stream,
    )


async def ok(req: MockRequest) -> MockResponse:
    if req.stream:

        async def events() -> Any:
            for i in range(5):
                yield StreamEvent(kind="content", data=f'"{i}"', tokens=1)
            yield StreamEvent(kind="done", data="[DONE]")

        return MockResponse(200, stream=events())
    return MockResponse.json_body(200, {"ok": True})


async def send(engine: ChaosEngine, req: MockRequest) -> int | str:
    """The status, or how the connection was dropped; streams are read to the end."""
    try:
        response = await engine(req, ok)
        if response.stream is not None:
            async for _ in response.stream:
                pass
    except AbortConnection as exc:
        return exc.mode
    return response.status
