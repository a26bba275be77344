"""OpenAI's Responses API wire format (``POST /v1/responses``): request parsing, the response
object, and the streamed event sequence. Stateless; :mod:`mockproviders.responses` keeps the
stored responses that ``previous_response_id`` and ``GET /v1/responses/{id}`` read.

Input is a string or a list of items: messages (``{role, content}``, content a string or
``input_text``/``output_text`` parts), ``function_call`` and ``function_call_output`` items;
``reasoning`` and ``item_reference`` items are accepted and carry no text. ``instructions`` is
the system message of this request only. The answer is composed as chat's is
(:func:`mockproviders.answers.compose`), so scripted rules, tools, structured outputs
(``text.format``) and fault patches behave alike on both APIs.

Stream: ``response.created``, ``response.in_progress``, then per output item
``response.output_item.added``, (``response.content_part.added``, ``response.output_text.delta``
…, ``response.output_text.done``, ``response.content_part.done``) or
(``response.function_call_arguments.delta`` …, ``.done``), ``response.output_item.done``, and
last ``response.completed`` or ``response.incomplete``; every event carries ``sequence_number``.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from mockproviders.answers import ChatQuery, Choice
from mockproviders.errors import FieldError
from mockproviders.providers._base import Usage, body_object, dumps, expect, need, opt, opt_int, opt_number
from mockproviders.structured import check_strict, mentions_json, responses_text_format
from mockproviders.tokens import split_tokens, text_parts
from mockproviders.types import EventKind, StreamEvent

_ROLES = ("user", "assistant", "system", "developer")
_ITEM_TYPES = ("message", "function_call", "function_call_output", "reasoning", "item_reference")
MIN_OUTPUT_TOKENS = 16  # the real API refuses a smaller max_output_tokens


@dataclass(slots=True)
class ResponsesRequest:
    """A Responses request: the chat query it amounts to, and what the response echoes back."""

    query: ChatQuery
    history: list[tuple[str, str]]  # the conversation before it (from previous_response_id)
    input_messages: list[tuple[str, str]]  # this request's own input items, as (role, text)
    previous_response_id: str | None
    store: bool
    echo: dict[str, Any] = field(default_factory=dict)


def parse_input(raw: Any) -> tuple[list[tuple[str, str]], bool]:
    """Input items as (role, text) and whether the last one is a function call's output."""
    if isinstance(raw, str):
        return [("user", raw)], False
    items = expect(raw, list, ("input",), what="a string or an array of input items")
    out: list[tuple[str, str]] = []
    last_output = False
    for i, item in enumerate(items):
        loc = ("input", i)
        expect(item, dict, loc)
        kind = item.get("type", "message")
        if kind not in _ITEM_TYPES:
            raise FieldError(
                (*loc, "type"),
                f"Invalid value: '{kind}'. Supported values are: {', '.join(repr(t) for t in _ITEM_TYPES)}.",
                "value",
                kind,
            )
        last_output = kind == "function_call_output"
        if kind == "message":
            role = expect(need(item, "role", loc), str, (*loc, "role"))
            if role not in _ROLES:
                raise FieldError(
                    (*loc, "role"),
                    f"Invalid value: '{role}'. Supported values are: {', '.join(repr(r) for r in _ROLES)}.",
                    "value",
                    role,
                )
            content = need(item, "content", loc)
            expect(content, (str, list), (*loc, "content"), what="a string or an array of content parts")
            if isinstance(content, list):
                for j, part in enumerate(content):
                    expect(part, dict, (*loc, "content", j))
            out.append(("system" if role == "developer" else role, "".join(text_parts(content))))
        elif kind == "function_call":
            for key in ("call_id", "name", "arguments"):
                expect(need(item, key, loc), str, (*loc, key))
            out.append(("assistant", ""))
        elif kind == "function_call_output":
            expect(need(item, "call_id", loc), str, (*loc, "call_id"))
            output = need(item, "output", loc)
            expect(output, (str, list), (*loc, "output"), what="a string or an array of content parts")
            out.append(("tool", "".join(text_parts(output))))
    return out, last_output


def _tools(raw: Any) -> list[tuple[str, Any]]:
    """Function tools as (name, parameters); built-in tools (web_search…) are never called."""
    if raw is None:
        return []
    expect(raw, list, ("tools",))
    out = []
    for i, tool in enumerate(raw):
        expect(tool, dict, ("tools", i))
        kind = expect(need(tool, "type", ("tools", i)), str, ("tools", i, "type"))
        if kind != "function":
            continue
        name = expect(need(tool, "name", ("tools", i)), str, ("tools", i, "name"))
        params = opt(tool, "parameters", dict, ("tools", i)) or {}
        out.append((name, params))
    return out


