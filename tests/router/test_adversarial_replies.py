"""Issue 14's broken reply bodies, through the router on the in-memory transport.

A reply that is well-framed HTTP but a broken body (JSON nested 100,000 deep, a token count of
``1e400`` or ``-5``, text that is a number, an SSE line past the parser's cap) must end as a classified router
error that falls back to the next model, never a crash (RecursionError, OverflowError, TypeError).
What breaks the framing itself (a reply past the size cap, a gzip bomb, a cut gzip stream, 1xx
answers, raw deflate) is the HTTP client's business and stays on sockets in
test_adversarial_upstream.py.
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from memory_upstream import ANTHROPIC, OPENAI, Upstream, anthropic_json, anthropic_sse, ask, openai_json

from router import errors as E
from router.transport import Reply
from router.types import StreamEnd

GOOD: dict[str, Any] = {
    "id": "c1",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "fine"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def body(raw: bytes, status: int = 200) -> Reply:
    return Reply(status, {"content-type": "application/json"}, (raw,))


def deep(n: int) -> bytes:
    return b"[" * n + b"]" * n


BROKEN_BODIES = {
    "deep200": deep(100_000),
    "tokens1e400": json.dumps({**GOOD, "usage": {"prompt_tokens": 1, "completion_tokens": 1}})
    .encode()
    .replace(b'"prompt_tokens": 1', b'"prompt_tokens": 1e400'),
    "negative": json.dumps({**GOOD, "usage": {"prompt_tokens": -5, "completion_tokens": 1}}).encode(),
}


@pytest.mark.parametrize("name", sorted(BROKEN_BODIES))
async def test_a_broken_reply_is_malformed_and_falls_back(name: str) -> None:
    up = Upstream()
    up.transport.add(OPENAI, body(BROKEN_BODIES[name]))
    up.transport.add(ANTHROPIC, anthropic_json("fine"))
    resp = await up.router.complete(ask())
    assert resp.model == "claude" and resp.content == "fine"
    with pytest.raises(E.AllAttemptsFailed) as info:
        await up.router.complete(ask("gpt"))
    assert [err.kind for err in info.value.errors] == [E.ErrorKind.MALFORMED], info.value


async def test_anthropic_text_that_is_a_number_is_malformed_and_falls_back() -> None:
    up = Upstream(chain=("claude", "gpt"))
    broken = {
        "id": "m",
        "type": "message",
        "role": "assistant",
        "model": "m",
        "stop_reason": "end_turn",
        "content": [{"type": "text", "text": 123}],
        "usage": {"input_tokens": 1, "output_tokens": 1},
    }
    up.transport.add(ANTHROPIC, Reply.json(broken))
    up.transport.add(OPENAI, openai_json("fine"))
    assert (await up.router.complete(ask())).model == "gpt"
    assert up.attempts() == [("claude", "error", "malformed"), ("gpt", "success", None)]


async def test_a_deep_error_body_is_classified_not_a_crash() -> None:
    up = Upstream()
    up.transport.add(OPENAI, body(deep(100_000), status=400))
    with pytest.raises(E.RouterError) as info:
        await up.router.complete(ask("gpt"))
    assert [err.status for err in getattr(info.value, "errors", [info.value])] == [400]


async def test_a_huge_sse_line_ends_the_attempt_and_falls_back() -> None:
    up = Upstream()
    piece = b"x" * 65536
    huge = Reply.sse(b"data: ", *[piece] * 160)  # 10 MiB of one line: past the parser's 8 MiB cap
    up.transport.add(OPENAI, huge)
    up.transport.add(ANTHROPIC, anthropic_sse("ok"))
    out = [ev async for ev in up.router.stream(ask())]
    end = out[-1]
    assert isinstance(end, StreamEnd) and end.response.model == "claude" and end.response.content == "ok"
    assert up.attempts()[0] == ("gpt", "error", "malformed")
    assert up.transport.responses[0].outcome == "closed"
