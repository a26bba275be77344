"""Groq, the fourth hosted kind: one module (router/adapters/groq.py) and one registry row.

End to end against a small Groq-like server on loopback: ``kind: groq`` loads from YAML, the
router posts to ``{base_url}/chat/completions`` with Groq's output-limit field, its 429s are held
by reading Groq's headers (a reset of ``2m59.56s``), and cost comes from genai-prices under the
provider id ``groq`` (or from configured prices for a model genai-prices does not know).
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web
from genai_prices import Usage as GUsage
from genai_prices import calc_price
from router_wire_helpers import dep

from router import Router
from router import errors as E
from router.adapters import CODECS, PROVIDERS, make_deployment
from router.clock import FakeClock
from router.config import load_config
from router.headers import RateLimitSnapshot
from router.types import ChatRequest, Message, StreamEnd, TextDelta

BIG, SMALL = "llama-3.3-70b-versatile", "llama-3.1-8b-instant"

# Groq's documented example (console.groq.com/docs/rate-limits): the requests counters are the
# day's (RPD), the tokens counters the minute's (TPM).
GROQ_HEADERS = {
    "x-ratelimit-limit-requests": "14400",
    "x-ratelimit-limit-tokens": "18000",
    "x-ratelimit-remaining-requests": "14370",
    "x-ratelimit-remaining-tokens": "17997",
    "x-ratelimit-reset-requests": "2m59.56s",
    "x-ratelimit-reset-tokens": "7.66s",
}


def test_groq_is_one_registered_kind_with_its_own_facts() -> None:
    groq = PROVIDERS["groq"]
    assert (groq.kind, groq.price_id, groq.batch, groq.marks_cache, groq.may_continue) == (
        "groq", "groq", "openai", False, False,
    )  # fmt: skip
    d = make_deployment(
        "g",
        provider="groq",
        kind="groq",
        model=BIG,
        base_url="https://api.groq.com/openai/v1/",
        api_key="gsk-1",
    )
    assert d.chat_url == "https://api.groq.com/openai/v1/chat/completions"
    assert d.headers["authorization"] == "Bearer gsk-1"
    assert not d.continuation


def test_groq_sends_max_completion_tokens_and_never_continues() -> None:
    req = ChatRequest("r", [Message("user", "hi")], max_tokens=64, prefill="So far")
    body = CODECS["groq"].to_wire(req, dep("groq"))
    assert body["max_completion_tokens"] == 64 and "max_tokens" not in body
    assert body["messages"][-1] == {"role": "assistant", "content": "So far"}
    assert "continue_final_message" not in body


def test_groq_rate_limit_headers() -> None:
    snap = PROVIDERS["groq"].ratelimits.parse(GROQ_HEADERS, 0.0)
    assert snap == RateLimitSnapshot(
        remaining_requests=14370,
        remaining_tokens=17997,
        limit_requests=14400,
        limit_tokens=18000,
        reset_requests_s=pytest.approx(179.56),  # type: ignore[arg-type]
        reset_tokens_s=pytest.approx(7.66),  # type: ignore[arg-type]
    )
    assert not PROVIDERS["groq"].ratelimits.exhausted(GROQ_HEADERS)
    assert PROVIDERS["groq"].ratelimits.exhausted({**GROQ_HEADERS, "x-ratelimit-remaining-requests": "0"})


# --- end to end ------------------------------------------------------------------------------------


@dataclass
class GroqLike:
    """A Groq-shaped chat endpoint: OpenAI's body plus Groq's headers; 429s for ``limited`` models."""

    limited: set[str] = field(default_factory=set)
    seen: list[tuple[str, dict[str, str], dict[str, Any]]] = field(default_factory=list)

    async def chat(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        self.seen.append((request.path, dict(request.headers), body))
        model = body["model"]
        if model in self.limited:
            error = {
                "message": f"Rate limit reached for model `{model}` on requests per day (RPD): "
                "Limit 14400, Used 14400, Requested 1. Please try again in 2m59.56s.",
                "type": "requests",
                "code": "rate_limit_exceeded",
            }
            headers = {**GROQ_HEADERS, "x-ratelimit-remaining-requests": "0", "retry-after": "2"}
            return web.json_response({"error": error}, status=429, headers=headers)
        usage = {"prompt_tokens": 12, "completion_tokens": 3, "total_tokens": 15}
        if body.get("stream"):
            resp = web.StreamResponse(headers={**GROQ_HEADERS, "content-type": "text/event-stream"})
            await resp.prepare(request)
            for chunk in (
                {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
                {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
                {"choices": [], "usage": usage},
            ):
                frame = {"id": "chatcmpl-g", "object": "chat.completion.chunk", "model": model, **chunk}
                await resp.write(f"data: {json.dumps(frame)}\n\n".encode())
            await resp.write(b"data: [DONE]\n\n")
            return resp
        answer = {
            "id": "chatcmpl-g",
            "object": "chat.completion",
            "created": 1_700_000_000,
            "model": model,
            "choices": [
                {"index": 0, "message": {"role": "assistant", "content": "Hello"}, "finish_reason": "stop"}
            ],
            "usage": usage,
            "x_groq": {"id": "req_01"},
        }
        return web.json_response(answer, headers=GROQ_HEADERS)


@asynccontextmanager
async def groq_server(fake: GroqLike) -> AsyncIterator[str]:
    app = web.Application()
    app.router.add_post("/openai/v1/chat/completions", fake.chat)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        yield f"http://127.0.0.1:{port}/openai/v1"
    finally:
        await runner.cleanup()


CONFIG = """
providers:
  groq: {kind: groq, base_url: BASE, api_key: gsk-test}