def _tool_choice(value: Any, names: list[str]) -> str | None:
    if value is None or value in ("none", "auto", "required"):
        return value
    if isinstance(value, str):
        raise FieldError(("tool_choice",), "expected one of none, auto, required.", "value", value)
    expect(value, dict, ("tool_choice",), what="a string or an object")
    if value.get("type") != "function":
        return "none"  # a built-in tool the mock does not run: answer in words
    name = expect(need(value, "name", ("tool_choice",)), str, ("tool_choice", "name"))
    if name not in names:
        raise FieldError(("tool_choice",), f"Tool choice '{name}' not found in 'tools' parameter.", "value")
    return name


def parse_request(body: Any, history: list[tuple[str, str]]) -> ResponsesRequest:
    """Validate a Responses request body; ``history`` is the conversation so far (from
    ``previous_response_id``), which the input continues."""
    body = body_object(body)
    model = expect(need(body, "model"), str, ("model",))
    inputs, after_output = parse_input(need(body, "input"))
    instructions = opt(body, "instructions", str)
    max_out = opt_int(body, "max_output_tokens", low=MIN_OUTPUT_TOKENS)
    temperature = opt_number(body, "temperature", low=0, high=2)
    top_p = opt_number(body, "top_p", low=0, high=1)
    tools = _tools(body.get("tools"))
    choice = _tool_choice(body.get("tool_choice"), [n for n, _ in tools])
    fmt = responses_text_format(body.get("text"))
    messages = ([("system", instructions)] if instructions else []) + history + inputs
    if fmt is not None:
        check_strict(fmt, ("text", "format"))
        if fmt.kind == "json_object" and not mentions_json([t for _, t in messages]):
            raise FieldError(
                ("input",),
                "Response input messages must contain the word 'json' in some form to use 'text.format' "
                "of type 'json_object'.",
            )
    stream = bool(opt(body, "stream", bool))
    store = opt(body, "store", bool)
    previous = opt(body, "previous_response_id", str)
    query = ChatQuery(
        model=model,
        messages=messages,
        last_is_tool_result=after_output,
        max_tokens=max_out,
        tools=tools,
        tool_choice=choice,
        stream=stream,
        response_format=fmt,
    )
    text = body.get("text") if isinstance(body.get("text"), dict) else {}
    echo = {
        "instructions": instructions,
        "max_output_tokens": max_out,
        "metadata": opt(body, "metadata", dict) or {},
        "parallel_tool_calls": opt(body, "parallel_tool_calls", bool) is not False,
        "temperature": 1.0 if temperature is None else temperature,
        "top_p": 1.0 if top_p is None else top_p,
        "tool_choice": body.get("tool_choice") or "auto",
        "tools": [_echo_tool(t) for t in body.get("tools") or []],
        "text": {"format": {"type": "text"}, **text},
        "truncation": opt(body, "truncation", str) or "disabled",
        "user": opt(body, "user", str),
        "reasoning": opt(body, "reasoning", dict) or {"effort": None, "summary": None},
        "service_tier": "default",
    }
    return ResponsesRequest(query, history, inputs, previous, store is not False, echo)


def _echo_tool(tool: Mapping[str, Any]) -> dict[str, Any]:
    if tool.get("type") != "function":
        return dict(tool)
    return {"description": None, "strict": True, **tool}


def conversation_after(req: ResponsesRequest, choice: Choice) -> list[tuple[str, str]]:
    """The history a later request continues: earlier turns, this input, this answer
    (``instructions`` are not carried over, as the real API does)."""
    answer = choice.refusal if choice.refusal is not None else (choice.text or "")
    return [*req.history, *req.input_messages, ("assistant", answer)]


# -- rendering ---------------------------------------------------------------------------------


@dataclass(slots=True)
class _Ids:
    response: str
    message: str
    calls: list[tuple[str, str]]  # (item id, call id)


def _ids(response_id: str, choice: Choice) -> _Ids:
    calls = [(f"fc_{t.id}{response_id[:8]}", f"call_{t.id}") for t in choice.tool_calls]
    return _Ids(f"resp_{response_id}", f"msg_{response_id}", calls)


def _status_details(choice: Choice) -> tuple[str, dict[str, str] | None]:
    if choice.finish == "length":
        return "incomplete", {"reason": "max_output_tokens"}
    if choice.finish == "content_filter":
        return "incomplete", {"reason": "content_filter"}
    return "completed", None


