"""OpenAI's wire format in and out: request bodies to router types, router results to JSON and SSE.

Parsing validates by hand rather than with pydantic: it runs on every request, and a hand-written
check that names the exact field (``messages[2].content[0].text``) costs a few microseconds.
Every problem raises :class:`~router.sidecar.parsing.WireError`, which the app turns into an
OpenAI-shaped 400; what the three front ends share to read a body is :mod:`router.sidecar.parsing`.
"""

from __future__ import annotations

import base64
import json
import struct
from json.encoder import encode_basestring_ascii as _jstr  # what json.dumps does with a str
from typing import Any

from router.sidecar.parsing import (
    WireError,
    _model,
    _opt_int,
    _opt_number,
    _want,
    parse_caller,
    parse_text_parts,
    parse_tools,
)
from router.structured import FormatError, from_openai
from router.types import (
    ChatRequest,
    ChatResponse,
    EmbeddingRequest,
    EmbeddingResponse,
    Message,
    TextPart,
    ToolCall,
    ToolCallDelta,
    Usage,
)
from turnout.sse import encode_event

_ROLES: dict[Any, str] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
}

# OpenAI parameters the router does not model but passes to the provider as they are.
_PASSTHROUGH = frozenset(
    {
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "logprobs",
        "top_logprobs",
        "parallel_tool_calls",
        "service_tier",
        "store",
        "reasoning_effort",
        "prediction",
        "modalities",
        "verbosity",
        "prompt_cache_key",
        "safety_identifier",
    }
)

_FINISH = {"stop": "stop", "length": "length", "tool_calls": "tool_calls", "content_filter": "content_filter"}


def _text_part(part: dict[str, Any], path: str) -> None:
    ptype = part.get("type")
    if ptype != "text":
        raise WireError(
            f"Invalid value for '{path}.type': only 'text' content parts are supported, got {ptype!r}.",
            f"{path}.type",
        )


def _content(value: Any, path: str, role: str) -> str | list[TextPart]:
    if value is None:
        if role in ("assistant",):
            return ""
        raise WireError(f"Missing required parameter: '{path}'.", path)
    return parse_text_parts(value, path, "content parts", _text_part)


def _tool_calls(value: Any, path: str) -> list[ToolCall]:
    _want(value, list, path, "an array")
    calls: list[ToolCall] = []
    for i, call in enumerate(value):
        cpath = f"{path}[{i}]"
        _want(call, dict, cpath, "an object")
        fn = _want(call.get("function"), dict, f"{cpath}.function", "an object")
        calls.append(
            ToolCall(
                id=_want(call.get("id"), str, f"{cpath}.id", "a string"),
                name=_want(fn.get("name"), str, f"{cpath}.function.name", "a string"),
                arguments=_want(fn.get("arguments", ""), str, f"{cpath}.function.arguments", "a string"),
            )
        )
    return calls


def _messages(value: Any) -> list[Message]:
    if value is None:
        raise WireError("Missing required parameter: 'messages'.", "messages")
    _want(value, list, "messages", "an array")
    if not value:
        raise WireError(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages"
        )
    out: list[Message] = []
    # Per message, the usual case (a plain object, a known role, string content) formats no
    # field path: it is built only for the checks that need it (a few us a message otherwise).
    for i, msg in enumerate(value):
        if type(msg) is not dict:
            _want(msg, dict, f"messages[{i}]", "an object")
        role: Any = _ROLES.get(msg.get("role"))
        if role is None:
            path = f"messages[{i}]"
            raise WireError(
                f"Invalid value for '{path}.role': {msg.get('role')!r}; expected one of "
                "'system', 'developer', 'user', 'assistant', 'tool'.",
                f"{path}.role",
            )
        content = msg.get("content")
        if type(content) is not str:
            content = _content(content, f"messages[{i}].content", role)
        m = Message(role=role, content=content)
        name = msg.get("name")
        if name is not None:
            m.name = _want(name, str, f"messages[{i}].name", "a string")
        if role == "assistant" and msg.get("tool_calls") is not None:
            m.tool_calls = _tool_calls(msg["tool_calls"], f"messages[{i}].tool_calls")
        if role == "tool":
            m.tool_call_id = _want(msg.get("tool_call_id"), str, f"messages[{i}].tool_call_id", "a string")
        out.append(m)
    return out


