"""OpenAI's Responses API as a front end: ``POST /v1/responses``, the subset chat can express.

Requests become the router's :class:`ChatRequest`: ``input`` as text or items (messages with
``input_text`` / ``output_text`` parts, ``function_call`` and ``function_call_output`` items),
``instructions`` as the system prompt, function tools, ``tool_choice``, ``text.format``
(structured outputs, :mod:`router.structured`), ``max_output_tokens``, ``temperature``,
``top_p``, ``metadata``. Answers are ``response`` objects (a ``message`` item with
``output_text``, one ``function_call`` item per tool call, usage in ``input_tokens`` /
``output_tokens``, ``status: incomplete`` when the answer hit its length limit); streams are the
Responses event sequence, each event with its ``sequence_number``; a failure after output began
ends the stream with ``error`` and ``response.failed``, never ``response.completed``. Errors
before output are OpenAI-shaped, as on chat completions.

The router keeps no conversation state: ``previous_response_id`` (and ``store: true`` with it)
is refused with a 400 that says to send the conversation in ``input`` instead. Images, files,
built-in tools and reasoning settings are refused with a 400 naming the field.
"""

from __future__ import annotations

import json
import time
from json.encoder import encode_basestring_ascii as _jstr
from typing import Any

from router.sidecar import parsing
from router.sidecar.errors import Scrubber, stream_error_body
from router.sidecar.parsing import WireError, _model, _opt_int, _opt_number, _want, parse_caller
from router.structured import FormatError, from_responses, to_responses
from router.types import (
    ChatRequest,
    ChatResponse,
    Message,
    ResponseFormat,
    StreamStart,
    TextPart,
    ToolCall,
    ToolCallDelta,
)
from turnout.sse import encode_event

NAME = "responses"

_KEYS = frozenset(
    {
        "model",
        "input",
        "instructions",
        "tools",
        "tool_choice",
        "text",
        "stream",
        "max_output_tokens",
        "temperature",
        "top_p",
        "metadata",
        "user",
        "store",
        "parallel_tool_calls",
        "previous_response_id",
        "truncation",
        "include",
        "reasoning",
        "service_tier",
        "prompt_cache_key",
        "safety_identifier",
        "stream_options",
    }
)
_ROLES = {"user": "user", "system": "system", "developer": "system", "assistant": "assistant"}
_PART_TYPES = frozenset({"input_text", "output_text", "text"})


class Echo:
    """What the answer repeats of the request (the Responses object carries its parameters)."""

    __slots__ = (
        "fmt",
        "instructions",
        "max_output_tokens",
        "metadata",
        "temperature",
        "tool_choice",
        "tools",
        "top_p",
    )

    def __init__(self, body: dict[str, Any], fmt: ResponseFormat | None) -> None:
        self.instructions = body.get("instructions")
        self.tools = body.get("tools") or []
        self.tool_choice = body.get("tool_choice", "auto")
        self.temperature = body.get("temperature")
        self.top_p = body.get("top_p")
        self.max_output_tokens = body.get("max_output_tokens")
        self.metadata = body.get("metadata") or {}
        self.fmt = fmt


# --- requests ----------------------------------------------------------------------------------------


def _text_part(part: dict[str, Any], path: str) -> None:
    ptype = part.get("type")
    if ptype not in _PART_TYPES:
        raise WireError(
            f"Invalid value for '{path}.type': only text parts are supported through the router, "
            f"got {ptype!r}.",
            f"{path}.type",
        )


def _parts(value: Any, path: str) -> str | list[TextPart]:
    return parsing.parse_text_parts(value, path, "content parts", _text_part, cache=False)