def _usage(usage: Usage) -> dict[str, Any]:
    return {
        "input_tokens": usage.prompt_tokens,
        "input_tokens_details": {"cached_tokens": usage.cache_read_tokens, "cache_write_tokens": 0},
        "output_tokens": usage.completion_tokens,
        "output_tokens_details": {"reasoning_tokens": 0},
        "total_tokens": usage.total_tokens,
    }


def _part(choice: Choice) -> dict[str, Any] | None:
    if choice.refusal is not None:
        return {"type": "refusal", "refusal": choice.refusal}
    if choice.text or not choice.tool_calls:
        return {"type": "output_text", "text": choice.text or "", "annotations": [], "logprobs": []}
    return None


def _items(ids: _Ids, choice: Choice, status: str) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    part = _part(choice)
    if part is not None:
        items.append(
            {
                "id": ids.message,
                "type": "message",
                "status": "incomplete" if status == "incomplete" else "completed",
                "role": "assistant",
                "content": [part],
            }
        )
    for (item_id, call_id), t in zip(ids.calls, choice.tool_calls, strict=True):
        items.append(
            {
                "id": item_id,
                "type": "function_call",
                "status": "completed",
                "arguments": t.arguments,
                "call_id": call_id,
                "name": t.name,
            }
        )
    return items


def render_response(
    response_id: str,
    created: int,
    req: ResponsesRequest,
    choice: Choice,
    usage: Usage | None,
    *,
    status: str | None = None,
) -> dict[str, Any]:
    """The response object; ``status`` ``in_progress`` gives the stream's first snapshot."""
    ids = _ids(response_id, choice)
    final, details = _status_details(choice)
    status = status or final
    done = status != "in_progress"
    return {
        "id": ids.response,
        "object": "response",
        "created_at": created,
        "status": status,
        "background": False,
        "error": None,
        "incomplete_details": details if done else None,
        "model": req.query.model,
        "output": _items(ids, choice, final) if done else [],
        "previous_response_id": req.previous_response_id,
        "store": req.store,
        "usage": _usage(usage) if done and usage is not None else None,
        **req.echo,
    }


def stream_events(
    response_id: str, created: int, req: ResponsesRequest, choice: Choice, usage: Usage
) -> Iterator[StreamEvent]:
    """The streamed event sequence for one answer (see the module docstring)."""
    seq = iter(range(1 << 30))

    def event(kind: EventKind, name: str, payload: dict[str, Any], tokens: int = 0) -> StreamEvent:
        body = {"type": name, "sequence_number": next(seq), **payload}
        return StreamEvent(kind, dumps(body), event=name, tokens=tokens)

    snapshot = render_response(response_id, created, req, choice, None, status="in_progress")
    yield event("start", "response.created", {"response": snapshot})
    yield event("start", "response.in_progress", {"response": snapshot})
    final = render_response(response_id, created, req, choice, usage)
    items = final["output"]
    for index, item in enumerate(items):
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "message":
            part = item["content"][0]
            opening = {**item, "status": "in_progress", "content": []}
            yield event("start", "response.output_item.added", {"output_index": index, "item": opening})
            key = "text" if part["type"] == "output_text" else "refusal"
            prefix = "response.output_text" if key == "text" else "response.refusal"
            at: dict[str, Any] = {**where, "content_index": 0}
            yield event("start", "response.content_part.added", {**at, "part": {**part, key: ""}})
            extra: dict[str, Any] = {"logprobs": []} if key == "text" else {}
            for piece in split_tokens(part[key]):
                yield event("content", f"{prefix}.delta", {**at, "delta": piece, **extra}, 1)
            yield event("content", f"{prefix}.done", {**at, key: part[key], **extra})
            yield event("content", "response.content_part.done", {**at, "part": part})
        else:
            yield event(
                "start",
                "response.output_item.added",
                {"output_index": index, "item": {**item, "status": "in_progress", "arguments": ""}},
            )
            for piece in split_tokens(item["arguments"]):
                yield event("content", "response.function_call_arguments.delta", {**where, "delta": piece}, 1)
            yield event(
                "content",
                "response.function_call_arguments.done",
                {**where, "arguments": item["arguments"], "name": item["name"]},
            )
        yield event("content", "response.output_item.done", {"output_index": index, "item": item})
    last = "response.completed" if final["status"] == "completed" else "response.incomplete"
    yield event("done", last, {"response": final})
