"""Anthropic's Messages API as a front end: ``POST /v1/messages`` and ``/v1/messages/count_tokens``.

Requests become the router's :class:`ChatRequest` (so a Claude-shaped request can fall back to
OpenAI or Mistral), and answers, streams and errors go back in Anthropic's shape:

- ``system`` as a string or text blocks, ``cache_control`` on text blocks (kept as cache marks),
  ``tool_use`` / ``tool_result`` blocks (tool results become tool messages), ``tool_choice``,
  ``stop_sequences``, ``metadata.user_id``, ``output_config.format`` / ``output_format``
  (structured outputs: any deployment answers schema-valid JSON text; ``effort`` is a hint
  the router does not carry);
- a stream is Anthropic's event sequence (``message_start``, ``ping``, per block
  ``content_block_start`` / ``content_block_delta`` (``text_delta``, ``input_json_delta``) /
  ``content_block_stop``, ``message_delta``, ``message_stop``); a failure after output began
  ends it with ``event: error``, never with ``message_stop``;
- errors are ``{"type": "error", "error": {"type", "message"}}``; a chain whose every deployment
  failed or was unavailable answers 529 ``overloaded_error`` (the SDKs retry it).

Images, documents, server tools and extended thinking are refused with a 400 naming the field:
the router carries text and function tools only.
"""

from __future__ import annotations

import json
from json.encoder import encode_basestring_ascii as _jstr
from typing import Any

from router.errors import AllAttemptsFailed, ErrorKind, RouterError, Unavailable
from router.ratelimit import estimate_tokens
from router.sidecar.errors import Answer, Scrubber, exhausted_status, retry_after
from router.sidecar.parsing import (
    WireError,
    _model,
    _opt_int,
    _opt_number,
    _want,
    parse_text_parts,
    parse_tools,
)
from router.structured import FormatError, from_responses
from router.types import (
    ChatRequest,
    ChatResponse,
    Message,
    StreamStart,
    TextPart,
    ToolCall,
    ToolCallDelta,
)
from turnout.sse import encode_event

NAME = "messages"

_KEYS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "system",
        "temperature",
        "top_p",
        "stop_sequences",
        "stream",
        "tools",
        "tool_choice",
        "metadata",
        "output_format",
        "output_config",
        "thinking",
        "service_tier",
    }
)
_COUNT_KEYS = frozenset(
    {"model", "messages", "system", "tools", "tool_choice", "output_format", "output_config", "thinking"}
)

STOP = {"stop": "end_turn", "length": "max_tokens", "tool_calls": "tool_use", "content_filter": "refusal"}

# Anthropic's error type for each status it documents.
_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    413: "request_too_large",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


def error_type(status: int) -> str:
    if status in _TYPES:
        return _TYPES[status]
    return "invalid_request_error" if status < 500 else "api_error"