def _input(value: Any) -> list[Message]:
    if value is None:
        raise WireError("Missing required parameter: 'input'.", "input")
    if isinstance(value, str):
        return [Message(role="user", content=value)]
    _want(value, list, "input", "a string or an array of input items")
    if not value:
        raise WireError("Invalid 'input': empty array. Expected an array with minimum length 1.", "input")
    out: list[Message] = []
    for i, item in enumerate(value):
        path = f"input[{i}]"
        _want(item, dict, path, "an object")
        itype = item.get("type", "message")
        if itype == "message":
            role = _ROLES.get(item.get("role"))
            if role is None:
                raise WireError(
                    f"Invalid value for '{path}.role': {item.get('role')!r}; expected one of "
                    "'user', 'system', 'developer', 'assistant'.",
                    f"{path}.role",
                )
            out.append(Message(role=role, content=_parts(item.get("content"), f"{path}.content")))  # type: ignore[arg-type]
        elif itype == "function_call":
            call = ToolCall(
                id=_want(item.get("call_id"), str, f"{path}.call_id", "a string"),
                name=_want(item.get("name"), str, f"{path}.name", "a string"),
                arguments=_want(item.get("arguments", ""), str, f"{path}.arguments", "a string"),
            )
            last = out[-1] if out else None
            if last is not None and last.role == "assistant" and last.tool_calls:
                last.tool_calls.append(call)  # parallel calls: one assistant turn
            else:
                out.append(Message(role="assistant", content="", tool_calls=[call]))
        elif itype == "function_call_output":
            output = item.get("output")
            text = output if isinstance(output, str) else _parts(output, f"{path}.output")
            out.append(
                Message(
                    role="tool",
                    content=text if isinstance(text, str) else "".join(p.text for p in text),
                    tool_call_id=_want(item.get("call_id"), str, f"{path}.call_id", "a string"),
                )
            )
        elif itype == "reasoning":
            continue  # a previous answer's reasoning summary: nothing another provider can take
        else:
            raise WireError(
                f"Invalid value for '{path}.type': {itype!r} items are not supported through the router "
                "(message, function_call and function_call_output are).",
                f"{path}.type",
            )
    return out


def _tool(tool: dict[str, Any], path: str) -> tuple[dict[str, Any], str]:
    if tool.get("type") != "function":
        raise WireError(
            f"Invalid value for '{path}.type': only 'function' tools are supported through the router, "
            f"got {tool.get('type')!r}.",
            f"{path}.type",
        )
    return tool, path


def _tool_choice(value: Any) -> str | dict[str, Any]:
    if value in ("auto", "none", "required"):
        return str(value)
    _want(value, dict, "tool_choice", "'auto', 'none', 'required' or an object")
    if value.get("type") != "function":
        raise WireError(
            "Invalid value for 'tool_choice.type': only 'function' is supported.", "tool_choice.type"
        )
    name = _want(value.get("name"), str, "tool_choice.name", "a string")
    return {"type": "function", "function": {"name": name}}


def parse(body: dict[str, Any]) -> tuple[ChatRequest, Echo]:
    """A Responses body as a ChatRequest, and what its answer echoes."""
    for key in body:
        if key not in _KEYS:
            raise WireError(f"Unknown parameter: '{key}'.", key)
    if body.get("previous_response_id") is not None:
        raise WireError(
            "previous_response_id is not supported: the router keeps no conversation state. "
            "Send the whole conversation in 'input' (earlier output items included).",
            "previous_response_id",
        )
    for name in ("reasoning", "include"):
        if body.get(name):
            raise WireError(f"Invalid value for '{name}': not supported through the router.", name)
    req = ChatRequest(model=_model(body), messages=_input(body.get("input")))
    instructions = body.get("instructions")
    if instructions is not None:
        req.system = _want(instructions, str, "instructions", "a string")
    if body.get("tools") is not None:
        req.tools = parsing.parse_tools(body["tools"], _tool, "parameters")
    if body.get("tool_choice") is not None:
        req.tool_choice = _tool_choice(body["tool_choice"])
    text = body.get("text")
    if text is not None:
        _want(text, dict, "text", "an object")
        if text.get("format") is not None:
            try:
                req.response_format = from_responses(text["format"])
            except FormatError as exc:
                raise WireError(exc.message, exc.param) from None
    req.max_tokens = _opt_int(body, "max_output_tokens")
    req.temperature = _opt_number(body, "temperature", 0, 2)
    req.top_p = _opt_number(body, "top_p", 0, 1)
    stream = body.get("stream")
    if stream is not None:
        req.stream = bool(_want(stream, bool, "stream", "a boolean"))
    parse_caller(body, req)
    return req, Echo(body, req.response_format)


