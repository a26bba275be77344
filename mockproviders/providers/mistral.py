"""Mistral's wire format: chat completions (streaming and not), embeddings, models.

OpenAI-like bodies, with Mistral's differences: validation errors are 422 ``{"detail": [...]}``,
``stream_options`` is rejected, ``random_seed`` replaces ``seed``, the stream's last chunk
carries the usage, and tool calls arrive whole in one chunk. Mistral has no content-filter
finish reason: a neutral ``content_filter`` or refusal is sent as ``stop``.
"""

from __future__ import annotations

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
from mockproviders.providers.openai import OpenAIAPI, embedding_inputs, parse_messages
from mockproviders.structured import openai_chat_format
from mockproviders.tokens import split_tokens
from mockproviders.types import Endpoint, MockResponse, Provider, StreamEvent

_ROLES = frozenset({"system", "user", "assistant", "tool"})
FINISH = {"content_filter": "stop", "refusal": "stop"}
_ENDPOINTS: dict[tuple[str, str], Endpoint] = {
    ("POST", "/v1/chat/completions"): "chat",
    ("POST", "/v1/embeddings"): "embeddings",
    ("GET", "/v1/models"): "models",
}


class MistralAPI:
    """Mistral chat completions, embeddings and models."""

    name: ClassVar[Provider] = "mistral"

    def endpoint(self, method: str, path: str) -> Endpoint:
        found = _ENDPOINTS.get((method, path))
        if found is None and method == "GET" and path.startswith("/v1/models/"):
            return "models"
        return found or "other"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        return OpenAIAPI.api_key(OpenAIAPI(), headers)

    def auth_error(self, key: str | None, rid: str) -> MockResponse:
        return error_response(
            "mistral", 401, "authentication_error", "Unauthorized", code=None, request_id=rid
        )

    def header_error(self, headers: Mapping[str, str], rid: str) -> MockResponse | None:
        return None

    def not_found(self, method: str, path: str, rid: str) -> MockResponse:
        return error_response("mistral", 404, "invalid_request_error", "Not Found", code=None, request_id=rid)

    def unknown_model(self, model: str, rid: str) -> MockResponse:
        return error_response(
            "mistral", 404, "invalid_model", f"Invalid model: {model}", code="1500", request_id=rid
        )

    def not_embedding_model(self, model: str, rid: str) -> MockResponse:
        # Mistral serves each model on its own endpoints: a chat model is no model for embeddings.
        return self.unknown_model(model, rid)

    def fixed_dimensions(self, model: str, rid: str) -> MockResponse:
        msg = f"{model} does not support output_dimension"  # only OpenAI ids are fixed-size
        return error_response("mistral", 400, "invalid_request_error", msg, request_id=rid)

    def parse_chat(self, body: Any) -> ChatQuery:
        body = body_object(body)
        model = expect(need(body, "model"), str, ("model",))
        messages, after_tool = parse_messages(body, _ROLES)
        prefill = None
        last = body["messages"][-1]
        if last.get("prefix") is True:  # continue this assistant message (Mistral's prefix mode)
            if messages[-1][0] != "assistant" or len(messages) < 2:
                raise FieldError(
                    ("messages", len(messages) - 1, "prefix"),
                    "prefix is only allowed on the last message when it is an assistant message",
                    "value",
                    True,
                )
            prefill = messages.pop()[1]
        if "stream_options" in body:
            raise FieldError(
                ("stream_options",), "Extra inputs are not permitted", "extra", body["stream_options"]
            )
        opt_number(body, "temperature", low=0, high=1.5)
        opt_number(body, "top_p", low=0, high=1)
        opt(body, "safe_prompt", bool)
        tools = (
            tool_schema_list(body["tools"], ("tools",), wrapped=True) if body.get("tools") is not None else []
        )
        return ChatQuery(
            model=model,
            messages=messages,
            last_is_tool_result=after_tool,
            max_tokens=opt_int(body, "max_tokens", low=0) or None,
            stop=stop_list(body, "stop", max_items=None),
            n=opt_int(body, "n", low=1, high=16) or 1,
            tools=tools,
            tool_choice=self._tool_choice(body.get("tool_choice"), [n for n, _ in tools]),
            stream=bool(opt(body, "stream", bool)),
            seed=opt_int(body, "random_seed", low=0),
            response_format=openai_chat_format(body.get("response_format")),
            prefill=prefill,
        )

    def _tool_choice(self, value: Any, names: list[str]) -> str | None:
        if value is None or value in ("auto", "none", "any", "required"):
            return value
        if isinstance(value, str):
            raise FieldError(
                ("tool_choice",), "Input should be 'auto', 'none', 'any' or 'required'", "value", value
            )
        expect(value, dict, ("tool_choice",))
        fn = expect(need(value, "function", ("tool_choice",)), dict, ("tool_choice", "function"))
        name = expect(need(fn, "name", ("tool_choice", "function")), str, ("tool_choice", "function", "name"))
        return name if name in names else "any"

    @staticmethod
    def _usage(usage: Usage) -> dict[str, Any]:
        return {
            "prompt_tokens": usage.prompt_tokens,
            "completion_tokens": usage.completion_tokens,
            "total_tokens": usage.total_tokens,
        }

    @staticmethod
    def _calls(c: Choice) -> list[dict[str, Any]]:
        return [
            {
                "id": t.id[:9],
                "type": "function",
                "function": {"name": t.name, "arguments": t.arguments},
                "index": k,
            }
            for k, t in enumerate(c.tool_calls)
        ]

    def render_chat(self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage) -> dict[str, Any]:
        out = []
        for c in choices:
            text = c.refusal if c.refusal is not None else c.text
            message = {
                "role": "assistant",
                "content": text if text is not None else "",
                "tool_calls": self._calls(c) or None,
                "prefix": False,
            }
            out.append(
                {"index": c.index, "message": message, "finish_reason": FINISH.get(c.finish, c.finish)}
            )
        return {
            "id": r.response_id,
            "object": "chat.completion",
            "created": r.created,
            "model": r.model,
            "choices": out,
            "usage": self._usage(usage),
        }

    def stream_chat(
        self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage
    ) -> Iterator[StreamEvent]:
        head = (
            f'{{"id":"{r.response_id}","object":"chat.completion.chunk","created":{r.created},'
            f'"model":{dumps(r.model)},"choices":'
        )
        for i, c in enumerate(choices):
            last = i == len(choices) - 1

            def chunk(
                kind: Any,
                delta: dict[str, Any],
                finish: str | None = None,
                tokens: int = 0,
                idx: int = c.index,
            ) -> StreamEvent:
                choice = {"index": idx, "delta": delta, "finish_reason": finish, "logprobs": None}
                return StreamEvent(kind=kind, data=f"{head}[{dumps(choice)}]}}", tokens=tokens)

            yield chunk("start", {"role": "assistant", "content": ""})
            text = c.refusal if c.refusal is not None else c.text
            for piece in split_tokens(text or ""):
                yield chunk("content", {"content": piece}, tokens=1)
            if c.tool_calls:
                yield chunk(
                    "content",
                    {"tool_calls": self._calls(c)},
                    tokens=c.completion_tokens - len(split_tokens(text or "")),
                )
            finish = FINISH.get(c.finish, c.finish)
            choice = {"index": c.index, "delta": {"content": ""}, "finish_reason": finish, "logprobs": None}
            tail = f',"usage":{dumps(self._usage(usage))}}}' if last else "}"
            yield StreamEvent(kind="finish", data=f"{head}[{dumps(choice)}]{tail}")
        yield StreamEvent(kind="done", data="[DONE]")

    def parse_embeddings(self, body: Any) -> EmbeddingQuery:
        body = body_object(body)
        model = expect(need(body, "model"), str, ("model",))
        key = "input" if "input" in body else "inputs"
        inputs = embedding_inputs(need(body, key if key in body else "input"), key)
        dims = opt_int(body, "output_dimension", low=1, high=4096)
        dtype = opt(body, "output_dtype", str)
        if dtype not in (None, "float"):
            raise FieldError(("output_dtype",), "only 'float' is supported by the mock", "value", dtype)
        return EmbeddingQuery(model=model, inputs=inputs, dimensions=dims)

    def render_embeddings(
        self, r: Render, vectors: list[list[float] | str], prompt_tokens: int
    ) -> dict[str, Any]:
        return {
            "id": r.response_id,
            "object": "list",
            "data": [{"object": "embedding", "embedding": v, "index": i} for i, v in enumerate(vectors)],
            "model": r.model,
            "usage": {"prompt_tokens": prompt_tokens, "completion_tokens": 0, "total_tokens": prompt_tokens},
        }

    def render_models(self, models: Sequence[str], created: int) -> dict[str, Any]:
        return {"object": "list", "data": [self.render_model(m, created) for m in models]}

    def render_model(self, model: str, created: int) -> dict[str, Any]:
        chat = "embed" not in model
        return {
            "id": model,
            "object": "model",
            "created": created,
            "owned_by": "mistralai",
            "capabilities": {
                "completion_chat": chat,
                "function_calling": chat,
                "completion_fim": model.startswith("codestral"),
            },
            "max_context_length": 32768,
            "type": "base",
        }
