"""OpenAI chat completions and embeddings, and every OpenAI-compatible server (vLLM, Ollama, ...).

Pure translation between the normalized types and OpenAI's wire format; the HTTP call itself is
the shared :class:`router.adapters._http.HttpAdapter`. Mistral reuses most of this module.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from typing import Any

from router.adapters._http import Codec
from router.adapters.base import Deployment, StreamAccumulator, token_count
from router.adapters.provider import Provider
from router.classify import classify_stream_error, malformed
from router.headers import RateLimitDialect, RateLimitSnapshot, parse_duration, snapshot
from router.structured import to_openai
from router.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    FinishReason,
    Message,
    TextDelta,
    ToolCall,
    ToolCallDelta,
    ToolSpec,
    Usage,
)
from turnout import safejson
from turnout.sse import SSEEvent

FINISH: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",
    "content_filter": "content_filter",
    "model_length": "length",  # Mistral
    "error": "error",  # Mistral
}


def chat_path(deployment: Deployment) -> str:
    return "/chat/completions"


def embeddings_path(deployment: Deployment) -> str:
    return "/embeddings"


def auth_headers(api_key: str | None) -> dict[str, str]:
    return {"authorization": f"Bearer {api_key}"} if api_key else {}


def _text(content: Any) -> str:
    return content if isinstance(content, str) else "".join(p.text for p in content)


def message_to_wire(m: Message) -> dict[str, Any]:
    out: dict[str, Any] = {"role": m.role, "content": _text(m.content)}
    if m.name:
        out["name"] = m.name
    if m.tool_calls:
        out["tool_calls"] = [
            {"id": t.id, "type": "function", "function": {"name": t.name, "arguments": t.arguments}}
            for t in m.tool_calls
        ]
        if not out["content"]:
            out["content"] = None
    if m.tool_call_id is not None:
        out["tool_call_id"] = m.tool_call_id
    return out


def tool_to_wire(t: ToolSpec) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": t.name, "parameters": t.parameters}
    if t.description:
        fn["description"] = t.description
    return {"type": "function", "function": fn}


def messages_to_wire(request: ChatRequest) -> list[dict[str, Any]]:
    msgs = [message_to_wire(m) for m in request.messages]
    if request.system:
        msgs.insert(0, {"role": "system", "content": _text(request.system)})
    return msgs


def to_wire(
    request: ChatRequest,
    deployment: Deployment,
    *,
    max_tokens_field: str = "max_tokens",
    continue_final_message: bool = False,
) -> dict[str, Any]:
    """The JSON body of ``POST /chat/completions`` for ``request`` on ``deployment``.

    The two things OpenAI-compatible servers disagree on are the codec's to set (with
    ``functools.partial``): the name of the output limit, and whether a trailing assistant
    message (a prefill) is continued with vLLM's ``continue_final_message``.
    """
    body: dict[str, Any] = {"model": deployment.model, "messages": messages_to_wire(request)}
    if request.prefill is not None:
        body["messages"].append({"role": "assistant", "content": request.prefill})
        if continue_final_message:  # vLLM and friends: continue, not a new turn
            body["continue_final_message"] = True
            body["add_generation_prompt"] = False
    max_tokens = request.max_tokens or deployment.max_tokens
    if max_tokens is not None:
        body[max_tokens_field] = max_tokens
    if request.temperature is not None:
        body["temperature"] = request.temperature
    if request.top_p is not None:
        body["top_p"] = request.top_p
    if request.stop:
        body["stop"] = list(request.stop)
    if request.seed is not None:
        body["seed"] = request.seed
    if request.tools:
        body["tools"] = [tool_to_wire(t) for t in request.tools]
    if request.tool_choice is not None:
        body["tool_choice"] = request.tool_choice
    if request.response_format is not None:
        body["response_format"] = to_openai(request.response_format)
    if request.user:
        body["user"] = request.user
    if request.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    if request.extra:
        body.update(request.extra)
    return body


def usage_from_wire(u: Any) -> Usage:
    if not isinstance(u, dict):
        return Usage()
    details = u.get("prompt_tokens_details")
    cached = details.get("cached_tokens") if isinstance(details, dict) else None
    return Usage(
        input_tokens=token_count(u.get("prompt_tokens"), "prompt_tokens"),
        output_tokens=token_count(u.get("completion_tokens"), "completion_tokens"),
        cached_input_tokens=token_count(cached, "prompt_tokens_details.cached_tokens"),
    )


def _tool_calls(raw: Any) -> list[ToolCall]:
    calls = []
    for t in raw or ():
        fn = t.get("function") or {}
        calls.append(
            ToolCall(
                id=str(t.get("id", "")), name=str(fn.get("name", "")), arguments=fn.get("arguments") or ""
            )
        )
    return calls


def from_wire(body: Any, deployment: Deployment) -> ChatResponse:
    """A ChatResponse from a chat completion body; MalformedResponse naming what is missing."""
    where: dict[str, Any] = {"provider": deployment.provider, "model": deployment.name}
    if not isinstance(body, dict):
        raise malformed("response body is not a JSON object", **where, raw=repr(body))
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        raise malformed("response has no choices[0]", **where, raw=json.dumps(body))
    choice = choices[0]
    message = choice.get("message")
    if not isinstance(message, dict):
        raise malformed("response has no choices[0].message", **where, raw=json.dumps(body))
    content = message.get("content")
    if content is not None and not isinstance(content, str):
        raise malformed("choices[0].message.content is not a string", **where, raw=json.dumps(body))
    try:
        tool_calls = _tool_calls(message.get("tool_calls"))
        usage = usage_from_wire(body.get("usage"))
    except (AttributeError, TypeError, ValueError):
        raise malformed("tool_calls or usage malformed", **where, raw=json.dumps(body)) from None
    finish = FINISH.get(choice.get("finish_reason") or "", "other")
    return ChatResponse(
        content=content or "",
        model=deployment.name,
        provider=deployment.provider,
        provider_model=str(body.get("model") or deployment.model),
        finish_reason=finish,
        usage=usage,
        tool_calls=tool_calls,
        raw=body,
    )


def parse_event(ev: SSEEvent, acc: StreamAccumulator) -> list[TextDelta | ToolCallDelta]:
    """Apply one SSE event to ``acc``; return the deltas it carried. Raises in-band errors."""
    data = ev.data
    if data == "[DONE]":
        acc.done = True
        return []
    dep = acc.deployment
    try:
        chunk = safejson.loads(data)
    except ValueError:
        raise malformed("stream event is not JSON", provider=dep.provider, model=dep.name, raw=data) from None
    if not isinstance(chunk, dict):
        raise malformed("stream event is not a JSON object", provider=dep.provider, model=dep.name, raw=data)
    if "error" in chunk or chunk.get("object") == "error":
        raise classify_stream_error(dep.kind, chunk, provider=dep.provider, model=dep.name)
    acc.raw = chunk
    out: list[TextDelta | ToolCallDelta] = []
    try:
        if chunk.get("model"):
            acc.provider_model = chunk["model"]
        usage = chunk.get("usage")
        if usage:
            acc.usage = usage_from_wire(usage)
        for choice in chunk.get("choices") or ():
            delta = choice.get("delta") or {}
            text = delta.get("content")
            if text:
                acc.text.append(text)
                out.append(TextDelta(text))
            for t in delta.get("tool_calls") or ():
                fn = t.get("function") or {}
                out.append(
                    acc.add_tool(
                        int(t.get("index", 0)), t.get("id"), fn.get("name"), fn.get("arguments") or ""
                    )
                )
            reason = choice.get("finish_reason")
            if reason:
                acc.finish_reason = FINISH.get(reason, "other")
    except (AttributeError, TypeError, ValueError):
        raise malformed("stream chunk malformed", provider=dep.provider, model=dep.name, raw=data) from None
    return out


def embed_to_wire(request: EmbeddingRequest, deployment: Deployment) -> dict[str, Any]:
    body: dict[str, Any] = {"model": deployment.model, "input": request.input, "encoding_format": "float"}
    if request.dimensions is not None:
        body["dimensions"] = request.dimensions
    return body


def embed_from_wire(body: Any, deployment: Deployment) -> EmbeddingResponse:
    where: dict[str, Any] = {"provider": deployment.provider, "model": deployment.name}
    data = body.get("data") if isinstance(body, dict) else None
    if not isinstance(data, list):
        raise malformed("embeddings response has no data list", **where, raw=repr(body))
    try:
        rows = sorted(data, key=lambda d: int(d.get("index", 0)))
        vectors = [[float(x) for x in row["embedding"]] for row in rows]
    except (AttributeError, KeyError, TypeError, ValueError):
        raise malformed("embeddings data malformed", **where, raw=json.dumps(body)[:200]) from None
    usage = body.get("usage") or {}
    return EmbeddingResponse(
        vectors=vectors,
        model=deployment.name,
        provider=deployment.provider,
        provider_model=str(body.get("model") or deployment.model),
        usage=Usage(input_tokens=int(usage.get("prompt_tokens") or 0)),
    )


# x-ratelimit-{limit,remaining,reset}-{requests,tokens}, resets as Go durations ("6ms", "6m0s"):
# OpenAI's names, which most OpenAI-compatible servers copy.
REMAINING = ("x-ratelimit-remaining-requests", "x-ratelimit-remaining-tokens")


def parse_ratelimits(h: Mapping[str, str], now_epoch: float | None) -> RateLimitSnapshot | None:
    return snapshot(
        h.get("x-ratelimit-remaining-requests"),
        h.get("x-ratelimit-remaining-tokens"),
        h.get("x-ratelimit-limit-requests"),
        h.get("x-ratelimit-limit-tokens"),
        parse_duration(h.get("x-ratelimit-reset-requests")),
        parse_duration(h.get("x-ratelimit-reset-tokens")),
    )


RATE_LIMITS = RateLimitDialect(parse_ratelimits, REMAINING)


def codec(kind: str, *, max_tokens_field: str = "max_tokens", continue_final_message: bool = False) -> Codec:
    """OpenAI's codec under another ``kind``: what an OpenAI-compatible provider reuses."""
    return Codec(
        kind=kind,
        chat_path=chat_path,
        auth_headers=auth_headers,
        to_wire=functools.partial(
            to_wire, max_tokens_field=max_tokens_field, continue_final_message=continue_final_message
        ),
        from_wire=from_wire,
        parse_event=parse_event,
        terminator="[DONE]",
        complete_on_finish=True,
        embeddings_path=embeddings_path,
        embed_to_wire=embed_to_wire,
        embed_from_wire=embed_from_wire,
    )


# OpenAI itself wants max_completion_tokens (reasoning models reject max_tokens). Its chat API
# answers a trailing assistant message afresh: it never continues one. Batches: files + batches.
PROVIDER = Provider(
    codec=codec("openai", max_tokens_field="max_completion_tokens"),
    ratelimits=RATE_LIMITS,
    price_id="openai",
    batch="openai",
)

# Any OpenAI-compatible server (vLLM, Ollama, llama.cpp, a proxy): max_tokens, vLLM-style
# continuation when the deployment says so, and no price of its own (model names say nothing).
COMPATIBLE = Provider(
    codec=codec("openai_compatible", continue_final_message=True),
    ratelimits=RATE_LIMITS,
    may_continue=True,
)
