"""Cascade: a cheap model first, a capable one only when the cheap answer is not valid JSON.

python -m examples.patterns.cascade
"""

from __future__ import annotations

import asyncio

from examples.patterns._offline import offline, say, show_audit
from router.patterns import Cascade, json_valid
from router.types import ChatRequest, Message

ANSWERS = [
    say('{"station": "Basel", "platform": 7}', model="gpt-4o-mini", contains="Basel"),
    say('{"station": "Zurich", platform: 4', model="gpt-4o-mini", contains="Zurich"),  # broken JSON
    say('{"station": "Zurich", "platform": 4}', model="claude-sonnet-4-5"),
]


async def main() -> int:
    async with offline(ANSWERS) as (router, log):
        cascade = Cascade(router, ["fast", "best"], [json_valid()], name="extract")
        for city in ("Basel", "Zurich"):
            ask = ChatRequest(
                "extract", [Message("user", f"Extract station and platform as JSON: {city}, 7")]
            )
            result = await cascade.run(ask)
            s = result.summary
            print(f"\n{city}: {result.response.content}  (answered by {s.winner})")
            for t in s.tiers:
                print(f"  tier {t.tier:<5} {'accepted' if t.accepted else 'escalated'}: {t.reason}")
            print(
                f"  cost ${s.cost_usd or 0:.6f}; always the top tier: ${s.top_tier_cost_usd or 0:.6f}; "
                f"saved ${s.saved_usd or 0:.6f}"
            )
        record = log.last()
        assert record is not None
        show_audit(record)
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
