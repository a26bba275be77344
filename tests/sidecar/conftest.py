"""A fake router with scripted behaviour per route, and the sidecar served on a real socket."""

# ruff: noqa: E402

from __future__ import annotations

import sys
from pathlib import Path

# tests/ is on sys.path (pytest puts the rootdir conftest's folder there), where tests/chaos and
# tests/router (no __init__.py) would shadow the real packages as namespace packages: the
# repository root on the path lets the regular packages win (as tests/chaos/conftest.py does).
_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.append(_ROOT)
for _name in ("chaos", "router"):
    if getattr(sys.modules.get(_name), "__file__", "") is None:
        del sys.modules[_name]

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import openai
import pytest

from router.errors import (
    AllAttemptsFailed,
    RateLimited,
    RouterError,
    ServerError,
    StreamInterrupted,
    UnknownRoute,
)
from router.outcome import Outcome, StreamOutcome
from router.sidecar import Built, SidecarSettings, create_app
from router.sidecar.server import SidecarServer
from router.sidecar.settings import ServerSettings
from router.types import (
    AttemptRecord,
    AuditRecord,
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEnd,
    StreamEvent,
    StreamStart,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

PROVIDER_KEY = "sk-provider-SECRET-0123456789abcdef"
CLIENT_KEY = "client-key-for-tests-42"
ROUTES = ["chat", "fallback", "tools", "cut", "limited", "leak", "gate", "empty"]
WORDS = ["Hello", ", ", "world", "!"]


@dataclass
class FakeRouter:
    """Implements the Router methods the sidecar uses; behaviour chosen by the request's model."""

    name: str = "fake"
    listeners: list[Any] = field(default_factory=list)
    requests: list[ChatRequest] = field(default_factory=list)
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    entered: asyncio.Event = field(default_factory=asyncio.Event)
    stream_closed: asyncio.Event = field(default_factory=asyncio.Event)
    closed: bool = False
    breaker_open: set[str] = field(default_factory=set)
    counter: int = 0

    # --- helpers ---
    def _rid(self) -> str:
        self.counter += 1
        return f"{self.name}-{self.counter}"

    def _record(
        self, route: str, rid: str, ok: bool, models: list[str], *, streamed: bool = False
    ) -> AuditRecord:
        attempts = [
            AttemptRecord(
                model=m,
                provider="openai",
                outcome="success" if ok and i == len(models) - 1 else "error",
                started_at=0.0,
                latency_s=0.001,
                ttft_s=0.0005 if streamed else None,
                error_kind=None if ok and i == len(models) - 1 else "server",
                usage=Usage(3, 4) if ok and i == len(models) - 1 else None,
                cost_usd=0.002 if ok and i == len(models) - 1 else None,
                streamed=streamed,
            )
            for i, m in enumerate(models)
        ]
        record = AuditRecord(
            request_id=rid,
            route=route,
            candidates=models,
            started_at=time.time(),
            attempts=attempts,
            winner=models[-1] if ok else None,
            outcome="success" if ok else "error",
            error_kind=None if ok else "exhausted",
            latency_s=0.002,
            usage=Usage(3, 4),
            cost_usd=0.002 if ok else None,
            streamed=streamed,
        )
        for lst in self.listeners:
            for a in attempts:
                lst.on_attempt(route, a)
            lst.on_request(record)
        return record

    def _models(self, route: str) -> list[str]:
        return ["model-a", "model-b"] if route == "fallback" else ["model-a"]

    def _response(self, req: ChatRequest, rid: str) -> ChatResponse:
        models = self._models(req.model)
        tool_calls = [ToolCall("call_1", "lookup", '{"q": "x"}')] if req.model == "tools" else []
        return ChatResponse(
            content="" if tool_calls else "".join(WORDS),
            model=models[-1],
            provider="openai",
            provider_model=models[-1] + "-2024",
            finish_reason="tool_calls" if tool_calls else "stop",
            usage=Usage(3, 4, cached_input_tokens=1),
            tool_calls=tool_calls,
            latency_s=0.001,
            request_id=rid,
            route=req.model,
            attempts=len(models),
        )

    async def _fail(self, req: ChatRequest, rid: str, out: Any, *, stream: bool = False) -> None:
        if req.model not in ROUTES:
            raise UnknownRoute(f"The model '{req.model}' does not exist: no route or model of that name.")
        if req.model == "limited":
            out.audit = self._record(req.model, rid, False, ["model-a"])
            raise AllAttemptsFailed(
                "every model is rate-limited",
                errors=[RateLimited("slow down", provider="openai", model="model-a", retry_after=7.2)],
            )
        if req.model == "leak":
            out.audit = self._record(req.model, rid, False, ["model-a"])
            raise ServerError(f"upstream said: bad key {PROVIDER_KEY}", provider="openai", model="model-a")
        if req.model == "gate" and not stream:
            self.entered.set()
            await self.gate.wait()

    # --- Router API (the outcome calls the sidecar makes) ---
    async def complete_outcome(self, request: ChatRequest) -> Outcome[ChatResponse]:
        self.requests.append(request)
        rid = self._rid()
        out: Outcome[ChatResponse] = Outcome()
        try:
            await self._fail(request, rid, out)
        except RouterError as err:
            out.error = err
            return out
        out.audit = self._record(request.model, rid, True, self._models(request.model))
        out.response = self._response(request, rid)
        return out

    def stream_outcome(self, request: ChatRequest) -> StreamOutcome:
        out = StreamOutcome()
        out.events = self._stream(request, out)
        return out

    async def _stream(self, request: ChatRequest, out: StreamOutcome) -> AsyncIterator[StreamEvent]:
        self.requests.append(request)
        rid = self._rid()
        try:
            await self._fail(request, rid, out, stream=True)
            models = self._models(request.model)
            yield StreamStart(models[-1], "openai", models[-1] + "-2024", rid, request.model, len(models))
            if request.model == "tools":
                yield ToolCallDelta(0, "call_1", "lookup", '{"q"')
                yield ToolCallDelta(0, None, None, ': "x"}')
            else:
                for i, word in enumerate(WORDS):
                    if request.model == "cut" and i == 2:
                        raise StreamInterrupted(
                            f"upstream cut the stream (key {PROVIDER_KEY})", partial="Hello, "
                        )
                    if request.model == "empty":
                        break
                    yield TextDelta(word)
                    if request.model == "gate" and i == 1:
                        self.entered.set()
                        await asyncio.Event().wait()  # never: the client hangs up here
            out.audit = self._record(request.model, rid, True, models, streamed=True)
            yield StreamEnd(self._response(request, rid))
        finally:
            self.stream_closed.set()

    async def embed_outcome(self, request: EmbeddingRequest) -> Outcome[EmbeddingResponse]:
        rid = self._rid()
        if request.model not in ROUTES:
            return Outcome(error=UnknownRoute(f"The model '{request.model}' does not exist."))
        return Outcome(
            EmbeddingResponse(
                vectors=[[0.5, -0.25, float(i)] for i in range(len(request.input))],
                model="embed-a",
                provider="openai",
                provider_model="text-embedding-3-small",
                usage=Usage(5, 0),
                request_id=rid,
                route=request.model,
            )
        )

    def route_names(self) -> list[str]:
        return list(ROUTES)

    def snapshot(self) -> dict[str, Any]:
        def breaker(model: str) -> dict[str, Any]:
            if model in self.breaker_open:  # open, its probe not due yet: not serviceable
                return {"state": "open", "retry_in_s": 30.0}
            # model-a reads open with its probe due (the metrics show the state; it still serves)
            return {"state": "open", "retry_in_s": 0.0} if model == "model-a" else {"state": "closed"}

        return {
            "deployments": {
                "model-a": {
                    "breaker": breaker("model-a"),
                    "limiter": {"rpm": 100, "tpm": None, "requests_available": 25, "tokens_available": None},
                },
                "model-b": {"breaker": breaker("model-b")},
            },
            "routes": {route: {"chain": self._models(route)} for route in ROUTES},
            "provider_key_echo": PROVIDER_KEY,  # a careless router: the sidecar must still scrub it
        }

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)

    async def aclose(self) -> None:
        self.closed = True


