"""The classic research pipeline: decompose a question with a fast model, research the parts in
parallel with a mid-tier model, synthesize with the best. Runs offline against the mock (scripted
answers), with the research model failing on purpose once so its stage's fallback shows.

    python -m examples.patterns.research_pipeline

The same pipeline in the router's YAML (``patterns:``) is served by ``turnout serve`` as the model
name ``research``::

    patterns:
      research:
        pipeline:
          stages:
            - {name: decompose, route: fast, template: "List the sub-questions of: {input}"}
            - {name: research, route: mid, fallback: [fast], foreach: decompose,
               template: "Research briefly: {item}"}
            - {name: synthesize, route: best,
               template: "Question: {input}\\nResearch notes:\\n{stages.research}\\nWrite the answer."}
"""

from __future__ import annotations

import asyncio

from examples.patterns._offline import offline, say, show_audit
from router.patterns import Pipeline
from router.types import ChatRequest, Message

PATTERNS = {
    "research": {
        "pipeline": {
            "stages": [
                {"name": "decompose", "route": "fast", "template": "List the sub-questions of: {input}"},
                {
                    "name": "research",
                    "route": "mid",
                    "fallback": ["fast"],
                    "foreach": "decompose",
                    "template": "Research briefly: {item}",
                },
                {
                    "name": "synthesize",
                    "route": "best",
                    "template": "Question: {input}\nResearch notes:\n{stages.research}\nWrite the answer.",
                },
            ]
        }
    }
}
ANSWERS = [
    say(
        "A turnout (Fox, 1832) switches a train between tracks: a point machine moves and locks the rails.",
        model="claude-sonnet-4-5",
    ),
    say(
        "1. What is a railway turnout?\n2. How does a turnout move the points?\n3. Who invented the turnout?",
        contains="List the sub-questions",
    ),
    say("A turnout lets a train pass from one track to another.", contains="What is a railway turnout"),
    say("A point machine moves the switch rails, locked in place.", contains="move the points"),
    say("Charles Fox patented the switch in 1832.", contains="Who invented"),
]
# The research model's first request fails (503): that one item is served by the stage's fallback.
FAULTS = [
    {
        "name": "mistral-blip",
        "fault": "server_error",
        "params": {"status": 503},
        "match": {"provider": "mistral"},
        "when": {"first": 1},
    }
]


async def main() -> int:
    async with offline(ANSWERS, FAULTS, patterns=PATTERNS) as (router, log):
        config = router.config.patterns["research"].pipeline
        assert config is not None
        pipeline = Pipeline.from_config(router, config, name="research")
        result = await pipeline.run("How do railway turnouts work?")
        print(f"answer: {result.output}\n")
        for s in result.stages:
            print(f"[{s.name}]\n{s.output}\n")
        print(f"{'stage':<12}{'calls':>6}{'fallbacks':>10}  {'models':<22}{'cost':>12}")
        for s in result.stages:
            cost = f"${s.cost_usd:.6f}" if s.cost_usd is not None else "-"
            print(
                f"{s.name:<12}{s.calls:>6}{s.fallbacks:>10}  {','.join(sorted(set(s.models))):<22}{cost:>12}"
            )
        print(f"total ${result.cost_usd or 0:.6f}, {result.latency_s:.3f}s")
        record = log.last()
        assert record is not None
        show_audit(record)

        # The same pipeline by its model name, as the sidecar serves it.
        answer = await router.complete(ChatRequest("research", [Message("user", "How do turnouts work?")]))
        print(f"\nrouter.complete(model='research') → {answer.model}: {answer.content[:60]}...")
    return 0


if __name__ == "__main__":
    raise SystemExit(asyncio.run(main()))
