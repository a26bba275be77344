"""The one contract every provider adapter meets, and the small types it is called with.

An adapter turns a normalized :class:`~router.types.ChatRequest` into one HTTP call to one
provider and the answer back into a :class:`~router.types.ChatResponse` (or a stream of deltas
ending in :class:`~router.types.StreamEnd`). It makes exactly one attempt: retries, fallbacks,
breakers and budgets belong to the engine. Failures leave it as :class:`router.errors.RouterError`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

from router.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    StreamEnd,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    Usage,
)

AdapterEvent = TextDelta | ToolCallDelta | StreamEnd
HeadersHook = Callable[[Mapping[str, str]], None]


_MAX_TOKENS = 1 << 40  # far above any context window: a bigger count is a broken reply


def token_count(value: object, name: str) -> int:
    """A usage count from a provider's reply: a non-negative integer (``3.0`` is 3), or
    ``ValueError`` naming the field (``1e400``, ``-5``, ``"12"`` are broken replies, not counts)."""
    if value is None:
        return 0
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= _MAX_TOKENS:
        raise ValueError(f"usage.{name} is not a token count: {str(value)[:40]}")
    return value


@dataclass(slots=True, frozen=True)
class Deployment:
    """A provider's model as the router calls it; built once from the config, URLs precomputed."""

    name: str  # the deployment's name in the config
    provider: str  # the provider's name in the config
    kind: str  # a key of router.adapters.PROVIDERS (openai, anthropic, groq, ...)
    model: str  # the model id sent upstream
    base_url: str
    chat_url: str = ""  # base_url + the provider's chat path, precomputed
    embeddings_url: str = ""  # empty when the provider has no embeddings API
    headers: Mapping[str, str] = field(default_factory=dict)  # auth + config headers, precomputed
    max_tokens: int | None = None
    context_window: int | None = None
    continuation: bool = False  # can continue a cut stream from an assistant prefill


@dataclass(slots=True)
class CallOptions:
    """Limits for one attempt, already capped by the request's remaining budget (seconds)."""

    connect: float | None = None  # until the connection is open
    read: float | None = None  # non-streaming: until the whole answer is read
    first_token: float | None = None  # streaming: until the first content delta
    idle: float | None = None  # streaming: longest silence between events after the first token
    total: float | None = None  # the request's remaining budget: no wait of this attempt goes past it
    on_headers: HeadersHook | None = None  # sees every response's headers (rate-limit feedback)


class Adapter(Protocol):
    """One provider's HTTP API. One instance per configured provider, one session each."""

    async def complete(
        self, deployment: Deployment, request: ChatRequest, options: CallOptions
    ) -> ChatResponse:
        """One non-streaming attempt."""
        ...

    def stream(
        self, deployment: Deployment, request: ChatRequest, options: CallOptions
    ) -> AsyncIterator[AdapterEvent]:
        """One streaming attempt: deltas, then exactly one StreamEnd, or an error raised."""
        ...

    async def embed(
        self, deployment: Deployment, request: EmbeddingRequest, options: CallOptions
    ) -> EmbeddingResponse:
        """One embeddings attempt."""
        ...

    async def aclose(self) -> None:
        """Close the provider's session."""
        ...


class StreamAccumulator:
    """What a stream has said so far; a provider's chunk parser fills it, ``response()`` sums it."""

    __slots__ = (
        "deployment",
        "done",
        "finish_reason",
        "provider_model",
        "raw",
        "structured",
        "text",
        "tools",
        "usage",
    )

    def __init__(self, deployment: Deployment) -> None:
        self.deployment = deployment
        self.text: list[str] = []
        self.tools: dict[int, list[str]] = {}  # index -> [id, name, arguments]
        self.finish_reason: FinishReason | None = None
        self.usage = Usage()
        self.provider_model = deployment.model
        self.done = False  # the provider's terminator was seen
        self.raw: object = None  # the last parsed chunk
        self.structured = -1  # the block carrying a structured answer as a tool's input (Anthropic)

    def add_tool(self, index: int, id: str | None, name: str | None, arguments: str) -> ToolCallDelta:
        slot = self.tools.get(index)
        if slot is None:
            slot = self.tools[index] = ["", "", ""]
        if id:
            slot[0] = id
        if name:
            slot[1] = name
        slot[2] += arguments
        return ToolCallDelta(index=index, id=id, name=name, arguments=arguments)

    def response(self) -> ChatResponse:
        tool_calls = [ToolCall(id=t[0], name=t[1], arguments=t[2]) for _, t in sorted(self.tools.items())]
        finish = self.finish_reason or ("tool_calls" if tool_calls else "stop")
        return ChatResponse(
            content="".join(self.text),
            model=self.deployment.name,
            provider=self.deployment.provider,
            provider_model=self.provider_model,
            finish_reason=finish,
            usage=self.usage,
            tool_calls=tool_calls,
            raw=self.raw,
        )
