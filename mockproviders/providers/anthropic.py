"""Anthropic's wire format: messages (streaming with the full event sequence), models.

Token counts (``usage`` and ``POST /v1/messages/count_tokens`` alike) and prompt caching (up to
four ``cache_control`` breakpoints, the longest cached prefix at any of them read, a minimum
cacheable length per model) follow :mod:`mockproviders.prompt_cache`.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, ClassVar

from mockproviders.answers import ChatQuery, Choice
from mockproviders.errors import FieldError, error_response
from mockproviders.prompt_cache import build_prompt
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
from mockproviders.structured import anthropic_output_format
from mockproviders.tokens import split_tokens, text_parts
from mockproviders.types import Endpoint, MockResponse, Provider, StreamEvent
from turnout import safejson

FINISH = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "refusal": "refusal",
}
_VERSION_RE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _stop_reason(c: Choice) -> str:
    if c.stop_sequence is not None:
        return "stop_sequence"
    return FINISH.get(c.finish, c.finish)


def _tool_input(arguments: str) -> Any:
    try:
        value = safejson.loads(arguments)
    except ValueError:
        return arguments  # a fault asked for invalid JSON: send it as it is
    return value if isinstance(value, dict) else arguments


class AnthropicAPI:
    """Anthropic Messages and Models."""

    name: ClassVar[Provider] = "anthropic"

    def endpoint(self, method: str, path: str) -> Endpoint:
        if path == "/v1/messages" and method == "POST":
            return "messages"
        if path == "/v1/messages/count_tokens" and method == "POST":
            return "count_tokens"
        if path.startswith("/v1/messages/batches"):  # mockproviders.batch
            return "batches"
        if method == "GET" and (path == "/v1/models" or path.startswith("/v1/models/")):
            return "models"
        return "other"

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        # Since anthropic 2.x the SDK sends the API key as a bearer token; x-api-key still works.
        key = headers.get("x-api-key")
        if key:
            return key
        auth = headers.get("authorization")
        if auth and auth.startswith("Bearer "):
            return auth[7:].strip() or None
        return None

    def auth_error(self, key: str | None, rid: str) -> MockResponse:
        msg = "x-api-key header is required" if key is None else "invalid x-api-key"
        return error_response("anthropic", 401, "authentication_error", msg, request_id=rid)

    def header_error(self, headers: Mapping[str, str], rid: str) -> MockResponse | None:
        version = headers.get("anthropic-version")
        if version is None:
            msg = "anthropic-version: header is required"
        elif not _VERSION_RE.match(version):
            msg = f"anthropic-version: invalid version {version!r}"
        else:
            return None
        return error_response("anthropic", 400, "invalid_request_error", msg, request_id=rid)

    def not_found(self, method: str, path: str, rid: str) -> MockResponse:
        return error_response("anthropic", 404, "not_found_error", "Not Found", request_id=rid)

    def unknown_model(self, model: str, rid: str) -> MockResponse:
        return error_response("anthropic", 404, "not_found_error", f"model: {model}", request_id=rid)

    def not_embedding_model(self, model: str, rid: str) -> MockResponse:
        return self.unknown_model(model, rid)  # never reached: Anthropic has no embeddings endpoint

    def fixed_dimensions(self, model: str, rid: str) -> MockResponse:
        return self.unknown_model(model, rid)  # never reached, as above

    def parse_chat(self, body: Any) -> ChatQuery:
        return self._parse(body, counting=False)

    def count_tokens(self, body: Any) -> tuple[str, int]:
        """``POST /v1/messages/count_tokens``: (model, input tokens) for a Messages body without
        ``max_tokens``; the same count as the usage of that message (cache reads included)."""
        q = self._parse(body, counting=True)
        return q.model, q.prompt_tokens

    def _parse(self, body: Any, *, counting: bool) -> ChatQuery:
        body = body_object(body)
        model = expect(need(body, "model"), str, ("model",))
        max_tokens = None
        if not counting:
            max_tokens = expect(need(body, "max_tokens"), int, ("max_tokens",))
            if max_tokens < 1:
                raise FieldError(
                    ("max_tokens",), "Input should be greater than or equal to 1", "value", max_tokens
                )
        messages = expect(need(body, "messages"), list, ("messages",))
        tools: list[tuple[str, Any]] = []
        if body.get("tools") is not None:
            tools = tool_schema_list(body["tools"], ("tools",), wrapped=False)
        out: list[tuple[str, str]] = []
        system = body.get("system")
        if system is not None:
            expect(system, (str, list), ("system",), what="a string or an array of text blocks")
            if isinstance(system, list):
                for i, block in enumerate(system):
                    expect(block, dict, ("system", i))
                    expect(need(block, "text", ("system", i)), str, ("system", i, "text"))
            out.append(("system", "".join(text_parts(system))))
        last_is_tool_result = False
        for i, msg in enumerate(messages):
            expect(msg, dict, ("messages", i))
            role = expect(need(msg, "role", ("messages", i)), str, ("messages", i, "role"))
            if role not in ("user", "assistant"):
                raise FieldError(
                    ("messages", i, "role"), "Input should be 'user' or 'assistant'", "value", role
                )
            content = need(msg, "content", ("messages", i))
            expect(
                content,
                (str, list),
                ("messages", i, "content"),
                what="a string or an array of content blocks",
            )
            last_is_tool_result = False
            for j, block in enumerate([] if isinstance(content, str) else content):
                expect(block, dict, ("messages", i, "content", j))
                kind = expect(
                    need(block, "type", ("messages", i, "content", j)),
                    str,
                    ("messages", i, "content", j, "type"),
                )
                last_is_tool_result = last_is_tool_result or kind == "tool_result"
            out.append((role, "".join(text_parts(content))))
        prefill = None
        if len(out) > 1 and out[-1][0] == "assistant":  # a prefill: the answer continues it
            prefill = out.pop()[1]
            if prefill != prefill.rstrip():
                raise FieldError(
                    ("messages", len(messages) - 1, "content"),
                    "final assistant content cannot end with trailing whitespace",
                    "value",
                    prefill,
                )
        if not out or out[-1][0] == "system":
            raise FieldError(("messages",), "at least one message is required", "value", messages)
        choice = self._tool_choice(body.get("tool_choice"), [n for n, _ in tools])
        opt_number(body, "temperature", low=0, high=1)
        opt_int(body, "top_k", low=0)
        return ChatQuery(
            model=model,
            messages=out,
            last_is_tool_result=last_is_tool_result,
            max_tokens=max_tokens,
            stop=stop_list(body, "stop_sequences", max_items=None),
            tools=tools,
            tool_choice=choice,
            stream=bool(opt(body, "stream", bool)),
            prompt=build_prompt(model, body),
            response_format=anthropic_output_format(body.get("output_config")),
            prefill=prefill,
        )

    def _tool_choice(self, value: Any, names: list[str]) -> str | None:
        if value is None:
            return None
        expect(value, dict, ("tool_choice",))
        kind = need(value, "type", ("tool_choice",))
        if kind == "tool":
            name = expect(need(value, "name", ("tool_choice",)), str, ("tool_choice", "name"))
            if name not in names:
                raise FieldError(("tool_choice", "name"), f"tool {name!r} not found in tools", "value", name)
            return name
        if kind not in ("auto", "any", "none"):
            raise FieldError(
                ("tool_choice", "type"), "Input should be 'auto', 'any', 'tool' or 'none'", "value", kind
            )
        return kind

    def _usage(self, usage: Usage) -> dict[str, Any]:
        return {
            "input_tokens": usage.prompt_tokens - usage.cache_read_tokens - usage.cache_creation_tokens,
            "output_tokens": usage.completion_tokens,
            "cache_creation_input_tokens": usage.cache_creation_tokens,
            "cache_read_input_tokens": usage.cache_read_tokens,
            "cache_creation": {
                "ephemeral_5m_input_tokens": usage.cache_creation_tokens - usage.cache_creation_1h_tokens,
                "ephemeral_1h_input_tokens": usage.cache_creation_1h_tokens,
            },
            "service_tier": "standard",
        }

    def _blocks(self, c: Choice) -> list[dict[str, Any]]:
        blocks: list[dict[str, Any]] = []
        text = c.refusal if c.refusal is not None else c.text
        if text:
            blocks.append({"type": "text", "text": text})
        for t in c.tool_calls:
            blocks.append(
                {"type": "tool_use", "id": f"toolu_{t.id}", "name": t.name, "input": _tool_input(t.arguments)}
            )
        return blocks

    def render_chat(self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage) -> dict[str, Any]:
        c = choices[0]
        return {
            "id": f"msg_{r.response_id}",
            "type": "message",
            "role": "assistant",
            "model": r.model,
            "content": self._blocks(c),
            "stop_reason": _stop_reason(c),
            "stop_sequence": c.stop_sequence,
            "usage": self._usage(usage),
        }

    def stream_chat(
        self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage
    ) -> Iterator[StreamEvent]:
        c = choices[0]
        start_usage = {**self._usage(usage), "output_tokens": 1}
        message: dict[str, Any] = {
            "id": f"msg_{r.response_id}",
            "type": "message",
            "role": "assistant",
            "model": r.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": start_usage,
        }
        yield StreamEvent.json_event(
            "start", {"type": "message_start", "message": message}, event="message_start"
        )
        index = 0
        text = c.refusal if c.refusal is not None else c.text
        if text:
            yield self._block_start(index, {"type": "text", "text": ""})
            yield StreamEvent("ping", '{"type":"ping"}', event="ping")
            for piece in split_tokens(text):
                yield self._delta(index, {"type": "text_delta", "text": piece}, 1)
            yield self._block_stop(index)
            index += 1
        else:
            yield StreamEvent("ping", '{"type":"ping"}', event="ping")
        for t in c.tool_calls:
            yield self._block_start(
                index, {"type": "tool_use", "id": f"toolu_{t.id}", "name": t.name, "input": {}}
            )
            for piece in split_tokens(t.arguments):
                yield self._delta(index, {"type": "input_json_delta", "partial_json": piece}, 1)
            yield self._block_stop(index)
            index += 1
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": _stop_reason(c), "stop_sequence": c.stop_sequence},
            "usage": self._usage(usage),
        }
        yield StreamEvent.json_event("finish", delta, event="message_delta")
        yield StreamEvent("done", '{"type":"message_stop"}', event="message_stop")

    @staticmethod
    def _block_start(index: int, block: dict[str, Any]) -> StreamEvent:
        payload = {"type": "content_block_start", "index": index, "content_block": block}
        return StreamEvent("start", dumps(payload), event="content_block_start")

    @staticmethod
    def _delta(index: int, delta: dict[str, Any], tokens: int) -> StreamEvent:
        payload = {"type": "content_block_delta", "index": index, "delta": delta}
        return StreamEvent("content", dumps(payload), event="content_block_delta", tokens=tokens)

    @staticmethod
    def _block_stop(index: int) -> StreamEvent:
        # Tagged "content" with no tokens: it closes a block, it carries no text.
        return StreamEvent(
            "content", f'{{"type":"content_block_stop","index":{index}}}', event="content_block_stop"
        )

    def parse_embeddings(self, body: Any) -> EmbeddingQuery:
        raise FieldError((), "Anthropic has no embeddings endpoint")

    def render_embeddings(
        self, r: Render, vectors: list[list[float] | str], prompt_tokens: int
    ) -> dict[str, Any]:
        raise NotImplementedError

    def render_models(self, models: Sequence[str], created: int) -> dict[str, Any]:
        data = [self.render_model(m, created) for m in models]
        return {
            "data": data,
            "has_more": False,
            "first_id": data[0]["id"] if data else None,
            "last_id": data[-1]["id"] if data else None,
        }

    def render_model(self, model: str, created: int) -> dict[str, Any]:
        stamp = datetime.fromtimestamp(created, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
        name = model.replace("-", " ").title()
        return {"type": "model", "id": model, "display_name": name, "created_at": stamp}
