"""OpenAI's wire format: chat completions (streaming and not), embeddings, models."""

from __future__ import annotations

import base64
import struct
from collections.abc import Iterator, Mapping, Sequence
from typing import Any, ClassVar

from mockproviders.answers import ChatQuery, Choice
from mockproviders.errors import FieldError, error_response
from mockproviders.providers._base import (
    EmbeddingQuery,
    Render,
    Usage,
    body_object,
    dumps,
    expect,
    need,
    opt,
    opt_int,
    opt_number,
    stop_list,
    tool_schema_list,
)
from mockproviders.structured import ResponseFormat, check_strict, mentions_json, openai_chat_format
from mockproviders.tokens import split_tokens, text_parts
from mockproviders.types import Endpoint, MockResponse, Provider, StreamEvent

_ROLES = frozenset({"system", "developer", "user", "assistant", "tool", "function"})
FINISH = {"refusal": "stop"}  # neutral -> OpenAI, where they differ; others pass through

_ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/embeddings"): "embeddings",
    ("GET", "/v1/models"): "models",
}


def parse_messages(body: Mapping[str, Any], roles: frozenset[str]) -> tuple[list[tuple[str, str]], bool]:
    """OpenAI-style messages as (role, text), and whether the last one is a tool result."""
    messages = expect(need(body, "messages"), list, ("messages",))
    if not messages:
        raise FieldError(
            ("messages",), "expected an array with minimum length 1, but got an empty array instead."
        )
    out = []
    for i, msg in enumerate(messages):
        expect(msg, dict, ("messages", i))
        role = expect(need(msg, "role", ("messages", i)), str, ("messages", i, "role"))
        if role not in roles:
            raise FieldError(
                ("messages", i, "role"), f"expected one of {', '.join(sorted(roles))}.", "value", role
            )
        content = msg.get("content")
        if content is None:
            if "content" not in msg and role != "assistant":
                raise FieldError(("messages", i, "content"), "Field required", "missing", msg)
        else:
            expect(
                content, (str, list), ("messages", i, "content"), what="a string or an array of content parts"
            )
            if isinstance(content, list):
                for j, part in enumerate(content):
                    expect(part, dict, ("messages", i, "content", j))
        if role == "tool":
            expect(need(msg, "tool_call_id", ("messages", i)), str, ("messages", i, "tool_call_id"))
        out.append((role, "".join(text_parts(content))))
    return out, out[-1][0] == "tool"


def chat_response_format(body: Mapping[str, Any], texts: list[str]) -> ResponseFormat | None:
    """OpenAI chat's ``response_format``, with the real API's checks: strict schemas must be
    closed and fully required; ``json_object`` needs the word JSON in a message."""
    fmt = openai_chat_format(body.get("response_format"))
    if fmt is not None:
        check_strict(fmt, ("response_format",))
        if fmt.kind == "json_object" and not mentions_json(texts):
            raise FieldError(
                ("messages",),
                "'messages' must contain the word 'json' in some form, to use 'response_format' of type "
                "'json_object'.",
            )
    return fmt


def tool_choice(value: Any, names: list[str]) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        if value not in ("none", "auto", "required"):
            raise FieldError(("tool_choice",), "expected one of none, auto, required.", "value", value)
        return value
    expect(value, dict, ("tool_choice",), what="a string or an object")
    fn = expect(need(value, "function", ("tool_choice",)), dict, ("tool_choice", "function"))
    name = expect(need(fn, "name", ("tool_choice", "function")), str, ("tool_choice", "function", "name"))
    if name not in names:
        raise FieldError(("tool_choice",), f"tool '{name}' is not in the tools given.", "value", name)
    return name


