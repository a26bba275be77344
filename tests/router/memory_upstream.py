"""Provider replies for :class:`router.transport.MemoryTransport`, and a router on a fake clock.

The replies are what the providers send on the wire (as the mock providers do), so tests that use
them go through the real adapters, codecs, SSE parser and limits, with no socket and no real time.
"""

from __future__ import annotations

from typing import Any

from router import Router, parse_config
from router.audit import AuditLog
from router.clock import FakeClock
from router.transport import MemoryTransport, Pause, Reply
from router.types import ChatRequest, Message

OPENAI = "http://openai.test/v1"
ANTHROPIC = "http://anthropic.test/v1"


def openai_json(text: str = "fine", model: str = "gpt-4o-mini") -> Reply:
    return Reply.json(
        {
            "id": "c1",
            "object": "chat.completion",
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}
            ],
            "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
        }
    )


def openai_chunk(text: str | None = None, finish: str | None = None) -> dict[str, Any]:
    delta = {"content": text} if text is not None else {}
    return {
        "id": "c1",
        "object": "chat.completion.chunk",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "delta": delta, "finish_reason": finish}],
    }


def openai_sse(*pieces: str | Pause, done: bool = True, **kw: Any) -> Reply:
    """A stream of text pieces (a :class:`Pause` between them waits), then the end."""
    items: list[Any] = [p if isinstance(p, Pause) else openai_chunk(p) for p in pieces]
    if done:
        items += [openai_chunk(finish="stop"), "[DONE]"]
    return Reply.sse(*items, **kw)


def anthropic_json(text: str = "fine") -> Reply:
    return Reply.json(
        {
            "id": "m1",
            "type": "message",
            "role": "assistant",
            "model": "claude-x",
            "content": [{"type": "text", "text": text}],
            "stop_reason": "end_turn",
            "usage": {"input_tokens": 3, "output_tokens": 1},
        }
    )


def anthropic_sse(*pieces: str | Pause, **kw: Any) -> Reply:
    items: list[Any] = [
        (
            "message_start",
            {"type": "message_start", "message": {"model": "claude-x", "usage": {"input_tokens": 3}}},
        ),
        (
            "content_block_start",
            {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}},
        ),
    ]
    for p in pieces:
        items.append(
            p
            if isinstance(p, Pause)
            else (
                "content_block_delta",
                {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": p}},
            )
        )
    items += [
        (
            "message_delta",
            {"type": "message_delta", "delta": {"stop_reason": "end_turn"}, "usage": {"output_tokens": 2}},
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
    return Reply.sse(*items, **kw)


def config(chain: tuple[str, ...] = ("gpt", "claude"), *, continuation: bool = False, **defaults: Any) -> Any:
    """Two providers on the in-memory transport's URLs; Claude continues cut streams only when
    ``continuation`` says so (otherwise a stall is the caller's to see)."""
    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": OPENAI, "api_key": "sk-test"},
                "anthropic": {"kind": "anthropic", "base_url": ANTHROPIC, "api_key": "sk-ant-test"},
            },
            "models": {
                "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
                "claude": {
                    "provider": "anthropic",
                    "model": "claude-sonnet-4-5",
                    "max_tokens": 256,
                    "continuation": continuation,
                },
            },
            "routes": {"main": {"chain": list(chain)}},
            "defaults": {
                "retries": 0,
                "timeouts": {
                    "total": "60s",
                    "connect": "1s",
                    "read": "10s",
                    "first_token": "2s",
                    "idle": "3s",
                },
                **defaults,
            },
        }
    )


class Upstream:
    """A router over a MemoryTransport, both on one FakeClock."""

    def __init__(self, chain: tuple[str, ...] = ("gpt", "claude"), **defaults: Any) -> None:
        self.clock = FakeClock()
        self.transport = MemoryTransport(clock=self.clock)
        self.log = AuditLog()
        self.router = Router(
            config(chain, **defaults), clock=self.clock, transport=self.transport, listeners=[self.log]
        )

    def attempts(self) -> list[tuple[str, str, str | None]]:
        rec = self.log.last()
        assert rec is not None
        return [(a.model, a.outcome, a.error_kind) for a in rec.attempts]


def ask(model: str = "main", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", "Say something about trains.")], **kw)