def error_answer(
    status: int,
    message: str,
    code: str = "",
    *,
    param: str | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    """An Anthropic-shaped JSON error answer (``code`` and ``param`` have no place in it)."""
    body = {"type": "error", "error": {"type": error_type(status), "message": message}}
    return status, {"Content-Type": "application/json", **(headers or {})}, json.dumps(body).encode()


def router_error(err: RouterError, scrub: Scrubber) -> Answer:
    """A router error before any output. A chain with nothing left to try is 529 overloaded."""
    status = exhausted_status(err)
    if status >= 500 and isinstance(err, AllAttemptsFailed | Unavailable):
        status = 529
    headers: dict[str, str] = {}
    wait = retry_after(err)
    if wait is None and status in (429, 529):
        wait = 1.0
    if wait is not None:
        headers["Retry-After"] = str(max(1, int(wait + 0.999)))
    message = scrub(err.message)
    if err.kind == ErrorKind.UNKNOWN_ROUTE:
        message = f"model: {message}"
    return error_answer(status, message, headers=headers)


def stream_error(err: BaseException, scrub: Scrubber) -> bytes:
    """The ``event: error`` that ends a stream which failed after output began."""
    if isinstance(err, RouterError):
        kind = getattr(err, "cause_kind", None) or err.kind
        etype = "overloaded_error" if kind in (ErrorKind.OVERLOADED, ErrorKind.UNAVAILABLE) else "api_error"
        message = scrub(err.message)
    else:
        etype, message = "api_error", "The stream failed inside the router."
    body = {"type": "error", "error": {"type": etype, "message": message}}
    return encode_event(json.dumps(body), b"error")


# --- requests ----------------------------------------------------------------------------------------


def _text_block(block: dict[str, Any], path: str) -> None:
    if block.get("type") != "text":
        raise WireError(
            f"{path}.type: only 'text' blocks are supported here, got {block.get('type')!r}.",
            f"{path}.type",
        )


def _text_blocks(value: Any, path: str) -> str | list[TextPart]:
    return parse_text_parts(value, path, "content blocks", _text_block)


def _tool_result_text(value: Any, path: str) -> str:
    if value is None:
        return ""
    content = _text_blocks(value, path)
    return content if isinstance(content, str) else "".join(p.text for p in content)


def _message(msg: Any, i: int, out: list[Message]) -> None:
    path = f"messages[{i}]"
    _want(msg, dict, path, "an object")
    role = msg.get("role")
    if role not in ("user", "assistant"):
        raise WireError(f"{path}.role: expected 'user' or 'assistant', got {role!r}.", f"{path}.role")
    content = msg.get("content")
    if content is None:
        raise WireError(f"{path}.content: Field required", f"{path}.content")
    if isinstance(content, str):
        out.append(Message(role=role, content=content))
        return
    _want(content, list, f"{path}.content", "a string or an array of content blocks")
    parts: list[TextPart] = []
    calls: list[ToolCall] = []
    for j, block in enumerate(content):
        bpath = f"{path}.content[{j}]"
        _want(block, dict, bpath, "an object")
        btype = block.get("type")
        if btype == "text":
            text = _want(block.get("text"), str, f"{bpath}.text", "a string")
            parts.append(TextPart(text, isinstance(block.get("cache_control"), dict)))
        elif btype == "tool_use" and role == "assistant":
            tool_input = block.get("input", {})
            _want(tool_input, dict, f"{bpath}.input", "an object")
            calls.append(
                ToolCall(
                    id=_want(block.get("id"), str, f"{bpath}.id", "a string"),
                    name=_want(block.get("name"), str, f"{bpath}.name", "a string"),
                    arguments=json.dumps(tool_input),
                )
            )
        elif btype == "tool_result" and role == "user":
            if parts:  # text before a result stays before it
                out.append(Message(role="user", content=parts))
                parts = []
            text = _tool_result_text(block.get("content"), f"{bpath}.content")
            if block.get("is_error") is True:
                text = f"Error: {text}"
            out.append(
                Message(
                    role="tool",
                    content=text,
                    tool_call_id=_want(block.get("tool_use_id"), str, f"{bpath}.tool_use_id", "a string"),
                )
            )
        elif btype in ("thinking", "redacted_thinking") and role == "assistant":
            continue  # the model's own reasoning: no other provider takes it, none needs it back
        else:
            raise WireError(
                f"{bpath}.type: {btype!r} blocks are not supported through the router "
                f"(text, tool_use and tool_result are).",
                f"{bpath}.type",
            )
    if calls:
        out.append(Message(role="assistant", content="".join(p.text for p in parts), tool_calls=calls))
    elif parts or not out or out[-1].role != "tool":
        out.append(Message(role=role, content=parts))


def _messages(value: Any) -> list[Message]:
    if value is None:
        raise WireError("messages: Field required", "messages")
    _want(value, list, "messages", "an array")
    if not value:
        raise WireError("messages: at least one message is required", "messages")
    out: list[Message] = []
    for i, msg in enumerate(value):
        _message(msg, i, out)
    return out


def _tool(tool: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    if tool.get("type") not in (None, "custom"):
        raise WireError(
            f"{path}.type: server tools ({tool.get('type')!r}) are not supported through the router.",
            f"{path}.type",
        )
    return tool, path


def _tool_choice(value: Any) -> str | dict[str, Any]:
    _want(value, dict, "tool_choice", "an object")
    kind = value.get("type")
    if kind in ("auto", "none"):
        return str(kind)
    if kind == "any":
        return "required"
    if kind == "tool":
        name = _want(value.get("name"), str, "tool_choice.name", "a string")
        return {"type": "function", "function": {"name": name}}
    raise WireError(
        f"tool_choice.type: expected 'auto', 'any', 'tool' or 'none', got {kind!r}.", "tool_choice.type"
    )


def _common(body: dict[str, Any], keys: frozenset[str]) -> ChatRequest:
    for key in body:
        if key not in keys:
            raise WireError(f"{key}: Extra inputs are not permitted", key)
    req = ChatRequest(model=_model(body), messages=_messages(body.get("messages")))
    system = body.get("system")
    if system is not None:
        req.system = _text_blocks(system, "system")
    if body.get("tools") is not None:
        req.tools = parse_tools(body["tools"], _tool, "input_schema", schema_required=True)
    if body.get("tool_choice") is not None:
        req.tool_choice = _tool_choice(body["tool_choice"])
    thinking = body.get("thinking")
    if thinking is not None:
        _want(thinking, dict, "thinking", "an object")
        if thinking.get("type") != "disabled":
            raise WireError("thinking: extended thinking is not supported through the router.", "thinking")
    # Structured outputs: ``output_config.format`` as the installed SDK sends it (``messages.parse``),
    # or the older ``output_format``; both ``{type: json_schema, schema}``.
    fmt, path = body.get("output_format"), "output_format"
    config = body.get("output_config")
    if config is not None:
        _want(config, dict, "output_config", "an object")
        for key in config:
            if key not in ("format", "effort"):
                raise WireError(
                    f"output_config.{key}: Extra inputs are not permitted", f"output_config.{key}"
                )
        if config.get("format") is not None:
            fmt, path = config["format"], "output_config.format"
    if fmt is not None:
        try:
            req.response_format = from_responses(fmt, path)
        except FormatError as exc:
            raise WireError(exc.message, exc.param) from None
    return req


def parse(body: dict[str, Any]) -> tuple[ChatRequest, None]:
    """A Messages body as a ChatRequest."""
    req = _common(body, _KEYS)
    if body.get("max_tokens") is None:
        raise WireError("max_tokens: Field required", "max_tokens")
    req.max_tokens = _opt_int(body, "max_tokens")
    req.temperature = _opt_number(body, "temperature", 0, 1)
    req.top_p = _opt_number(body, "top_p", 0, 1)
    stop = body.get("stop_sequences")
    if stop is not None:
        _want(stop, list, "stop_sequences", "an array of strings")
        req.stop = [_want(s, str, f"stop_sequences[{i}]", "a string") for i, s in enumerate(stop)]
    stream = body.get("stream")
    if stream is not None:
        req.stream = bool(_want(stream, bool, "stream", "a boolean"))
    metadata = body.get("metadata")
    if metadata is not None:
        _want(metadata, dict, "metadata", "an object")
        user = metadata.get("user_id")
        if user is not None:
            req.user = _want(user, str, "metadata.user_id", "a string")
    return req, None


def count_tokens(body: dict[str, Any]) -> int:
    """``/v1/messages/count_tokens``: the router's estimate of the prompt's tokens (about four
    characters a token, as its rate limiter counts them); the route's deployments may tokenize
    differently, so it is an estimate, not a provider's count."""
    req = _common(body, _COUNT_KEYS)
    chars = 0
    if req.system is not None:
        chars += len(req.system) if isinstance(req.system, str) else sum(len(p.text) for p in req.system)
    for m in req.messages:
        chars += len(m.text) + sum(len(c.name) + len(c.arguments) for c in m.tool_calls)
    for t in req.tools:
        chars += len(t.name) + len(t.description) + len(json.dumps(t.parameters))
    return estimate_tokens(chars, 0) + 3 * len(req.messages)


# --- answers -----------------------------------------------------------------------------------------


def _tool_input(arguments: str) -> dict[str, Any]:
    try:
        value = json.loads(arguments) if arguments else {}
    except ValueError:
        return {}
    return value if isinstance(value, dict) else {}


def usage_json(resp: ChatResponse) -> dict[str, int]:
    """Anthropic's usage: ``input_tokens`` excludes what was read from or written to the cache."""
    u = resp.usage
    return {
        "input_tokens": max(0, u.input_tokens - u.cached_input_tokens - u.cache_write_tokens),
        "output_tokens": u.output_tokens,
        "cache_creation_input_tokens": u.cache_write_tokens,
        "cache_read_input_tokens": u.cached_input_tokens,
    }


def message_json(resp: ChatResponse) -> dict[str, Any]:
    content: list[dict[str, Any]] = []
    if resp.content or not resp.tool_calls:
        content.append({"type": "text", "text": resp.content})
    for call in resp.tool_calls:
        content.append(
            {"type": "tool_use", "id": call.id, "name": call.name, "input": _tool_input(call.arguments)}
        )
    return {
        "id": "msg_" + resp.request_id,
        "type": "message",
        "role": "assistant",
        "model": resp.provider_model or resp.model,
        "content": content,
        "stop_reason": STOP.get(resp.finish_reason, "end_turn"),
        "stop_sequence": None,
        "usage": usage_json(resp),
    }


def answer_body(resp: ChatResponse, opts: None) -> bytes:
    return json.dumps(message_json(resp)).encode()


def _event(name: bytes, payload: bytes) -> bytes:
    return encode_event(payload, name)


class EventWriter:
    """Stream events as Anthropic's SSE events: one content block per run of text or per tool call."""

    __slots__ = ("_block", "_open", "_start", "_tools")

    def __init__(self, ev: StreamStart, opts: None) -> None:
        message: dict[str, Any] = {
            "id": "msg_" + ev.request_id,
            "type": "message",
            "role": "assistant",
            "model": ev.provider_model or ev.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": {"input_tokens": 0, "output_tokens": 0},
        }
        self._start: bytes | None = _event(
            b"message_start", json.dumps({"type": "message_start", "message": message}).encode()
        ) + _event(b"ping", b'{"type": "ping"}')
        self._block = -1  # index of the last block opened
        self._open: str | None = None  # "text" or "tool" while a block is open
        self._tools: dict[int, int] = {}  # the router's tool index -> block index

    def _lead(self) -> bytes:
        start, self._start = self._start, None
        return start or b""

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _event(b"content_block_stop", b'{"type": "content_block_stop", "index": %d}' % self._block)

    def text(self, text: str) -> bytes:
        out = self._lead()
        if self._open != "text":
            out += self._close()
            self._block += 1
            self._open = "text"
            out += _event(
                b"content_block_start",
                b'{"type": "content_block_start", "index": %d, "content_block": {"type": "text", "text": ""}}'
                % self._block,
            )
        return out + _event(
            b"content_block_delta",
            b'{"type": "content_block_delta", "index": %d, "delta": {"type": "text_delta", "text": %s}}'
            % (self._block, _jstr(text).encode()),
        )

    def tool(self, ev: ToolCallDelta) -> bytes:
        out = self._lead()
        block = self._tools.get(ev.index)
        if block is None:
            out += self._close()
            self._block += 1
            self._open = "tool"
            block = self._tools[ev.index] = self._block
            start = {
                "type": "content_block_start",
                "index": block,
                "content_block": {"type": "tool_use", "id": ev.id or "", "name": ev.name or "", "input": {}},
            }
            out += _event(b"content_block_start", json.dumps(start).encode())
        if ev.arguments:
            delta = {
                "type": "content_block_delta",
                "index": block,
                "delta": {"type": "input_json_delta", "partial_json": ev.arguments},
            }
            out += _event(b"content_block_delta", json.dumps(delta).encode())
        return out

    def end(self, resp: ChatResponse) -> bytes:
        out = self._lead() + self._close()
        delta = {
            "type": "message_delta",
            "delta": {"stop_reason": STOP.get(resp.finish_reason, "end_turn"), "stop_sequence": None},
            "usage": usage_json(resp),
        }
        return (
            out
            + _event(b"message_delta", json.dumps(delta).encode())
            + _event(b"message_stop", b'{"type": "message_stop"}')
        )

    def error(self, frame: bytes) -> bytes:
        """The error event, after ``message_start`` if nothing was sent yet."""
        return self._lead() + frame