def _chat_tool(tool: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    if tool.get("type", "function") != "function":
        raise WireError(f"Invalid value for '{path}.type': only 'function' tools are supported.", path)
    return _want(tool.get("function"), dict, f"{path}.function", "an object"), f"{path}.function"


_CHAT_KEYS = frozenset(
    {
        "model",
        "messages",
        "max_tokens",
        "max_completion_tokens",
        "temperature",
        "top_p",
        "stop",
        "seed",
        "tools",
        "tool_choice",
        "response_format",
        "stream",
        "stream_options",
        "user",
        "metadata",
        "n",
    }
)


def parse_chat(body: dict[str, Any]) -> tuple[ChatRequest, bool]:
    """A chat-completions body as a ChatRequest, and whether the client asked for a usage chunk."""
    for key in body:
        if key not in _CHAT_KEYS and key not in _PASSTHROUGH:
            raise WireError(f"Unrecognized request argument supplied: {key}", key)
    req = ChatRequest(model=_model(body), messages=_messages(body.get("messages")))
    max_tokens = _opt_int(body, "max_completion_tokens")
    req.max_tokens = max_tokens if max_tokens is not None else _opt_int(body, "max_tokens")
    req.temperature = _opt_number(body, "temperature", 0, 2)
    req.top_p = _opt_number(body, "top_p", 0, 1)
    req.seed = _opt_int(body, "seed", lo=-(2**63))
    n = _opt_int(body, "n")
    if n is not None and n != 1:
        raise WireError("Invalid value for 'n': the router returns one choice; only n=1 is supported.", "n")
    stop = body.get("stop")
    if stop is not None:
        if isinstance(stop, str):
            req.stop = [stop]
        else:
            _want(stop, list, "stop", "a string or an array of strings")
            req.stop = [_want(s, str, f"stop[{i}]", "a string") for i, s in enumerate(stop)]
    if body.get("tools") is not None:
        req.tools = parse_tools(body["tools"], _chat_tool, "parameters")
    tool_choice = body.get("tool_choice")
    if tool_choice is not None:
        req.tool_choice = _want(tool_choice, (str, dict), "tool_choice", "a string or an object")
    if body.get("response_format") is not None:
        try:
            req.response_format = from_openai(body["response_format"])
        except FormatError as exc:
            raise WireError(exc.message, exc.param) from None
    stream = body.get("stream")
    if stream is not None:
        req.stream = bool(_want(stream, bool, "stream", "a boolean"))
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        _want(options, dict, "stream_options", "an object")
        usage = options.get("include_usage")
        if usage is not None:
            include_usage = bool(_want(usage, bool, "stream_options.include_usage", "a boolean"))
    parse_caller(body, req)
    for key in _PASSTHROUGH.intersection(body):
        req.extra[key] = body[key]
    return req, include_usage


def parse_embeddings(body: dict[str, Any]) -> tuple[EmbeddingRequest, str]:
    """An embeddings body as an EmbeddingRequest, and the encoding format asked for."""
    for key in body:
        if key not in ("model", "input", "dimensions", "encoding_format", "user"):
            raise WireError(f"Unrecognized request argument supplied: {key}", key)
    value = body.get("input")
    if value is None:
        raise WireError("Missing required parameter: 'input'.", "input")
    if isinstance(value, str):
        inputs = [value]
    else:
        _want(value, list, "input", "a string or an array of strings")
        if not value:
            raise WireError("Invalid 'input': empty array.", "input")
        inputs = [
            _want(s, str, f"input[{i}]", "a string (token arrays are not supported)")
            for i, s in enumerate(value)
        ]
    fmt = body.get("encoding_format") or "float"
    if fmt not in ("float", "base64"):
        raise WireError(
            "Invalid value for 'encoding_format': expected 'float' or 'base64'.", "encoding_format"
        )
    req = EmbeddingRequest(model=_model(body), input=inputs, dimensions=_opt_int(body, "dimensions"))
    return req, fmt


# --- responses ---------------------------------------------------------------------------------------


def usage_json(usage: Usage) -> dict[str, Any]:
    return {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.input_tokens + usage.output_tokens,
        "prompt_tokens_details": {"cached_tokens": usage.cached_input_tokens},
    }


def _answer_model(resp: ChatResponse | EmbeddingResponse) -> str:
    return resp.provider_model or resp.model


def chat_json(resp: ChatResponse, completion_id: str, created: int) -> dict[str, Any]:
    message: dict[str, Any] = {"role": "assistant", "content": resp.content, "refusal": None}
    if resp.tool_calls:
        message["tool_calls"] = [
            {"id": c.id, "type": "function", "function": {"name": c.name, "arguments": c.arguments}}
            for c in resp.tool_calls
        ]
        if not resp.content:
            message["content"] = None
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": _answer_model(resp),
        "choices": [
            {
                "index": 0,
                "message": message,
                "finish_reason": _FINISH.get(resp.finish_reason, "stop"),
                "logprobs": None,
            }
        ],
        "usage": usage_json(resp.usage),
    }