class OpenAIAPI:
    """OpenAI Chat Completions, Embeddings and Models."""

    name: ClassVar[Provider] = "openai"

    def endpoint(self, method: str, path: str) -> Endpoint:
        found = _ENDPOINTS.get((method, path))
        if found is None and method == "GET" and path.startswith("/v1/models/"):
            return "models"
        if found is None and (path == "/v1/responses" or path.startswith("/v1/responses/")):
            return "responses"  # mockproviders.responses
        if found is None and path.startswith(("/v1/files", "/v1/batches")):  # mockproviders.batch
            return "files" if path.startswith("/v1/files") else "batches"
        return found or "other"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        auth = headers.get("authorization")
        if not auth or not auth.startswith("Bearer "):
            return None
        return auth[7:].strip() or None

    def auth_error(self, key: str | None, rid: str) -> MockResponse:
        if key is None:
            msg = (
                "You didn't provide an API key. You need to provide your API key in an Authorization header "
                "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY)."
            )
            return error_response("openai", 401, "invalid_request_error", msg, code=None, request_id=rid)
        shown = f"{key[:3]}*****{key[-4:]}" if len(key) > 8 else "*****"
        msg = f"Incorrect API key provided: {shown}. You can find your API key at https://platform.openai.com/account/api-keys."
        return error_response(
            "openai", 401, "invalid_request_error", msg, code="invalid_api_key", request_id=rid
        )

    def header_error(self, headers: Mapping[str, str], rid: str) -> MockResponse | None:
        return None

    def not_found(self, method: str, path: str, rid: str) -> MockResponse:
        return error_response(
            "openai",
            404,
            "invalid_request_error",
            f"Invalid URL ({method} {path})",
            code=None,
            request_id=rid,
        )

    def unknown_model(self, model: str, rid: str) -> MockResponse:
        msg = f"The model `{model}` does not exist or you do not have access to it."
        return error_response(
            "openai", 404, "invalid_request_error", msg, code="model_not_found", request_id=rid
        )

    def not_embedding_model(self, model: str, rid: str) -> MockResponse:
        # What api.openai.com answers for a chat model on /v1/embeddings (403, code null).
        msg = "You are not allowed to generate embeddings from this model"
        return error_response("openai", 403, "invalid_request_error", msg, code=None, request_id=rid)

    def fixed_dimensions(self, model: str, rid: str) -> MockResponse:
        msg = "This model does not support specifying dimensions."
        return error_response("openai", 400, "invalid_request_error", msg, code=None, request_id=rid)

    def parse_chat(self, body: Any) -> ChatQuery:
        body = body_object(body)
        model = expect(need(body, "model"), str, ("model",))
        messages, after_tool = parse_messages(body, _ROLES)
        n = opt_int(body, "n", low=1, high=128) or 1
        max_tokens = opt_int(body, "max_completion_tokens", low=1)
        if max_tokens is None:
            max_tokens = opt_int(body, "max_tokens", low=1)
        opt_number(body, "temperature", low=0, high=2)
        opt_number(body, "top_p", low=0, high=1)
        stream = bool(opt(body, "stream", bool))
        options = opt(body, "stream_options", dict)
        if options is not None and not stream:
            raise FieldError(
                ("stream_options",),
                "The 'stream_options' parameter is only allowed when 'stream' is enabled.",
            )
        include_usage = bool(options and opt(options, "include_usage", bool, ("stream_options",)))
        tools = (
            tool_schema_list(body["tools"], ("tools",), wrapped=True) if body.get("tools") is not None else []
        )
        choice = tool_choice(body.get("tool_choice"), [name for name, _ in tools])
        fmt = chat_response_format(body, [text for _, text in messages])
        return ChatQuery(
            model=model,
            messages=messages,
            last_is_tool_result=after_tool,
            max_tokens=max_tokens,
            stop=stop_list(body, "stop"),
            n=n,
            tools=tools,
            tool_choice=choice,
            stream=stream,
            include_usage=include_usage,
            seed=opt(body, "seed", int),
            response_format=fmt,
        )

    def _usage(self, usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
            "prompt_tokens_details": {"cached_tokens": usage.cache_read_tokens, "audio_tokens": 0},
            "completion_tokens_details": {
                "reasoning_tokens": 0,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            },
        }

    def render_chat(self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage) -> dict[str, Any]:
        out = []
        for c in choices:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": None
                if (c.refusal is not None or (c.tool_calls and not c.text))
                else (c.text or ""),
                "refusal": c.refusal,
                "annotations": [],
            }
            if c.tool_calls:
                message["tool_calls"] = [
                    {
                        "id": f"call_{t.id}",
                        "type": "function",
                        "function": {"name": t.name, "arguments": t.arguments},
                    }
                    for t in c.tool_calls
                ]
            out.append(
                {
                    "index": c.index,
                    "message": message,
                    "logprobs": None,
                    "finish_reason": FINISH.get(c.finish, c.finish),
                }
            )
        return {
            "id": f"chatcmpl-{r.response_id}",
            "object": "chat.completion",
            "created": r.created,
            "model": r.model,
            "choices": out,
            "usage": self._usage(usage),
            "service_tier": "default",
            "system_fingerprint": "fp_mock",
        }

    def stream_chat(
        self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage
    ) -> Iterator[StreamEvent]:
        # The chunk envelope is built once as text; each event only splices in its choices.
        head = (
            f'{{"id":"chatcmpl-{r.response_id}","object":"chat.completion.chunk","created":{r.created},'
            f'"model":{dumps(r.model)},"service_tier":"default","system_fingerprint":"fp_mock","choices":'
        )
        tail = ',"usage":null}' if q.include_usage else "}"

        def chunk(
            kind: Any, index: int, delta: dict[str, Any], finish: str | None = None, tokens: int = 0
        ) -> StreamEvent:
            choice = {"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}
            return StreamEvent(kind=kind, data=f"{head}[{dumps(choice)}]{tail}", tokens=tokens)

        for c in choices:
            yield chunk("start", c.index, {"role": "assistant", "content": "", "refusal": None})
            field = "refusal" if c.refusal is not None else "content"
            for piece in split_tokens(c.refusal if c.refusal is not None else (c.text or "")):
                yield chunk("content", c.index, {field: piece}, tokens=1)
            for k, t in enumerate(c.tool_calls):
                call = {
                    "index": k,
                    "id": f"call_{t.id}",
                    "type": "function",
                    "function": {"name": t.name, "arguments": ""},
                }
                yield chunk("content", c.index, {"tool_calls": [call]}, tokens=1)
                for piece in split_tokens(t.arguments):
                    yield chunk(
                        "content",
                        c.index,
                        {"tool_calls": [{"index": k, "function": {"arguments": piece}}]},
                        tokens=1,
                    )
            yield chunk("finish", c.index, {}, FINISH.get(c.finish, c.finish))
        if q.include_usage:
            yield StreamEvent(kind="usage", data=f'{head}[],"usage":{dumps(self._usage(usage))}}}')
        yield StreamEvent(kind="done", data="[DONE]")

    def parse_embeddings(self, body: Any) -> EmbeddingQuery:
        body = body_object(body)
        model = expect(need(body, "model"), str, ("model",))
        raw = need(body, "input")
        inputs = embedding_inputs(raw)
        fmt = opt(body, "encoding_format", str)
        if fmt not in (None, "float", "base64"):
            raise FieldError(("encoding_format",), "expected one of float, base64.", "value", fmt)
        dims = opt_int(body, "dimensions", low=1, high=8192)
        return EmbeddingQuery(model=model, inputs=inputs, dimensions=dims, base64=fmt == "base64")

    def render_embeddings(
        self, r: Render, vectors: list[list[float] | str], prompt_tokens: int
    ) -> dict[str, Any]:
        return {
            "object": "list",
            "data": [{"object": "embedding", "index": i, "embedding": v} for i, v in enumerate(vectors)],
            "model": r.model,
            "usage": {"prompt_tokens": prompt_tokens, "total_tokens": prompt_tokens},
        }

    def render_models(self, models: Sequence[str], created: int) -> dict[str, Any]:
        return {"object": "list", "data": [self.render_model(m, created) for m in models]}

    def render_model(self, model: str, created: int) -> dict[str, Any]:
        return {"id": model, "object": "model", "created": created, "owned_by": "system"}


def embedding_inputs(raw: Any, key: str = "input") -> list[str]:
    """Inputs as strings: a string, an array of strings, or token arrays (kept as their digits)."""
    if isinstance(raw, str):
        raw = [raw]
    expect(raw, list, (key,), what="a string or an array")
    if not raw:
        raise FieldError((key,), "expected an array with minimum length 1, but got an empty array instead.")
    if all(isinstance(x, int) and not isinstance(x, bool) for x in raw):
        return [" ".join(map(str, raw))]
    out = []
    for i, item in enumerate(raw):
        if isinstance(item, list) and all(isinstance(x, int) and not isinstance(x, bool) for x in item):
            out.append(" ".join(map(str, item)))
        else:
            out.append(expect(item, str, (key, i)))
    return out


def encode_base64(vector: list[float]) -> str:
    """OpenAI's base64 embedding encoding: little-endian float32."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode()
