"""Ensemble: three models classify the same message; a majority vote with normalized labels.

python -m examples.patterns.ensemble
"""

from __future__ import annotations

import asyncio

from examples.patterns._offline import offline, say, show_audit
from router.types import ChatRequest, Message

PATTERNS = {
    "sentiment": {
        "ensemble": {
            "members": ["fast", "mid", "best"],
            "quorum": 2,
            "labels": ["positive", "negative", "neutral"],
        }
    }
}
ANSWERS = [
    say("Positive.", model="gpt-4o-mini"),
    say("Sentiment: NEGATIVE", model="mistral-small-latest"),
    say("positive", model="claude-sonnet-4-5"),
]


async def main() -> int:
    async with offline(ANSWERS, patterns=PATTERNS) as (router, log):
        message = "The new timetable finally gives us a train every ten minutes!"
        answer = await router.complete(ChatRequest("sentiment", [Message("user", message)]))
        print(f"{message}\n→ {answer.content}")
        record = log.last()
        assert record is not None
        show_audit(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
