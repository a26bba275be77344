"""Task routing, prompt variants and prompt caching, through the planner, against the mock."""

from __future__ import annotations

import pytest
from pattern_rig import answer, ask, fault, rig

from router import ConfigError, parse_config
from router.patterns import Planner, RoutingRules, Rule
from router.types import ChatRequest, Message

RULES = {
    "smart": {
        "rules": [
            {"name": "long-input", "when": {"input_tokens_over": 100}, "route": "long"},
            {"name": "code", "when": {"has_code": True}, "route": "coder"},
            {"name": "vip", "when": {"metadata": {"tier": "vip"}}, "route": "premium"},
            {"name": "chatty", "when": {"turns_over": 2}, "route": "premium"},
            {"name": "summaries", "when": {"task": "summarize"}, "route": "coder"},
        ],
        "default": "cheap",
    }
}
ROUTES = {
    "cheap": {"chain": ["fast"]},
    "long": {"chain": ["big"]},
    "coder": {"chain": ["mid"]},
    "premium": {"chain": ["best"]},
}


def convo(turns: int) -> list[Message]:
    out = []
    for i in range(turns):
        out += [Message("user", f"turn {i}"), Message("assistant", "ok")]
    return out[:-1]


@pytest.mark.parametrize(
    ("request_", "route", "decision"),
    [
        (ask("smart", "x" * 800), "long", "rule long-input fired: 200 tokens > 100 → route long"),
        (ask("smart", "fix:\n```py\nprint(1\n```"), "coder", "rule code fired: a code block → route coder"),
        (ask("smart", "hi", metadata={"tier": "vip"}), "premium", "rule vip fired: tier=vip → route premium"),
        (ChatRequest("smart", convo(3)), "premium", "rule chatty fired: 3 turns > 2 → route premium"),
        (ask("smart", "t", metadata={"task": "summarize"}), "coder", "rule summaries fired: task summarize"),
        (ask("smart", "hi"), "cheap", "rules smart: no rule fired → default route cheap"),
    ],
)
async def test_rules_pick_the_route_and_say_which_rule_fired(
    request_: ChatRequest, route: str, decision: str
) -> None:
    async with rig(rules=RULES, routes=ROUTES) as r:
        resp = await r.router.complete(request_)
        assert resp.route == route
        rec = r.record(route)
        assert rec.decisions[0].startswith(decision)
        assert "smart" in r.router.route_names()


async def test_a_custom_function_rule_from_python() -> None:
    def urgent(req: ChatRequest) -> bool:
        return "urgent" in req.messages[-1].text

    async with rig(routes=ROUTES) as r:
        r.router.use(
            Planner([RoutingRules("triage", [Rule("urgent", route="premium", function=urgent)], "cheap")])
        )
        assert (await r.router.complete(ask("triage", "urgent: the train left"))).model == "best"
        assert r.record("premium").decisions == ["rule urgent fired: urgent() is true → route premium"]
        assert (await r.router.complete(ask("triage", "whenever"))).model == "fast"


def test_rule_config_errors_name_the_field() -> None:
    base = {
        "providers": {"o": {"kind": "openai", "base_url": "http://x"}},
        "models": {"m": {"provider": "o", "model": "gpt-4o-mini"}},
        "routes": {"r": {"chain": ["m"]}},
    }
    bad = {
        **base,
        "rules": {
            "s": {"rules": [{"name": "a", "when": {"has_code": True}, "route": "nope"}], "default": "r"}
        },
    }
    with pytest.raises(ConfigError, match=r"rules\.s\.rules\[0\]\.route: unknown route 'nope'"):
        parse_config(bad)
    clash = {
        **base,
        "rules": {"r": {"rules": [{"name": "a", "when": {"has_code": True}, "route": "m"}], "default": "m"}},
    }
    with pytest.raises(ConfigError, match=r"rules\.r: 'r' is already a route"):
        parse_config(clash)
    empty = {**base, "rules": {"s": {"rules": [{"name": "a", "when": {}, "route": "m"}], "default": "m"}}}
    with pytest.raises(ConfigError, match=r"rules\.s\.rules\.0\.when|rules\.s\.rules\[0\]\.when"):
        parse_config(empty)


PROMPTS = {
    "summarize": {
        "default": {"version": "v1", "template": "Summarize: {input}"},
        "models": {
            "best": {"version": "v3", "template": "<text>{input}</text> Summarize it.", "system": "Be brief."}
        },
    }
}


async def test_prompt_variants_per_model_with_their_version_in_the_audit() -> None:
    answers = [
        answer("claude summary", model="claude-sonnet-4-5", contains="<text>"),
        answer("gpt summary", model="gpt-4o-mini", contains="Summarize: "),
    ]
    routes = {"summarization": {"chain": ["best", "fast"], "prompt": "summarize"}}
    async with rig(answers, prompts=PROMPTS, routes=routes) as r:
        resp = await r.router.complete(ask("summarization", "trains are fast"))
        assert resp.content == "claude summary"  # the mock answers so only to the v3 phrasing
        assert r.record("summarization").decisions == ["prompt variant summarize@v3 for best"]
        # the claude deployment fails: the fallback gets its own phrasing, and the audit says both
        r.engine.add_rule(
            fault("down", "server_error", params={"status": 503}, match={"provider": "anthropic"})
        )
        resp = await r.router.complete(ask("summarization", "trains are fast"))
        assert resp.content == "gpt summary"
        decisions = r.record("summarization").decisions
        assert "prompt variant summarize@v3 for best" in decisions
        assert "prompt variant summarize@v1 for fast" in decisions


async def test_cache_markers_sticky_conversation_and_cache_lost_on_fallback() -> None:
    routes = {
        "chat": {
            "chain": ["best", "fast"],
            "cache": {"sticky": True, "markers": "auto", "min_prefix_tokens": 50},
        }
    }
    # 1100 words: worth a marker, and above the 1024 tokens Anthropic (and the mock) caches at least
    system = "You are a railway expert. " * 220
    req = ChatRequest("chat", [Message("user", "Hi")], system=system, metadata={"conversation": "c-17"})
    async with rig(routes=routes) as r:
        first = await r.router.complete(req)
        assert first.model == "best" and first.usage.cache_write_tokens > 0
        assert any(d.startswith("cache: 1 marker(s) for best") for d in r.record("chat").decisions)
        second = await r.router.complete(req)
        assert second.usage.cached_input_tokens > 0  # the mock's prompt cache served the prefix
        cached = second.usage.cached_input_tokens
        assert (
            f"cache: conversation c-17 stays on best ({first.usage.cache_write_tokens} cached tokens)"
            in r.record("chat").decisions
        )
        # the holder fails: the fallback serves, and the audit trail notes the cache lost
        r.engine.add_rule(
            fault("down", "server_error", params={"status": 503}, match={"provider": "anthropic"})
        )
        third = await r.router.complete(req)
        assert third.model == "fast"
        moved = "cache: conversation c-17 moved best (anthropic) → fast (openai)"
        assert f"{moved}, cache lost ({cached} cached tokens)" in r.record("chat").decisions
        # now the conversation sticks to its new holder, first in the chain
        await r.router.complete(req)
        assert r.record("chat").candidates == ["fast", "best"]