# --- answers -----------------------------------------------------------------------------------------


def usage_json(resp: ChatResponse) -> dict[str, Any]:
    u = resp.usage
    return {
        "input_tokens": u.input_tokens,
        "input_tokens_details": {"cached_tokens": u.cached_input_tokens},
        "output_tokens": u.output_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": u.input_tokens + u.output_tokens,
    }


def _envelope(rid: str, model: str, created: int, echo: Echo, status: str) -> dict[str, Any]:
    return {
        "id": "resp_" + rid,
        "object": "response",
        "created_at": created,
        "status": status,
        "error": None,
        "incomplete_details": None,
        "instructions": echo.instructions,
        "max_output_tokens": echo.max_output_tokens,
        "model": model,
        "output": [],
        "parallel_tool_calls": True,
        "previous_response_id": None,
        "temperature": echo.temperature,
        "text": {"format": to_responses(echo.fmt)},
        "tool_choice": echo.tool_choice,
        "tools": echo.tools,
        "top_p": echo.top_p,
        "truncation": "disabled",
        "metadata": echo.metadata,
        "usage": None,
    }


def _message_item(rid: str, text: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "message",
        "id": "msg_" + rid,
        "status": status,
        "role": "assistant",
        "content": [{"type": "output_text", "text": text, "annotations": [], "logprobs": []}]
        if status == "completed"
        else [],
    }


def _call_item(call_id: str, name: str, arguments: str, status: str = "completed") -> dict[str, Any]:
    return {
        "type": "function_call",
        "id": "fc_" + call_id,
        "call_id": call_id,
        "name": name,
        "arguments": arguments,
        "status": status,
    }


def _finish(out: dict[str, Any], resp: ChatResponse) -> None:
    if resp.finish_reason == "length":
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": "max_output_tokens"}
    elif resp.finish_reason == "content_filter":
        out["status"] = "incomplete"
        out["incomplete_details"] = {"reason": "content_filter"}
    out["usage"] = usage_json(resp)


def response_json(resp: ChatResponse, echo: Echo, created: int) -> dict[str, Any]:
    out = _envelope(resp.request_id, resp.provider_model or resp.model, created, echo, "completed")
    if resp.content or not resp.tool_calls:
        out["output"].append(_message_item(resp.request_id, resp.content))
    for call in resp.tool_calls:
        out["output"].append(_call_item(call.id, call.name, call.arguments))
    _finish(out, resp)
    return out


def answer_body(resp: ChatResponse, echo: Echo) -> bytes:
    return json.dumps(response_json(resp, echo, int(time.time()))).encode()


def stream_error(err: BaseException, scrub: Scrubber) -> bytes:
    """The error's body; :meth:`EventWriter.error` frames it as ``error`` + ``response.failed``."""
    return json.dumps(stream_error_body(err, scrub)["error"]).encode()


