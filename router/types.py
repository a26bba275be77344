"""Normalized request, response, stream-event and audit types, whatever the provider.

These are the router's public data types. Adapters translate between them and each provider's
wire format with pure functions; the router, the sidecar and the patterns speak only these.
They are plain slotted dataclasses (not pydantic models) because they sit on the hot path.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error", "other"]


@dataclass(slots=True)
class TextPart:
    """A piece of message text; ``cache`` marks the end of a prefix worth caching (Anthropic)."""

    text: str
    cache: bool = False


@dataclass(slots=True)
class ToolCall:
    id: str
    name: str
    arguments: str  # the raw JSON text as the model produced it (it may be invalid JSON)


@dataclass(slots=True)
class ToolSpec:
    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})


@dataclass(slots=True, frozen=True)
class ResponseFormat:
    """Structured output: ``json_schema`` asks for JSON valid against ``schema``; ``json_object``
    for any JSON object. Each adapter says it in its provider's terms (router/structured.py)."""

    type: Literal["json_schema", "json_object"]
    name: str = "response"
    schema: dict[str, Any] | None = None
    strict: bool | None = None
    description: str | None = None


@dataclass(slots=True)
class Message:
    role: Role
    content: str | list[TextPart] = ""
    name: str | None = None
    tool_calls: list[ToolCall] = field(default_factory=list)  # on assistant messages
    tool_call_id: str | None = None  # on tool messages

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


@dataclass(slots=True)
class ChatRequest:
    """What a caller asks for. ``model`` names a route or a single deployment."""

    model: str
    messages: list[Message]
    system: str | list[TextPart] | None = None  # adapters move it where the provider wants it
    max_tokens: int | None = None
    temperature: float | None = None
    top_p: float | None = None
    stop: list[str] = field(default_factory=list)
    seed: int | None = None
    tools: list[ToolSpec] = field(default_factory=list)
    tool_choice: str | dict[str, Any] | None = None
    response_format: ResponseFormat | None = None
    stream: bool = False
    user: str | None = None
    metadata: dict[str, str] = field(default_factory=dict)  # routing hints, never sent upstream
    extra: dict[str, Any] = field(default_factory=dict)  # provider parameters passed through as they are
    # Assistant text the answer must continue (a cut stream's text, router/_continuation.py):
    # adapters send it as their provider's prefill, after the messages.
    prefill: str | None = None
    caller_key: str | None = None  # the caller's API key (sidecar: its bearer token), for budgets; not sent


@dataclass(slots=True)
class Usage:
    input_tokens: int = 0
    output_tokens: int = 0
    cached_input_tokens: int = 0  # read from a prompt cache (billed at the cached rate)
    cache_write_tokens: int = 0  # written to a prompt cache (Anthropic cache creation)

    @property
    def total_tokens(self) -> int:
        return self.input_tokens + self.output_tokens


@dataclass(slots=True)
class ChatResponse:
    """One answer, normalized. ``model`` is the deployment that really answered."""

    content: str
    model: str  # deployment name from the configuration
    provider: str  # provider name from the configuration
    provider_model: str  # the model id the provider reported
    finish_reason: FinishReason
    usage: Usage
    tool_calls: list[ToolCall] = field(default_factory=list)
    latency_s: float = 0.0  # of the winning attempt
    ttft_s: float | None = None  # time to first token, for streamed attempts
    cost_usd: float | None = None  # None when no price is known
    request_id: str = ""  # the router's id, also in the audit record
    route: str = ""
    attempts: int = 1
    raw: Any = None  # the provider's response body (or the last chunk of a stream)


@dataclass(slots=True)
class EmbeddingRequest:
    model: str
    input: list[str]
    dimensions: int | None = None
    metadata: dict[str, str] = field(default_factory=dict)


@dataclass(slots=True)
class EmbeddingResponse:
    vectors: list[list[float]]
    model: str
    provider: str
    provider_model: str
    usage: Usage
    cost_usd: float | None = None
    request_id: str = ""
    route: str = ""
    attempts: int = 1


# --- stream events -------------------------------------------------------------------------------
# A stream yields StreamStart once (only after the first content arrived, so a failover before it
# is invisible to the caller), then deltas, then StreamEnd. A failure after StreamStart is raised
# from the iterator as router.errors.StreamInterrupted: it never ends with StreamEnd.


@dataclass(slots=True)
class StreamStart:
    model: str
    provider: str
    provider_model: str
    request_id: str
    route: str
    attempts: int
    upstream_s: float = 0.0  # time spent on providers so far: tries, waits, the winner's first token


@dataclass(slots=True)
class TextDelta:
    text: str


@dataclass(slots=True)
class ToolCallDelta:
    index: int
    id: str | None = None
    name: str | None = None
    arguments: str = ""


@dataclass(slots=True)
class StreamEnd:
    response: ChatResponse  # the whole answer, as complete() would have returned it


StreamEvent = StreamStart | TextDelta | ToolCallDelta | StreamEnd


# --- audit ---------------------------------------------------------------------------------------

AttemptOutcome = Literal["success", "error", "skipped", "cancelled"]
# Why an attempt waited (or, on a skip, why the deployment was closed): "rate-limit" for the
# limiter (its buckets, or a provider's "0 remaining" / 429), "retry-after" for a breaker a
# provider's retry-after tripped, "cooldown" for a breaker opened by failures.
WaitSource = Literal["none", "backoff", "retry-after", "rate-limit", "cooldown"]


@dataclass(slots=True)
class AttemptRecord:
    """One try of one deployment, or a deployment skipped (breaker open, rate limit, budget)."""

    model: str
    provider: str
    outcome: AttemptOutcome
    started_at: float  # router clock
    latency_s: float = 0.0
    ttft_s: float | None = None
    error_kind: str | None = None  # router.errors.ErrorKind value
    status: int | None = None
    message: str | None = None
    wait_s: float = 0.0  # waited before this attempt
    wait_source: WaitSource = "none"
    usage: Usage | None = None
    cost_usd: float | None = None
    streamed: bool = False
    continued_from: int | None = None  # a stream's continuation: characters carried over as prefill


# What became of a stream that failed after output began: "continued" on a deployment that could
# continue it; "failed" when every continuation attempt failed; "impossible" when nothing could
# continue it (a tool call was cut, or no deployment left can continue).
ContinuationOutcome = Literal["continued", "failed", "impossible"]


@dataclass(slots=True)
class AuditRecord:
    """Everything the router decided for one request; one per request, success or not."""

    request_id: str
    route: str
    candidates: list[str]
    started_at: float  # wall-clock epoch seconds
    attempts: list[AttemptRecord] = field(default_factory=list)
    winner: str | None = None
    outcome: Literal["success", "error"] = "success"
    error_kind: str | None = None
    latency_s: float = 0.0
    usage: Usage = field(default_factory=Usage)
    cost_usd: float | None = None
    streamed: bool = False
    decisions: list[str] = field(default_factory=list)  # human-readable: why this route, fallback, hedge
    continuation: ContinuationOutcome | None = None  # None: no stream failed after output began
    saved_usd: float | None = None  # a cascade: the top tier's price for the answer minus what it spent
