"""Batch: eight questions as one OpenAI batch, the two it fails retried through the router.

    python -m examples.patterns.batch_example

Offline: the mock runs in this process on a loopback port. Time is accelerated by the mock's
``batch:`` settings: a batch that would take hours validates in 0.2 s, answers an item every
20 ms and finalizes in 0.2 s, and the runner polls every 0.1 s or so (doubling, with jitter).
The mock fails two items by ``custom_id`` (``batch.fail``); the runner retries them through the
route ``questions`` (gpt-4o-mini, then claude), and the summary says which answer came from where.
"""

from __future__ import annotations

import asyncio
from typing import Any

from mockproviders.config import parse_config as parse_mock_config
from mockproviders.server import MockServer, create_app
from router import ChatRequest, Message, Router, parse_config
from router.batch import BatchItem, BatchResult, BatchRunner, PollPolicy

QUESTIONS = [
    "What is a railway turnout?",
    "Why do batch APIs cost less?",
    "Name a colour.",
    "What does a circuit breaker do?",
    "What is exponential backoff?",
    "Why add jitter to retries?",
    "What is a fallback chain?",
    "Say something kind.",
]

MOCK = {
    "batch": {
        "validating": "200ms",
        "per_item": "20ms",
        "finalizing": "200ms",
        "fail": [{"custom_id": "q2", "status": 500}, {"custom_id": "q5", "status": 503}],
    },
}


def router_config(urls: dict[str, str]) -> dict[str, Any]:
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk-example"},
            "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": "sk-ant-example"},
        },
        "models": {
            "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
            "claude": {"provider": "anthropic", "model": "claude-haiku-4-5", "max_tokens": 256},
        },
        "routes": {"questions": {"chain": ["gpt", "claude"]}},
        "defaults": {"retries": 1, "backoff_base": "10ms", "backoff_max": "50ms"},
    }


async def main() -> BatchResult:
    items = [
        BatchItem(f"q{i}", ChatRequest(model="questions", messages=[Message("user", q)], max_tokens=40))
        for i, q in enumerate(QUESTIONS)
    ]
    async with MockServer(app=create_app(parse_mock_config(MOCK))) as mock:
        router = Router(parse_config(router_config(mock.base_urls)))
        async with router:
            runner = BatchRunner(router, "gpt", poll=PollPolicy(initial=0.1, factor=1.5, max_interval=0.5))
            result = await runner.run(items)
    print(result.summary.format())
    for cid, item in result.items.items():
        answer = item.response.content[:48] if item.response else f"no answer: {item.error}"
        source = f"{item.source} ({item.response.model})" if item.response else "-"
        print(f"  {cid:>3}  {item.batch_outcome:<9} {source:<14} {answer}")
    return result


if __name__ == "__main__":
    asyncio.run(main())
