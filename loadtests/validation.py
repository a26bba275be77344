"""What makes an OpenAI chat completion "complete and well-formed", checked on the load generator.

Every check returns problems as short strings (the first one becomes the Locust failure message,
so they avoid per-request details such as ids: Locust groups failures by message). An empty list
means the response is good.

- :func:`check_completion` judges a non-streamed ``chat.completion`` body.
- :class:`StreamCheck` follows a streamed answer event by event and judges it at the end.
- :func:`routing_from_headers` reads the sidecar's ``x-turnout-*`` headers, which tell whether the
  request was served by a fallback model.

Pure Python, no Locust.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from turnout.sse import SSEEvent

__all__ = [
    "Routing",
    "StreamCheck",
    "check_completion",
    "check_completion_bytes",
    "error_summary",
    "routing_from_headers",
]

_USAGE_FIELDS = ("prompt_tokens", "completion_tokens")


def error_summary(body: Any) -> str:
    """A short, stable label for an OpenAI-style error body: ``type/code``, else the message.

    Messages often carry per-request details (ids, "retry in 0.74s"); Locust groups failures by
    their text, so the type and code are preferred to keep one row per cause.
    """
    err = body.get("error") if isinstance(body, Mapping) else None
    if isinstance(err, Mapping):
        kind = "/".join(str(err[k]) for k in ("type", "code") if err.get(k))
        return kind or str(err.get("message") or "")[:80] or "error"
    if isinstance(err, str):
        return err[:80]
    return "error"


def _check_model_and_usage(body: Mapping[str, Any], problems: list[str], *, require_usage: bool) -> None:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        problems.append("missing model")
    if not require_usage:
        return
    usage = body.get("usage")
    if not isinstance(usage, Mapping):
        problems.append("missing usage")
        return
    for name in _USAGE_FIELDS:
        value = usage.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            problems.append(f"usage.{name} is not a non-negative integer")


def check_completion(body: Any, *, require_usage: bool = True, require_content: bool = False) -> list[str]:
    """Problems with a parsed non-streamed chat completion body (empty when it is good)."""
    if not isinstance(body, Mapping):
        return [f"body is a JSON {type(body).__name__}, not an object"]
    if "error" in body:
        return [f"error body: {error_summary(body)}"]
    problems: list[str] = []
    obj = body.get("object")
    if obj is not None and obj != "chat.completion":
        problems.append(f"object is {obj!r}, not 'chat.completion'")
    choices = body.get("choices")
    if not isinstance(choices, list) or not choices:
        problems.append("empty choices")
    else:
        for index, choice in enumerate(choices):
            problems.extend(_check_choice(index, choice, require_content=require_content))
    _check_model_and_usage(body, problems, require_usage=require_usage)
    return problems


def _check_choice(index: int, choice: Any, *, require_content: bool) -> list[str]:
    if not isinstance(choice, Mapping):
        return [f"choices[{index}] is not an object"]
    problems: list[str] = []
    message = choice.get("message")
    if not isinstance(message, Mapping):
        problems.append(f"choices[{index}].message is missing")
    else:
        content = message.get("content")
        if content is not None and not isinstance(content, str):
            problems.append(f"choices[{index}].message.content is not a string")
        if require_content and not content and not message.get("tool_calls"):
            problems.append(f"choices[{index}] has no content")
    if not choice.get("finish_reason"):
        problems.append(f"choices[{index}].finish_reason is missing")
    return problems


def check_completion_bytes(
    raw: bytes, *, require_usage: bool = True, require_content: bool = False
) -> tuple[Any, list[str]]:
    """Parse ``raw`` as JSON and check it; a body that is not JSON is one problem."""
    try:
        body = json.loads(raw)
    except ValueError as exc:  # JSONDecodeError and UnicodeDecodeError
        return None, [f"body is not JSON: {type(exc).__name__}"]
    return body, check_completion(body, require_usage=require_usage, require_content=require_content)


@dataclass(slots=True)
class StreamCheck:
    """Follows one streamed chat completion; feed it every event, then call :meth:`finish`.

    :meth:`on_event` returns True when the event carried answer text or tool-call arguments, so
    the caller can time the first token and the gaps between chunks.
    """

    require_usage: bool = True
    require_content: bool = False
    chunks: int = 0
    content_chunks: int = 0
    done: bool = False
    model: str | None = None
    usage: Mapping[str, Any] | None = None
    finish_reason: str | None = None
    saw_choices: bool = False
    problems: list[str] = field(default_factory=list)
    _id: str | None = None

    def on_event(self, event: SSEEvent) -> bool:
        if self.done:
            self._problem("event after [DONE]")
            return False
        if event.event == "error":
            self._problem(f"in-band error event: {event.data[:80]}")
            return False
        if event.data.strip() == "[DONE]":
            self.done = True
            return False
        try:
            chunk = json.loads(event.data)
        except ValueError:
            self._problem("malformed event (not JSON)")
            return False
        if not isinstance(chunk, Mapping):
            self._problem("malformed event (not a JSON object)")
            return False
        if "error" in chunk:
            self._problem(f"in-band error: {error_summary(chunk)}")
            return False
        return self._chunk(chunk)

    def _chunk(self, chunk: Mapping[str, Any]) -> bool:
        self.chunks += 1
        obj = chunk.get("object")
        if obj is not None and obj != "chat.completion.chunk":
            self._problem(f"chunk object is {obj!r}, not 'chat.completion.chunk'")
        chunk_id = chunk.get("id")
        if isinstance(chunk_id, str):
            if self._id is None:
                self._id = chunk_id
            elif chunk_id != self._id:
                self._problem("chunk id changed mid-stream")
        model = chunk.get("model")
        if isinstance(model, str) and model:
            self.model = model
        usage = chunk.get("usage")
        if isinstance(usage, Mapping):
            self.usage = usage
        choices = chunk.get("choices")
        if choices is None:
            choices = []
        if not isinstance(choices, list):
            self._problem("chunk choices is not a list")
            return False
        carried = False
        for choice in choices:
            if not isinstance(choice, Mapping):
                self._problem("chunk choice is not an object")
                continue
            self.saw_choices = True
            delta = choice.get("delta")
            if isinstance(delta, Mapping) and (delta.get("content") or delta.get("tool_calls")):
                carried = True
            reason = choice.get("finish_reason")
            if reason:
                self.finish_reason = str(reason)
        if carried:
            self.content_chunks += 1
        return carried

    def _problem(self, text: str) -> None:
        if text not in self.problems:
            self.problems.append(text)

    def finish(self, *, cut_mid_event: bool = False) -> list[str]:
        """All problems of the stream, given that it has ended (``cut_mid_event``: inside an event)."""
        problems = list(self.problems)
        if cut_mid_event:
            problems.append("stream ended mid-event")
        if not self.done:
            problems.append("stream ended without [DONE]")
        if self.chunks == 0:
            problems.append("stream had no chunks")
        else:
            if not self.saw_choices:
                problems.append("empty choices")
            elif self.finish_reason is None:
                problems.append("no finish_reason")
            if self.model is None:
                problems.append("missing model")
            if self.require_usage and self.usage is None:
                problems.append("missing usage")
            elif self.require_usage and self.usage is not None:
                for name in _USAGE_FIELDS:
                    value = self.usage.get(name)
                    if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                        problems.append(f"usage.{name} is not a non-negative integer")
            if self.require_content and self.content_chunks == 0:
                problems.append("stream had no content")
        return problems


@dataclass(frozen=True, slots=True)
class Routing:
    """What the sidecar says about how it served a request (all None from a plain endpoint)."""

    model: str | None = None  # x-turnout-model: the deployment that answered
    provider: str | None = None  # x-turnout-provider
    attempts: int | None = None  # x-turnout-attempts: calls made, retries and fallbacks included
    problem: str | None = None  # a header that is present but malformed

    def fell_back(self, primary_model: str | None) -> bool:
        """True when another model than the route's first one answered.

        With ``primary_model`` known, that is a different ``x-turnout-model``; without it, the best
        evidence is more than one attempt (which also counts a retry on the same model).
        """
        if primary_model and self.model:
            return self.model != primary_model
        return self.attempts is not None and self.attempts > 1

    def retried(self, primary_model: str | None) -> bool:
        """True when the first model answered, but not on its first attempt."""
        return (
            bool(primary_model)
            and self.model == primary_model
            and self.attempts is not None
            and self.attempts > 1
        )


def routing_from_headers(headers: Mapping[str, str]) -> Routing:
    """Read ``x-turnout-model``, ``x-turnout-provider`` and ``x-turnout-attempts`` (any letter case)."""
    lower = {k.lower(): v for k, v in headers.items() if k.lower().startswith("x-turnout-")}
    attempts: int | None = None
    problem: str | None = None
    raw = lower.get("x-turnout-attempts")
    if raw is not None:
        try:
            attempts = int(raw.strip())
        except ValueError:
            attempts = None
        if attempts is None or attempts < 1:
            problem = "x-turnout-attempts is not a positive integer"
            attempts = None
    return Routing(
        model=lower.get("x-turnout-model") or None,
        provider=lower.get("x-turnout-provider") or None,
        attempts=attempts,
        problem=problem,
    )
