"""Anthropic messages API: pure translation to and from its wire format.

Differences from OpenAI handled here: ``system`` is a top-level field (system messages found in
the conversation are moved there), ``max_tokens`` is required, tool results are user messages
with ``tool_result`` blocks, ``cache`` marks become ``cache_control`` blocks, and streams are
typed events ending with ``message_stop``, with errors possible in-band (``event: error``).

Structured outputs (``request.response_format``) become a forced tool, :data:`STRUCTURED_TOOL`,
whose ``input_schema`` is the schema; its input comes back as the answer's text (JSON), with
``finish_reason: stop``, never as a tool call, so the caller cannot tell Claude answered.

Usage is normalized so that ``input_tokens`` counts every prompt token, as OpenAI does: Anthropic's
``input_tokens`` excludes cache reads and writes, so they are added back.
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import Any

from router.adapters._http import Codec
from router.adapters.base import Deployment, StreamAccumulator, token_count
from router.adapters.provider import Provider
from router.classify import classify_stream_error, malformed
from router.headers import RateLimitDialect, RateLimitSnapshot, rfc3339_in, snapshot
from router.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    ResponseFormat,
    TextDelta,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from turnout import safejson
from turnout.sse import SSEEvent

VERSION = "2023-06-01"
DEFAULT_MAX_TOKENS = 4096
# The forced tool that carries a structured answer. A reserved name, so answers and stream
# events are recognised without the request.
STRUCTURED_TOOL = "turnout_structured_output"

FINISH: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
}


def chat_path(deployment: Deployment) -> str:
    return "/v1/messages"


def auth_headers(api_key: str | None) -> dict[str, str]:
    h = {"anthropic-version": VERSION}
    if api_key:
        h["x-api-key"] = api_key
    return h


def _blocks(content: str | list[TextPart]) -> str | list[dict[str, Any]]:
    if isinstance(content, str):
        return content
    out: list[dict[str, Any]] = []
    for part in content:
        block: dict[str, Any] = {"type": "text", "text": part.text}
        if part.cache:
            block["cache_control"] = {"type": "ephemeral"}
        out.append(block)
    return out


def _tool_input(arguments: str) -> Any:
    try:
        value = safejson.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def _message(m: Message) -> dict[str, Any]:
    if m.role == "tool":
        block = {"type": "tool_result", "tool_use_id": m.tool_call_id or "", "content": m.text}
        return {"role": "user", "content": [block]}
    if m.role == "assistant" and m.tool_calls:
        blocks: list[dict[str, Any]] = []
        if m.text:
            blocks.append({"type": "text", "text": m.text})
        for t in m.tool_calls:
            blocks.append({"type": "tool_use", "id": t.id, "name": t.name, "input": _tool_input(t.arguments)})
        return {"role": "assistant", "content": blocks}
    return {"role": m.role, "content": _blocks(m.content)}


def _tool_choice(choice: str | dict[str, Any]) -> dict[str, Any]:
    if isinstance(choice, str):
        return {"type": {"required": "any"}.get(choice, choice)}
    fn = choice.get("function")
    if choice.get("type") == "function" and isinstance(fn, dict):
        return {"type": "tool", "name": fn.get("name", "")}
    return choice


def _structured(body: dict[str, Any], fmt: ResponseFormat, own_tools: bool) -> None:
    """Ask for a structured answer as Anthropic does it: a forced tool whose input is the answer."""
    schema = fmt.schema if fmt.type == "json_schema" and fmt.schema else {"type": "object"}
    what = fmt.description or (f"'{fmt.name}'" if fmt.type == "json_schema" else "a JSON object")
    tool = {
        "name": STRUCTURED_TOOL,
        "description": f"Give your answer ({what}) as this tool's input.",
        "input_schema": schema,
    }
    body.setdefault("tools", []).append(tool)
    choice = body.get("tool_choice")
    if not own_tools or choice is None or choice.get("type") in ("none", "auto"):
        # With the caller's own tools, the model may call one of them or answer (any tool);
        # without, it must answer through this one.
        body["tool_choice"] = {"type": "any"} if own_tools else {"type": "tool", "name": STRUCTURED_TOOL}


def to_wire(request: ChatRequest, deployment: Deployment) -> dict[str, Any]:
    """The JSON body of ``POST /v1/messages`` for ``request`` on ``deployment``."""
    system: list[str | list[TextPart]] = [request.system] if request.system else []
    messages = []
    for m in request.messages:
        if m.role == "system":
            system.append(m.content)
        else:
            messages.append(_message(m))
    if request.prefill is not None:
        # A trailing assistant message is continued; Anthropic refuses one ending in whitespace.
        messages.append({"role": "assistant", "content": request.prefill.rstrip()})
    body: dict[str, Any] = {
        "model": deployment.model,
        "messages": messages,
        "max_tokens": request.max_tokens or deployment.max_tokens or DEFAULT_MAX_TOKENS,
    }
    if len(system) == 1:
        body["system"] = _blocks(system[0])
    elif system:
        parts: list[TextPart] = []
        for s in system:
            parts.extend([TextPart(s)] if isinstance(s, str) else s)
        body["system"] = _blocks(parts)
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop_sequences"] = list(request.stop)
    if request.tools:
        body["tools"] = [
            {"name": t.name, "description": t.description, "input_schema": t.parameters}
            for t in request.tools
        ]
    if request.tool_choice is not None and request.tools:
        body["tool_choice"] = _tool_choice(request.tool_choice)
    if request.response_format is not None:
        _structured(body, request.response_format, bool(request.tools))
    if request.user:
        body["metadata"] = {"user_id": request.user}
    if request.stream:
        body["stream"] = True
    if request.extra:
        body.update(request.extra)
    return body


def usage_from_wire(u: Any, base: Usage | None = None) -> Usage:
    """Normalized usage; ``base`` holds the counts from ``message_start`` that deltas omit."""
    if not isinstance(u, dict):
        return base or Usage()
    usage = base or Usage()
    read, write = u.get("cache_read_input_tokens"), u.get("cache_creation_input_tokens")
    if read is not None:
        usage.cached_input_tokens = token_count(read, "cache_read_input_tokens")
    if write is not None:
        usage.cache_write_tokens = token_count(write, "cache_creation_input_tokens")
    if u.get("input_tokens") is not None:
        usage.input_tokens = (
            token_count(u["input_tokens"], "input_tokens")
            + usage.cached_input_tokens
            + usage.cache_write_tokens
        )
    if u.get("output_tokens") is not None:
        usage.output_tokens = token_count(u["output_tokens"], "output_tokens")
    return usage


def from_wire(body: Any, deployment: Deployment) -> ChatResponse:
    """A ChatResponse from a messages body; MalformedResponse naming what is missing."""
    where: dict[str, Any] = {"provider": deployment.provider, "model": deployment.name}
    if not isinstance(body, dict):
        raise malformed("response body is not a JSON object", **where, raw=repr(body))
    content = body.get("content")
    if not isinstance(content, list):
        raise malformed("response has no content list", **where, raw=json.dumps(body))
    text: list[str] = []
    tools: list[ToolCall] = []
    try:
        for block in content:
            btype = block.get("type")
            if btype == "text":
                text.append(block["text"])
            elif btype == "tool_use" and block["name"] == STRUCTURED_TOOL:
                text.append(json.dumps(block.get("input", {})))
            elif btype == "tool_use":
                tools.append(
                    ToolCall(id=block["id"], name=block["name"], arguments=json.dumps(block.get("input", {})))
                )
        usage = usage_from_wire(body.get("usage"))
    except (AttributeError, KeyError, TypeError, ValueError):
        raise malformed("content blocks or usage malformed", **where, raw=json.dumps(body)) from None
    finish = FINISH.get(body.get("stop_reason") or "", "other")
    if finish == "tool_calls" and not tools:  # only the structured answer's tool: an answer
        finish = "stop"
    return ChatResponse(
        content="".join(text),
        model=deployment.name,
        provider=deployment.provider,
        provider_model=str(body.get("model") or deployment.model),
        finish_reason=finish,
        usage=usage,
        tool_calls=tools,
        raw=body,
    )


def parse_event(ev: SSEEvent, acc: StreamAccumulator) -> list[TextDelta | ToolCallDelta]:
    """Apply one SSE event to ``acc``; return the deltas it carried. Raises in-band errors."""
    dep = acc.deployment
    if ev.event == "ping":
        return []
    try:
        payload = safejson.loads(ev.data)
    except ValueError:
        raise malformed(
            "stream event is not JSON", provider=dep.provider, model=dep.name, raw=ev.data
        ) from None
    if not isinstance(payload, dict):
        raise malformed(
            "stream event is not a JSON object", provider=dep.provider, model=dep.name, raw=ev.data
        )
    etype = payload.get("type") or ev.event
    if etype == "error" or ev.event == "error":
        raise classify_stream_error(dep.kind, payload, provider=dep.provider, model=dep.name)
    try:
        if etype == "content_block_delta":
            delta = payload["delta"]
            dtype = delta.get("type")
            if dtype == "text_delta":
                acc.text.append(delta["text"])
                return [TextDelta(delta["text"])]
            if dtype == "input_json_delta":
                if int(payload["index"]) == acc.structured:
                    piece = delta.get("partial_json", "")
                    acc.text.append(piece)
                    return [TextDelta(piece)] if piece else []
                return [acc.add_tool(int(payload["index"]), None, None, delta.get("partial_json", ""))]
            return []  # thinking, signature, citations: not part of the normalized answer
        if etype == "content_block_start":
            block = payload["content_block"]
            if block.get("type") == "tool_use" and block.get("name") == STRUCTURED_TOOL:
                acc.structured = int(payload["index"])
                return []
            if block.get("type") == "tool_use":
                return [acc.add_tool(int(payload["index"]), block.get("id"), block.get("name"), "")]
            if block.get("type") == "text" and block.get("text"):
                acc.text.append(block["text"])
                return [TextDelta(block["text"])]
            return []
        if etype == "message_start":
            message = payload["message"]
            acc.provider_model = str(message.get("model") or dep.model)
            acc.usage = usage_from_wire(message.get("usage"))
        elif etype == "message_delta":
            reason = (payload.get("delta") or {}).get("stop_reason")
            if reason:
                acc.finish_reason = FINISH.get(reason, "other")
                if acc.finish_reason == "tool_calls" and not acc.tools:
                    acc.finish_reason = "stop"  # only the structured answer's tool
            acc.usage = usage_from_wire(payload.get("usage"), acc.usage)
            acc.raw = payload
        elif etype == "message_stop":
            acc.done = True
    except (AttributeError, KeyError, TypeError, ValueError):
        raise malformed(
            f"{etype} event malformed", provider=dep.provider, model=dep.name, raw=ev.data
        ) from None
    return []


_RL = "anthropic-ratelimit-"


def parse_ratelimits(h: Mapping[str, str], now_epoch: float | None) -> RateLimitSnapshot | None:
    """``anthropic-ratelimit-{requests,tokens}-{limit,remaining,reset}``, resets as RFC 3339 times
    (measured from ``now_epoch``); ``input-tokens-*`` when ``tokens-*`` is missing."""
    now = time.time() if now_epoch is None else now_epoch
    tok = "tokens-" if (_RL + "tokens-remaining") in h or (_RL + "tokens-limit") in h else "input-tokens-"
    return snapshot(
        h.get(_RL + "requests-remaining"),
        h.get(_RL + tok + "remaining"),
        h.get(_RL + "requests-limit"),
        h.get(_RL + tok + "limit"),
        rfc3339_in(h.get(_RL + "requests-reset"), now),
        rfc3339_in(h.get(_RL + tok + "reset"), now),
    )


RATE_LIMITS = RateLimitDialect(
    parse_ratelimits,
    (_RL + "requests-remaining", _RL + "tokens-remaining", _RL + "input-tokens-remaining"),
)

# Caches only what the request marks (cache_control); continues a trailing assistant message;
# message batches with the requests inline; max_tokens is required (to_wire sets a default).
PROVIDER = Provider(
    codec=Codec(
        kind="anthropic",
        chat_path=chat_path,
        auth_headers=auth_headers,
        to_wire=to_wire,
        from_wire=from_wire,
        parse_event=parse_event,
        terminator="message_stop",
    ),
    ratelimits=RATE_LIMITS,
    price_id="anthropic",
    marks_cache=True,
    batch="anthropic",
    continues=True,
    may_continue=True,
)