def chat_body(resp: ChatResponse, completion_id: str, created: int) -> bytes:
    """``json.dumps(chat_json(...)).encode()``: the same bytes, spliced from a template.

    ``json.dumps`` builds a new encoder on every call and walks the dict: about 10 us a response
    on a small VM, a fifth of the sidecar's own time. Answers with tool calls (and any field of an
    unexpected type) take the general path.
    """
    u = resp.usage
    inp, out, cached = u.input_tokens, u.output_tokens, u.cached_input_tokens
    if (
        resp.tool_calls
        or type(resp.content) is not str
        or type(created) is not int
        or type(inp) is not int
        or type(out) is not int
        or type(cached) is not int
    ):
        return json.dumps(chat_json(resp, completion_id, created)).encode()
    return (
        f'{{"id": {_jstr(completion_id)}, "object": "chat.completion", "created": {created}, '
        f'"model": {_jstr(_answer_model(resp))}, "choices": [{{"index": 0, "message": '
        f'{{"role": "assistant", "content": {_jstr(resp.content)}, "refusal": null}}, '
        f'"finish_reason": {_jstr(_FINISH.get(resp.finish_reason, "stop"))}, "logprobs": null}}], '
        f'"usage": {{"prompt_tokens": {inp}, "completion_tokens": {out}, "total_tokens": {inp + out}, '
        f'"prompt_tokens_details": {{"cached_tokens": {cached}}}}}}}'
    ).encode()


def embeddings_json(resp: EmbeddingResponse, fmt: str) -> dict[str, Any]:
    data = []
    for i, vec in enumerate(resp.vectors):
        emb: Any = vec
        if fmt == "base64":
            emb = base64.b64encode(struct.pack(f"<{len(vec)}f", *vec)).decode("ascii")
        data.append({"object": "embedding", "index": i, "embedding": emb})
    return {
        "object": "list",
        "data": data,
        "model": _answer_model(resp),
        "usage": {"prompt_tokens": resp.usage.input_tokens, "total_tokens": resp.usage.input_tokens},
    }


class ChunkWriter:
    """Turns stream events into OpenAI ``chat.completion.chunk`` SSE frames (bytes).

    Every chunk carries the same id, created time and model; the first carries the role.
    """

    __slots__ = ("_first", "_prefix", "_suffix", "_tool_ids", "include_usage")

    def __init__(self, completion_id: str, created: int, model: str, include_usage: bool) -> None:
        # json.dumps of {"id", "object", "created", "model"} without its closing brace, spliced
        # by hand (created is an int: the handler's int(time.time())).
        head = (
            f'{{"id": {_jstr(completion_id)}, "object": "chat.completion.chunk", '
            f'"created": {int(created)}, "model": {_jstr(model)}'
        )
        # Splice the per-chunk part into a precomputed prefix instead of re-encoding the envelope.
        self._prefix = b"data: " + head.encode() + b', "choices": [{"index": 0, "delta": '
        self._suffix = (
            b', "logprobs": null, "finish_reason": null}]'
            + (b', "usage": null' if include_usage else b"")
            + b"}\n\n"
        )
        self._first = True
        self._tool_ids: set[int] = set()
        self.include_usage = include_usage

    def _delta(self, delta: dict[str, Any]) -> bytes:
        if self._first:
            self._first = False
            delta = {"role": "assistant", **delta}
        return self._prefix + json.dumps(delta).encode() + self._suffix

    def role(self) -> bytes:
        return self._delta({"content": ""})

    def text(self, text: str) -> bytes:
        # json.dumps of the delta, spliced by hand: it is written once per token, and json.dumps
        # (a new encoder per call) costs ~20 times more than escaping the one string.
        if self._first:
            self._first = False
            delta = b'{"role": "assistant", "content": ' + _jstr(text).encode() + b"}"
        else:
            delta = b'{"content": ' + _jstr(text).encode() + b"}"
        return self._prefix + delta + self._suffix

    def tool(self, ev: ToolCallDelta) -> bytes:
        call: dict[str, Any] = {"index": ev.index}
        if ev.index not in self._tool_ids:
            self._tool_ids.add(ev.index)
            call["id"] = ev.id
            call["type"] = "function"
            call["function"] = {"name": ev.name, "arguments": ev.arguments}
        else:
            call["function"] = {"arguments": ev.arguments}
        return self._delta({"tool_calls": [call]})

    def end(self, resp: ChatResponse) -> bytes:
        finish = _FINISH.get(resp.finish_reason, "stop")
        lead = self.role() if self._first else b""  # an answer with no content still names its role
        tail = self._suffix.replace(b'"finish_reason": null', f'"finish_reason": "{finish}"'.encode())
        out = lead + self._prefix + b"{}" + tail
        if self.include_usage:
            usage = json.dumps(usage_json(resp.usage)).encode()
            envelope = self._prefix[: self._prefix.index(b', "choices"')]
            out += envelope + b', "choices": [], "usage": ' + usage + b"}\n\n"
        return out + b"data: [DONE]\n\n"

    def error(self, frame: bytes) -> bytes:
        return frame


def error_frame(body: dict[str, Any]) -> bytes:
    return encode_event(json.dumps(body))
