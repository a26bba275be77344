"""Provider-neutral answers: what the mock says, before a provider module renders it.

A provider module parses its request into a :class:`ChatQuery`; :func:`compose` picks the
answer (a scripted rule, else a tool call when tools are offered, else JSON when a response
format asks for it (:mod:`mockproviders.structured`), else deterministic text),
applies ``max_tokens`` and stop sequences, then a fault layer's :class:`AnswerPatch`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from typing import Any

from mockproviders.config import MockConfig, ScriptedAnswer
from mockproviders.prompt_cache import Prompt
from mockproviders.structured import ResponseFormat, structured_text, value_for_schema
from mockproviders.tokens import (
    MESSAGE_OVERHEAD,
    REPLY_PRIMING,
    count_tokens,
    generate_text,
    split_tokens,
    stable_hash,
)
from mockproviders.types import AnswerPatch


@dataclass(slots=True)
class ChatQuery:
    """A chat request reduced to what decides the answer."""

    model: str
    messages: list[tuple[str, str]]  # (role, text), system prompt included
    last_is_tool_result: bool = False
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    n: int = 1
    tools: list[tuple[str, Any]] = field(default_factory=list)  # (name, JSON schema)
    tool_choice: str | None = None  # "auto", "none", "required"/"any", or a tool's name
    stream: bool = False
    include_usage: bool = False
    seed: Any = None  # the request's own seed parameter, if any
    prompt: Prompt | None = None  # Anthropic: the prompt's blocks, which count tokens and cache
    response_format: ResponseFormat | None = None  # structured outputs: the answer is JSON
    # A trailing assistant message the provider continues (Anthropic's prefill, Mistral's
    # `prefix: true`); not in ``messages``, so the answer is the one the conversation gets.
    prefill: str | None = None

    @property
    def last_text(self) -> str:
        return self.messages[-1][1] if self.messages else ""

    @property
    def prompt_tokens(self) -> int:
        if self.prompt is not None:
            return self.prompt.input_tokens
        n = sum(count_tokens(text) + MESSAGE_OVERHEAD for _, text in self.messages) + REPLY_PRIMING
        return n if self.prefill is None else n + count_tokens(self.prefill) + MESSAGE_OVERHEAD


@dataclass(slots=True)
class ToolCallOut:
    id: str  # hex digits; each provider adds its own prefix
    name: str
    arguments: str  # raw JSON text (not necessarily valid, if a fault says so)


@dataclass(slots=True)
class Choice:
    """One answer. ``finish`` is neutral (stop, length, tool_calls, content_filter, refusal) or a
    provider's own finish reason passed through."""

    index: int
    text: str | None
    tool_calls: list[ToolCallOut] = field(default_factory=list)
    refusal: str | None = None
    finish: str = "stop"
    stop_sequence: str | None = None

    @property
    def completion_tokens(self) -> int:
        return (
            count_tokens(self.text or "")
            + count_tokens(self.refusal or "")
            + sum(count_tokens(t.arguments) + count_tokens(t.name) for t in self.tool_calls)
        )


def _matches(rule_match: Any, provider: str, query: ChatQuery) -> bool:
    m = rule_match
    if m.provider is not None and m.provider != provider:
        return False
    if m.model is not None and m.model != query.model:
        return False
    last = query.last_text
    if m.last_message is not None and m.last_message != last:
        return False
    if m.contains is not None and m.contains.lower() not in last.lower():
        return False
    return not (m.pattern is not None and re.search(m.pattern, last) is None)


def _scripted(config: MockConfig, provider: str, query: ChatQuery) -> ScriptedAnswer | None:
    for rule in config.rules:
        if _matches(rule.match, provider, query):
            return rule.answer
    return config.default


def _from_script(script: ScriptedAnswer, index: int, key: int) -> Choice:
    calls = [
        ToolCallOut(
            id=f"{stable_hash(key, 'tool', i):016x}",
            name=tc.name,
            arguments=tc.arguments if isinstance(tc.arguments, str) else json.dumps(tc.arguments),
        )
        for i, tc in enumerate(script.tool_calls)
    ]
    if script.refusal is not None:
        finish = script.finish_reason or "refusal"
    else:
        finish = script.finish_reason or ("tool_calls" if calls else "stop")
    text = script.text if script.text is not None or calls or script.refusal is not None else ""
    return Choice(index=index, text=text, tool_calls=calls, refusal=script.refusal, finish=finish)


def _wants_tool(query: ChatQuery) -> str | None:
    if not query.tools or query.tool_choice == "none":
        return None
    names = [name for name, _ in query.tools]
    if query.tool_choice in names:
        return query.tool_choice
    if query.tool_choice in ("required", "any"):
        return names[0]
    # "auto": call the first tool, then answer in words once its result comes back.
    return None if query.last_is_tool_result else names[0]


def _truncate(choice: Choice, query: ChatQuery) -> None:
    if choice.text and query.stop:
        cut = min(
            ((pos, s) for s in query.stop if s and (pos := choice.text.find(s)) >= 0),
            default=None,
        )
        if cut is not None:
            choice.text = choice.text[: cut[0]]
            choice.stop_sequence = cut[1]
            choice.finish = "stop"
    if query.max_tokens is not None and choice.text:
        pieces = split_tokens(choice.text)
        if len(pieces) > query.max_tokens:
            choice.text = "".join(pieces[: query.max_tokens])
            choice.finish = "length"
            choice.stop_sequence = None


def _continue(choice: Choice, prefill: str, key: int) -> None:
    """Continue ``prefill``: the answer's remainder when the prefill is its beginning (a cut
    answer being continued, so prefill + remainder is the whole answer); else fresh text after it."""
    text = choice.text
    if text is None:  # a tool call: nothing to continue, answered as it is
        return
    if text.startswith(prefill):
        choice.text = text[len(prefill) :]
    else:
        choice.text = " " + generate_text(stable_hash(key, "continue", prefill))


def apply_patch(choice: Choice, patch: AnswerPatch) -> None:
    """Apply a fault layer's changes to a composed answer."""
    if patch.content is not None:
        choice.text = patch.content
        choice.refusal = None
    if patch.tool_arguments is not None:
        for call in choice.tool_calls:
            call.arguments = patch.tool_arguments
    if patch.finish_reason is not None:
        choice.finish = patch.finish_reason
        choice.stop_sequence = None


def compose(
    config: MockConfig, seed: int, provider: str, query: ChatQuery, patch: AnswerPatch | None = None
) -> list[Choice]:
    """The ``query.n`` answers for ``query``, deterministic for (seed, provider, model, messages)."""
    script = _scripted(config, provider, query)
    base = stable_hash(seed, provider, query.model, query.messages, query.seed)
    choices = []
    for i in range(max(1, query.n)):
        key = stable_hash(base, i)
        if script is not None:
            choice = _from_script(script, i, key)
        elif (tool := _wants_tool(query)) is not None:
            schema = next(s for name, s in query.tools if name == tool)
            arguments = json.dumps(value_for_schema(key, schema))
            call = ToolCallOut(id=f"{stable_hash(key, 'tool'):016x}", name=tool, arguments=arguments)
            choice = Choice(index=i, text=None, tool_calls=[call], finish="tool_calls")
        elif query.response_format is not None:
            choice = Choice(index=i, text=structured_text(key, query.response_format))
        else:
            choice = Choice(index=i, text=generate_text(key))
        _truncate(choice, query)
        if query.prefill is not None:
            _continue(choice, query.prefill, key)
        if patch is not None:
            apply_patch(choice, patch)
        choices.append(choice)
    return choices
