"""Task routing: one model name, ``smart``, whose rules send each request to the right route.

python -m examples.patterns.routing
"""

from __future__ import annotations

import asyncio

from examples.patterns._offline import offline, say
from router.types import ChatRequest, Message

RULES = {
    "smart": {
        "rules": [
            {"name": "long-input", "when": {"input_tokens_over": 2000}, "route": "long-context"},
            {"name": "code", "when": {"has_code": True}, "route": "coder"},
            {"name": "vip", "when": {"metadata": {"tier": "vip"}}, "route": "premium"},
        ],
        "default": "cheap",
    }
}
ROUTES = {
    "cheap": {"chain": ["fast", "mid"]},
    "coder": {"chain": ["mid", "fast"]},
    "long-context": {"chain": ["best"]},
    "premium": {"chain": ["best", "fast"]},
}


async def main() -> int:
    requests = {
        "a short question": ChatRequest("smart", [Message("user", "What time is the next train?")]),
        "a long document": ChatRequest("smart", [Message("user", "Summarize: " + "timetable row. " * 700)]),
        "a code block": ChatRequest("smart", [Message("user", "Why?\n```python\nprint(1/0)\n```")]),
        "a VIP customer": ChatRequest("smart", [Message("user", "Hello")], metadata={"tier": "vip"}),
    }
    async with offline([say("Routed and answered.")], rules=RULES, routes=ROUTES) as (router, log):
        for label, request in requests.items():
            answer = await router.complete(request)
            record = log.last()
            assert record is not None
            print(f"{label:<18} → {answer.route:<13} {answer.model:<5} {record.decisions[0]}")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
