"""A scripted in-memory adapter on a FakeClock, for engine tests that must not sleep or open sockets.

Each deployment has a queue of :class:`Step` s; an attempt takes the next one (or the default, a
quick success). Latency is spent on the fake clock, and a step slower than the attempt's limit
times out exactly as the HTTP adapter would: after the limit, with the same error class.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field
from typing import Any

from router import errors as E
from router.adapters import AdapterEvent, CallOptions, Deployment
from router.clock import FakeClock
from router.config import RouterConfig, parse_config
from router.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    StreamEnd,
    TextDelta,
    Usage,
)


@dataclass
class Step:
    """One scripted attempt."""

    latency: float = 0.01  # before the answer (or the first token)
    error: Callable[[Deployment], E.RouterError] | None = None  # raised after latency
    text: str = "hello world"
    chunks: int = 3  # stream: how many deltas
    cut_after: int | None = None  # stream: ends without its end after N deltas
    fail_after: int | None = None  # stream: error raised after N deltas (``error`` or ServerError)
    stall_after: int | None = None  # stream: silence after N deltas
    hang: bool = False  # never answers (until the limit, or until cancelled if no limit)
    block: bool = False  # never answers, whatever the limits: only cancellation ends it (hedging)
    usage: Usage = field(default_factory=lambda: Usage(10, 5))


def err(cls: type[E.RouterError], **kw: Any) -> Callable[[Deployment], E.RouterError]:
    def make(d: Deployment) -> E.RouterError:
        return cls(f"scripted {cls.__name__}", provider=d.provider, model=d.name, **kw)

    return make


class FakeAdapter:
    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock
        self.scripts: dict[str, deque[Step]] = {}
        self.calls: list[str] = []
        self.cancelled: list[str] = []
        self.closed = False
        self.default_text = "hello world"

    def script(self, deployment: str, *steps: Step) -> None:
        self.scripts.setdefault(deployment, deque()).extend(steps)

    def _next(self, d: Deployment) -> Step:
        self.calls.append(d.name)
        q = self.scripts.get(d.name)
        return q.popleft() if q else Step(text=self.default_text)

    async def _wait(
        self, seconds: float, limit: float | None, on_limit: E.RouterError, hang: bool = False
    ) -> None:
        if limit is not None and (hang or seconds > limit):
            await self.clock.sleep(limit)
            raise on_limit
        if hang:
            try:
                await asyncio.Event().wait()  # until cancelled
            except asyncio.CancelledError:
                self.cancelled.append(on_limit.model or "")
                raise
        await self.clock.sleep(seconds)

    @staticmethod
    def _cap(a: float | None, b: float | None) -> float | None:
        vals = [v for v in (a, b) if v is not None]
        return min(vals) if vals else None

    async def complete(
        self, deployment: Deployment, request: ChatRequest, options: CallOptions
    ) -> ChatResponse:
        step = self._next(deployment)
        where = {"provider": deployment.provider, "model": deployment.name}
        limit = self._cap(options.read, options.total)
        await self._wait(
            step.latency,
            None if step.block else limit,
            E.AttemptTimeout("read timeout", **where),
            step.hang or step.block,
        )
        if step.error is not None:
            raise step.error(deployment)
        return ChatResponse(
            content=step.text,
            model=deployment.name,
            provider=deployment.provider,
            provider_model=deployment.model,
            finish_reason="stop",
            usage=Usage(step.usage.input_tokens, step.usage.output_tokens),
        )

    async def stream(
        self, deployment: Deployment, request: ChatRequest, options: CallOptions
    ) -> AsyncIterator[AdapterEvent]:
        step = self._next(deployment)
        where = {"provider": deployment.provider, "model": deployment.name}
        start = self.clock.now()
        hard = start + options.total if options.total is not None else None
        first = self._cap(self._cap(options.first_token, options.read), options.total)
        await self._wait(
            step.latency,
            None if step.block else first,
            E.FirstTokenTimeout("no first token", **where),
            step.hang or step.block,
        )
        if step.error is not None:
            raise step.error(deployment)
        size = max(1, -(-len(step.text) // step.chunks))
        pieces = [step.text[i : i + size] for i in range(0, len(step.text), size)] or [step.text]
        for i, piece in enumerate(pieces):
            if step.cut_after is not None and i >= step.cut_after:
                raise E.StreamCut("the stream ended without [DONE]", **where)
            if step.fail_after is not None and i >= step.fail_after:
                raise E.ServerError("in-band error", **where)
            if step.stall_after is not None and i >= step.stall_after:
                left = None if hard is None else max(0.0, hard - self.clock.now())
                idle = self._cap(options.idle, left)
                await self._wait(0, idle, E.StreamStalled("stalled", **where), True)
            if i:
                await self.clock.sleep(0.001)
            yield TextDelta(piece)
        yield StreamEnd(
            ChatResponse(
                content="".join(pieces),
                model=deployment.name,
                provider=deployment.provider,
                provider_model=deployment.model,
                finish_reason="stop",
                usage=Usage(step.usage.input_tokens, step.usage.output_tokens),
            )
        )

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: CallOptions
    ) -> EmbeddingResponse:
        step = self._next(deployment)
        if step.error is not None:
            raise step.error(deployment)
        return EmbeddingResponse(
            vectors=[[1.0] for _ in request.input],
            model=deployment.name,
            provider=deployment.provider,
            provider_model=deployment.model,
            usage=Usage(len(request.input)),
        )

    async def aclose(self) -> None:
        self.closed = True


def config(
    chain: tuple[str, ...] = ("a", "b", "c"),
    *,
    retries: int = 2,
    total: str = "60s",
    route: dict[str, Any] | None = None,
    defaults: dict[str, Any] | None = None,
    models: dict[str, dict[str, Any]] | None = None,
) -> RouterConfig:
    """A config whose deployments all use one fake provider ``p``."""
    names = dict.fromkeys([*chain, *(models or {})])
    data: dict[str, Any] = {
        "providers": {"p": {"kind": "openai", "base_url": "http://fake.invalid/v1"}},
        "models": {n: {"provider": "p", "model": "gpt-4o-mini", **(models or {}).get(n, {})} for n in names},
        "routes": {"r": {"chain": list(chain), **(route or {})}},
        "defaults": {
            "retries": retries,
            "timeouts": {"total": total, "connect": "1s", "read": "5s", "first_token": "2s", "idle": "1s"},
            "breaker": {"failures": 3, "window": "30s", "cooldown": "10s"},
            **(defaults or {}),
        },
    }
    return parse_config(data)
