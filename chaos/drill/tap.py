"""Taps on the mock's interceptor chain: what each upstream request was, what was done to it.

Every drill prompt carries a tag (``(turnout-drill #17)``) that the router passes upstream as
part of the message text, so the mock's view of a request can be joined to the drill request it
belongs to, whatever the provider.

:meth:`Tap.outer` goes first in the mock's interceptor chain, before the chaos engine, so it sees
every request as the client does: the fault annotations, the status, a dropped connection, a
429's retry-after, the answer text actually sent (after any stream fault) and whether a stream's
terminator was sent (for OpenAI-style streams: a finish reason and a clean end of the body). A
success the router reports must carry exactly that text, terminated (after the text the request
asked the provider to continue, when it was a continuation).
"""

from __future__ import annotations

import asyncio
import json
import re
import time
from collections.abc import AsyncIterator, Callable
from typing import Any

from chaos.drill.record import Upstream
from mockproviders.types import AbortConnection, Handler, MockRequest, MockResponse, StreamEvent

TAG = "turnout-drill #{}"
_TAG_RE = re.compile(rb"turnout-drill #(\d+)")
_CHAT = frozenset({"chat", "messages"})
_ENDS_ON_FINISH = frozenset({"openai", "mistral"})


def tag_prompt(prompt: str, drill_id: int) -> str:
    """The prompt as sent: its text with the drill request's tag."""
    return f"{prompt} ({TAG.format(drill_id)})"


def _retry_after(headers: dict[str, str]) -> float | None:
    lower = {k.lower(): v for k, v in headers.items()}
    for name, scale in (("retry-after-ms", 0.001), ("retry-after", 1.0)):
        value = lower.get(name)
        if value is not None:
            try:
                return float(value) * scale
            except ValueError:
                continue
    return None


def body_text(provider: str, body: bytes | None) -> str | None:
    """The answer text of a non-streamed chat body, or None if it has none."""
    try:
        data = json.loads(body or b"")
    except ValueError:
        return None
    if not isinstance(data, dict):
        return None
    if provider == "anthropic":
        blocks = data.get("content")
        if not isinstance(blocks, list):
            return None
        return "".join(b.get("text", "") for b in blocks if isinstance(b, dict) and b.get("type") == "text")
    choices = data.get("choices")
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return None
    message = choices[0].get("message")
    content = message.get("content") if isinstance(message, dict) else None
    return content if isinstance(content, str) else ""


def event_text(provider: str, event: StreamEvent) -> str:
    """The answer text one streamed content event carries."""
    if event.kind != "content":
        return ""
    try:
        data: Any = json.loads(event.data)
    except ValueError:
        return ""
    if provider == "anthropic":
        delta = data.get("delta") if isinstance(data, dict) else None
        text = delta.get("text") if isinstance(delta, dict) else None
        return text if isinstance(text, str) else ""
    choices = data.get("choices") if isinstance(data, dict) else None
    if not isinstance(choices, list) or not choices or not isinstance(choices[0], dict):
        return ""
    delta = choices[0].get("delta")
    text = delta.get("content") if isinstance(delta, dict) else None
    return text if isinstance(text, str) else ""


def prefill_text(provider: str, body: Any) -> str | None:
    """The assistant text a chat request asks to continue (WIRE.md "Continuing a cut answer"),
    or None: Anthropic's trailing assistant message, Mistral's ``prefix: true`` one, an
    OpenAI-compatible server's with ``continue_final_message``."""
    messages = body.get("messages") if isinstance(body, dict) else None
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        return None
    last = messages[-1]
    if last.get("role") != "assistant":
        return None
    if provider == "mistral" and last.get("prefix") is not True:
        return None
    if provider == "openai" and body.get("continue_final_message") is not True:
        return None
    content = last.get("content")
    if isinstance(content, list):
        return "".join(b.get("text", "") for b in content if isinstance(b, dict))
    return content if isinstance(content, str) else None


class Tap:
    """Collects one :class:`Upstream` per chat request the mock receives."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.t0 = clock()
        self.records: list[Upstream] = []

    def start(self, t0: float) -> None:
        """Set time zero (the drill's start) and forget what came before."""
        self.t0 = t0
        self.records.clear()

    def _now(self) -> float:
        return self.clock() - self.t0

    async def outer(self, request: MockRequest, call_next: Handler) -> MockResponse:
        if request.endpoint not in _CHAT:
            return await call_next(request)
        m = _TAG_RE.search(request.body)
        up = Upstream(
            drill_id=int(m.group(1)) if m else None,
            t=self._now(),
            provider=request.provider,
            model=request.model,
            stream=request.stream,
            prefill=prefill_text(request.provider, request.json),
        )
        self.records.append(up)
        try:
            response = await call_next(request)
        except AbortConnection as exc:
            up.aborted, up.t_end = exc.mode, self._now()
            raise
        except asyncio.CancelledError:  # the client went away while a fault held the answer back
            up.aborted, up.t_end = "abandoned", self._now()
            raise
        finally:
            up.fault = request.annotations.get("fault")
            up.fault_kind = request.annotations.get("fault_kind")
        up.status = response.status
        if response.status == 429:
            up.retry_after = _retry_after(response.headers)
        if response.stream is None:
            up.t_end = self._now()
            if response.status == 200:
                up.delivered = body_text(request.provider, response.body)
        else:
            up.terminated, up.delivered = False, ""
            response.stream = self._watch(response.stream, up)
        return response

    async def _watch(self, events: AsyncIterator[StreamEvent], up: Upstream) -> AsyncIterator[StreamEvent]:
        finished = False
        try:
            async for event in events:
                if event.kind == "done":
                    up.terminated = True
                elif event.kind == "content":
                    up.delivered = (up.delivered or "") + event_text(up.provider, event)
                elif event.kind == "finish":
                    finished = True
                yield event
            # An OpenAI-style stream is complete once its finish reason is sent and its body ends
            # cleanly, [DONE] or not (some compatible servers omit it); Anthropic's needs message_stop.
            if finished and up.provider in _ENDS_ON_FINISH:
                up.terminated = True
        except AbortConnection as exc:
            up.aborted = exc.mode
            raise
        finally:
            up.t_end = self._now()