@dataclass
class Sidecar:
    server: SidecarServer
    routers: list[FakeRouter]

    @property
    def url(self) -> str:
        return str(self.server.make_url("/"))

    @property
    def base_url(self) -> str:
        return str(self.server.make_url("/v1"))

    def client(self, api_key: str = CLIENT_KEY, **kw: Any) -> openai.AsyncOpenAI:
        return openai.AsyncOpenAI(base_url=self.base_url, api_key=api_key, max_retries=0, **kw)


SidecarFactory = Callable[..., Awaitable[Sidecar]]


@pytest.fixture
async def make_sidecar() -> AsyncIterator[SidecarFactory]:
    servers: list[SidecarServer] = []

    async def make(**server: Any) -> Sidecar:
        settings = SidecarSettings(server=ServerSettings(**{"api_keys": [CLIENT_KEY], **server}))
        routers: list[FakeRouter] = []

        def factory() -> Built:
            router = FakeRouter(name=f"gen{len(routers) + 1}")
            routers.append(router)
            return Built(router, frozenset({PROVIDER_KEY}))

        srv = SidecarServer(create_app(settings, factory))
        await srv.start_server()
        servers.append(srv)
        return Sidecar(srv, routers)

    yield make
    for srv in servers:
        await srv.close()


@pytest.fixture
async def sidecar(make_sidecar: SidecarFactory) -> Sidecar:
    return await make_sidecar()
