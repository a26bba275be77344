"""Shared by the examples: the mock in-process with scripted answers, and a router over it.

The three tiers mirror a classic research setup: ``fast`` (gpt-4o-mini), ``mid`` (mistral-small),
``best`` (claude-sonnet-4-5). Prices are the providers' list prices per million tokens.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from chaos import ChaosEngine, Rule
from chaos.mock import attach
from mockproviders.config import parse_config as parse_mock_config
from mockproviders.server import MockServer, create_app
from router import AuditLog, Router, parse_config
from router.types import AuditRecord


def say(text: str, *, model: str | None = None, contains: str | None = None) -> dict[str, Any]:
    """A scripted answer: ``text`` when the model (and the last message) match."""
    match = {k: v for k, v in (("model", model), ("contains", contains)) if v is not None}
    return {"match": match, "answer": {"text": text}}


def router_config(urls: dict[str, str], **sections: Any) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk-example"},
            "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": "sk-ant-example"},
            "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": "example"},
        },
        "models": {
            "fast": {"provider": "openai", "model": "gpt-4o-mini", "prices": {"input": 0.15, "output": 0.6}},
            "mid": {
                "provider": "mistral",
                "model": "mistral-small-latest",
                "prices": {"input": 0.2, "output": 0.6},
            },
            "best": {
                "provider": "anthropic",
                "model": "claude-sonnet-4-5",
                "max_tokens": 512,
                "prices": {"input": 3.0, "output": 15.0},
            },
        },
        "defaults": {"retries": 0, "backoff_base": "1ms", "backoff_max": "2ms"},
        **sections,
    }


@asynccontextmanager
async def offline(
    answers: list[dict[str, Any]], faults: list[dict[str, Any]] | None = None, **sections: Any
) -> AsyncIterator[tuple[Router, AuditLog]]:
    """The mock on a free loopback port, answering as scripted and failing as ``faults`` say
    (chaos rules); a router configured with ``sections``."""
    mock = parse_mock_config({"rules": answers, "default": {"text": "I have nothing scripted for that."}})
    engine = ChaosEngine([Rule.model_validate(f) for f in faults or []])
    app = create_app(mock, seed=0, clock=engine.clock)
    attach(app, engine)
    async with MockServer(app=app) as server:
        log = AuditLog()
        router = Router(parse_config(router_config(server.base_urls, **sections)), listeners=[log])
        try:
            yield router, log
        finally:
            await router.aclose()


def show_audit(record: AuditRecord) -> None:
    cost = f"${record.cost_usd:.6f}" if record.cost_usd is not None else "unpriced"
    print(f"\naudit {record.route}: {record.outcome}, {len(record.attempts)} attempt(s), {cost}")
    for line in record.decisions:
        print(f"  - {line}")