class EventWriter:
    """Stream events as the Responses API's SSE events, numbered by ``sequence_number``."""

    __slots__ = (
        "_created",
        "_echo",
        "_items",
        "_model",
        "_open",
        "_rid",
        "_seq",
        "_start",
        "_text",
        "_tools",
    )

    def __init__(self, ev: StreamStart, echo: Echo) -> None:
        self._rid = ev.request_id
        self._model = ev.provider_model or ev.model
        self._echo = echo
        self._created = int(time.time())
        self._seq = 0
        self._items: list[dict[str, Any]] = []  # finished output items
        self._open: str | None = None  # "text", or a tool's call id, while an item is open
        self._text: list[str] = []
        self._tools: dict[int, list[str]] = {}  # the router's tool index -> [call_id, name, arguments]
        env = _envelope(self._rid, self._model, self._created, echo, "in_progress")
        self._start: bytes | None = self._event("response.created", {"response": env}) + self._event(
            "response.in_progress", {"response": env}
        )

    def _event(self, name: str, payload: dict[str, Any]) -> bytes:
        payload = {"type": name, **payload, "sequence_number": self._seq}
        self._seq += 1
        return encode_event(json.dumps(payload), name)

    def _lead(self) -> bytes:
        start, self._start = self._start, None
        return start or b""

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        index = len(self._items)
        if self._open == "text":
            text = "".join(self._text)
            item = _message_item(self._rid, text)
            part = item["content"][0]
            base = {"item_id": item["id"], "output_index": index, "content_index": 0}
            out = (
                self._event("response.output_text.done", {**base, "text": text, "logprobs": []})
                + self._event("response.content_part.done", {**base, "part": part})
                + self._event("response.output_item.done", {"output_index": index, "item": item})
            )
        else:
            slot = next(t for t in self._tools.values() if t[0] == self._open)
            item = _call_item(slot[0], slot[1], slot[2])
            out = self._event(
                "response.function_call_arguments.done",
                {"item_id": item["id"], "output_index": index, "name": slot[1], "arguments": slot[2]},
            ) + self._event("response.output_item.done", {"output_index": index, "item": item})
        self._items.append(item)
        self._open = None
        return out

    def text(self, text: str) -> bytes:
        out = self._lead()
        index = len(self._items)
        if self._open != "text":
            out += self._close()
            index = len(self._items)
            self._open = "text"
            self._text = []
            item = _message_item(self._rid, "", "in_progress")
            out += self._event("response.output_item.added", {"output_index": index, "item": item})
            part = {"type": "output_text", "text": "", "annotations": [], "logprobs": []}
            out += self._event(
                "response.content_part.added",
                {"item_id": item["id"], "output_index": index, "content_index": 0, "part": part},
            )
        self._text.append(text)
        # The per-token event, spliced by hand: json.dumps per token costs ~20 times the escaping.
        seq = self._seq
        self._seq += 1
        return out + (
            b'event: response.output_text.delta\ndata: {"type": "response.output_text.delta", "item_id": '
            b'"msg_%s", "output_index": %d, "content_index": 0, "delta": %s, "logprobs": [], '
            b'"sequence_number": %d}\n\n' % (self._rid.encode(), index, _jstr(text).encode(), seq)
        )

    def tool(self, ev: ToolCallDelta) -> bytes:
        out = self._lead()
        slot = self._tools.get(ev.index)
        if slot is None:
            out += self._close()
            slot = self._tools[ev.index] = [ev.id or f"call_{ev.index}", ev.name or "", ""]
            self._open = slot[0]
            item = _call_item(slot[0], slot[1], "", "in_progress")
            out += self._event("response.output_item.added", {"output_index": len(self._items), "item": item})
        if ev.arguments:
            slot[2] += ev.arguments
            index = len(self._items) if self._open == slot[0] else len(self._items) - 1
            out += self._event(
                "response.function_call_arguments.delta",
                {"item_id": "fc_" + slot[0], "output_index": index, "delta": ev.arguments},
            )
        return out

    def end(self, resp: ChatResponse) -> bytes:
        out = self._lead() + self._close()
        final = _envelope(
            self._rid, resp.provider_model or self._model, self._created, self._echo, "completed"
        )
        final["output"] = self._items
        _finish(final, resp)
        name = "response.completed" if final["status"] == "completed" else "response.incomplete"
        return out + self._event(name, {"response": final})

    def error(self, frame: bytes) -> bytes:
        """``error`` then ``response.failed``: the stream never ends as if it were complete."""
        err = json.loads(frame)
        failed = _envelope(self._rid, self._model, self._created, self._echo, "failed")
        failed["output"] = self._items
        failed["error"] = {"code": err.get("code") or "server_error", "message": err.get("message", "")}
        return (
            self._lead()
            + self._event("error", {"code": err.get("code"), "message": err.get("message"), "param": None})
            + self._event("response.failed", {"response": failed})
        )