models:
  big:      {provider: groq, model: llama-3.3-70b-versatile}
  small:    {provider: groq, model: llama-3.1-8b-instant, max_tokens: 64}
  newest:   {provider: groq, model: not-in-genai-prices-yet}
  newest-priced: {provider: groq, model: not-in-genai-prices-yet, prices: {input: 0.5, output: 1.5}}
routes:
  chat: {chain: [big, small]}
defaults:
  retries: 0
  retry_after_cap: 300s
"""


async def test_groq_end_to_end(tmp_path: Path) -> None:
    fake = GroqLike(limited={BIG})
    async with groq_server(fake) as base:
        path = tmp_path / "router.yaml"
        path.write_text(CONFIG.replace("BASE", base))
        cfg = load_config(path)
        assert cfg.providers["groq"].kind == "groq"
        router = Router(cfg, clock=FakeClock())
        try:
            # big answers 429 with Groq's headers: the request falls back to small
            answer = await router.complete(ChatRequest("chat", [Message("user", "hi")]))
            assert (answer.content, answer.model) == ("Hello", "small")
            (p1, h1, b1), (p2, _, b2) = fake.seen
            assert p1 == p2 == "/openai/v1/chat/completions"
            assert h1["Authorization"] == "Bearer gsk-test"
            assert (b1["model"], b2["model"]) == (BIG, SMALL)
            assert b2["max_completion_tokens"] == 64 and "max_tokens" not in b2
            # the 429's "0 requests remaining" holds big until Groq's reset, 2m59.56s
            assert router.deployment("big").limiter.blocked_for() == pytest.approx(179.56)
            assert router.deployment("small").limiter.blocked_for() == 0.0
            # so the next request skips big without calling it
            await router.complete(ChatRequest("chat", [Message("user", "again")]))
            assert [b["model"] for _, _, b in fake.seen[2:]] == [SMALL]
            # cost: genai-prices under the provider id "groq"
            expected = calc_price(GUsage(input_tokens=12, output_tokens=3), SMALL, provider_id="groq")
            assert answer.cost_usd == pytest.approx(float(expected.total_price))
            assert answer.cost_usd is not None and answer.cost_usd > 0
            # a model genai-prices does not know: no price, unless the config gives one
            usage = answer.usage
            assert router.price("newest", usage) is None
            assert router.price("newest-priced", usage) == pytest.approx((12 * 0.5 + 3 * 1.5) / 1e6)
            # streaming is OpenAI's SSE, usage chunk included
            events = [e async for e in router.stream(ChatRequest("small", [Message("user", "s")]))]
            text = "".join(e.text for e in events if isinstance(e, TextDelta))
            end = events[-1]
            assert text == "Hello" and isinstance(end, StreamEnd) and end.response.usage.output_tokens == 3
        finally:
            await router.aclose()


async def test_groq_429_alone_is_a_rate_limit_error_with_its_retry_after(tmp_path: Path) -> None:
    fake = GroqLike(limited={BIG})
    async with groq_server(fake) as base:
        path = tmp_path / "router.yaml"
        path.write_text(CONFIG.replace("BASE", base))
        router = Router(load_config(path), clock=FakeClock())
        try:
            with pytest.raises(E.RouterError) as info:
                await router.complete(ChatRequest("big", [Message("user", "hi")]))
            root = info.value.errors[0] if isinstance(info.value, E.AllAttemptsFailed) else info.value
            assert isinstance(root, E.RateLimited) and root.retry_after == 2.0 and root.status == 429
        finally:
            await router.aclose()
