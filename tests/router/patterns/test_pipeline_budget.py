"""Pipelines (Python and YAML, sequence, fan-out, per-stage fallback) and budgets, against the mock."""

from __future__ import annotations

import re
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pattern_rig import answer, ask, fault, rig

from router import AllAttemptsFailed, BudgetExceeded, ConfigError, parse_config
from router.budget import Budget, Budgets, period_bounds, usd
from router.clock import FakeClock
from router.patterns import Pipeline, Stage
from router.patterns.planner import PlanContext
from router.types import AuditRecord

RESEARCH = {
    "research": {
        "pipeline": {
            "stages": [
                {"name": "decompose", "route": "fast", "template": "Decompose: {input}"},
                {
                    "name": "research",
                    "route": "mid",
                    "fallback": ["fast"],
                    "foreach": "decompose",
                    "template": "Research: {item}",
                },
                {"name": "synthesize", "route": "best", "template": "Q: {input}\nNotes:\n{stages.research}"},
            ]
        }
    }
}
ANSWERS = [
    answer("1. What is a turnout?\n2. Who invented it?\n- Where is it used?", contains="Decompose:"),
    answer("Notes on it.", model="mistral-small-latest", contains="Research:"),
    answer("Fallback notes.", model="gpt-4o-mini", contains="Research:"),
    answer("The synthesis.", model="claude-sonnet-4-5", contains="Notes:"),
]


async def test_research_pipeline_from_yaml_as_a_model_name() -> None:
    async with rig(ANSWERS, patterns=RESEARCH) as r:
        resp = await r.router.complete(ask("research", "Tell me about railway turnouts"))
        assert resp.content == "The synthesis." and resp.route == "research" and resp.model == "best"
        rec = r.record("research")
        assert [a.model for a in rec.attempts] == ["fast", "mid", "mid", "mid", "best"]
        assert "pipeline: stage research fans out over 3 item(s) of decompose" in rec.decisions
        assert resp.cost_usd == pytest.approx(rec.cost_usd)


async def test_a_stage_primary_fails_and_its_fallback_chain_serves() -> None:
    down = fault("down", "server_error", params={"status": 503}, match={"provider": "mistral"})
    async with rig(ANSWERS, (down,), patterns=RESEARCH) as r:
        config = r.router.config.patterns["research"].pipeline
        assert config is not None
        pipeline = Pipeline.from_config(r.router, config, name="research")
        result = await pipeline.run("Tell me about railway turnouts")
        research = result.stages[1]
        assert research.calls == 3 and research.fallbacks == 3 and set(research.models) == {"fast"}
        assert "Fallback notes." in research.output
        assert result.output == "The synthesis."
        assert (
            "pipeline: stage research: mid failed (server) → fallback fast" in r.record("research").decisions
        )
        assert [s.name for s in result.stages] == ["decompose", "research", "synthesize"]
        assert all(s.cost_usd for s in result.stages)
        assert result.cost_usd == pytest.approx(sum(s.cost_usd or 0 for s in result.stages))


async def test_parallel_stages_gather_and_a_whole_chain_failure_fails_the_pipeline() -> None:
    answers = [answer("pro", model="gpt-4o-mini"), answer("con", model="mistral-small-latest")]
    async with rig(answers) as r:
        pipeline = Pipeline(
            r.router,
            [
                Stage("both", parallel=(Stage("pros", route="fast"), Stage("cons", route="mid"))),
                Stage("judge", route="best", template="{stages.pros} vs {stages.cons}"),
            ],
        )
        result = await pipeline.run("Trains?")
        assert result.stages[0].output == "pro\n\ncon" and result.stages[0].calls == 2
        r.engine.add_rule(
            fault("down", "server_error", params={"status": 503}, match={"provider": "anthropic"})
        )
        with pytest.raises(AllAttemptsFailed):
            await pipeline.run("Trains?")
        rec = r.record("pipeline")
        assert rec.outcome == "error" and rec.decisions[-1].endswith("chain exhausted")


def test_pipeline_config_errors_name_the_stage() -> None:
    stages = [
        {"name": "a", "route": "m", "foreach": "later"},
        {"name": "b", "route": "nope"},
    ]
    data = {
        "providers": {"o": {"kind": "openai", "base_url": "http://x"}},
        "models": {"m": {"provider": "o", "model": "gpt-4o-mini"}},
        "patterns": {"p": {"pipeline": {"stages": stages}}},
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    assert "patterns.p.pipeline.stages[0].foreach: 'later' is not an earlier stage" in str(exc.value)
    assert "patterns.p.pipeline.stages[1].route: unknown route or model 'nope'" in str(exc.value)


BUDGET_ROUTES = {"summarization": {"chain": ["best"]}}


async def test_budget_refuses_with_a_clear_error_and_resets_with_the_period() -> None:
    budgets = {"daily": {"route": "summarization", "limit_usd": 0.001, "period": "day"}}
    async with rig(budgets=budgets, routes=BUDGET_ROUTES) as r:
        served = 0
        with pytest.raises(BudgetExceeded) as exc:
            for _ in range(50):
                await r.router.complete(ask("summarization", "Summarize the timetable."))
                served += 1
        assert served >= 1
        err = exc.value
        assert err.http_status == 402 and err.budget == "daily" and err.spent >= 0.001
        assert err.retry_after is not None and 0 < err.retry_after <= 86400
        rec = r.record("summarization")
        assert rec.outcome == "error" and rec.error_kind == "budget"
        assert re.fullmatch(
            r"budget: route summarization spent \$0\.00\d+ of \$0\.001 today → refused", rec.decisions[0]
        )
        assert isinstance(r.router.clock, FakeClock)
        r.router.clock.advance(err.retry_after)  # the next day: allowed again
        assert (await r.router.complete(ask("summarization", "Again."))).model == "best"


async def test_budget_downgrades_to_cheaper_models() -> None:
    budgets = {
        "daily": {"route": "summarization", "limit_usd": 0.0005, "action": "downgrade", "downgrade": ["mid"]}
    }
    async with rig(budgets=budgets, routes=BUDGET_ROUTES) as r:
        models = [(await r.router.complete(ask("summarization", "Summarize."))).model for _ in range(12)]
        assert models[0] == "best" and models[-1] == "mid"
        decisions = r.record("summarization").decisions
        assert decisions[0].startswith("budget: route summarization spent $")
        assert decisions[0].endswith("today → downgrade to mid")


async def test_a_finished_request_gives_back_its_reservation_at_once() -> None:
    """Before: the full-max_tokens estimate ($0.0038 here) stayed reserved until the store write
    ran, so a $0.001 budget refused the second request after one that cost $0.0001."""
    budgets = {"daily": {"route": "summarization", "limit_usd": 0.001}}
    async with rig(budgets=budgets, routes=BUDGET_ROUTES) as r:
        costs: list[float] = []
        with pytest.raises(BudgetExceeded) as exc:
            for _ in range(100):
                resp = await r.router.complete(ask("summarization", "Summarize the timetable."))
                assert resp.cost_usd is not None
                costs.append(resp.cost_usd)
        assert 0 < costs[0] < 0.0005 and len(costs) >= 3
        assert sum(costs[:-1]) < 0.001 <= sum(costs)  # refused exactly once the spend reached the limit
        assert f"spent {usd(sum(costs))} of $0.001 today" in str(exc.value)


async def test_a_downgrade_is_decided_on_spend_and_stays() -> None:
    budgets = {
        "daily": {"route": "summarization", "limit_usd": 0.001, "action": "downgrade", "downgrade": ["mid"]}
    }
    async with rig(budgets=budgets, routes=BUDGET_ROUTES) as r:
        spent, models = 0.0, []
        for _ in range(30):
            resp = await r.router.complete(ask("summarization", "Summarize."))
            models.append((resp.model, spent))
            spent += resp.cost_usd or 0.0
        first_mid = next(i for i, (m, _) in enumerate(models) if m == "mid")
        assert all(m == "best" and s < 0.001 for m, s in models[:first_mid])
        assert all(m == "mid" for m, _ in models[first_mid:])
        assert models[first_mid][1] >= 0.001


def test_usd_keeps_the_digits_that_matter() -> None:
    assert [usd(x) for x in (0, 12.5, 1.0, 0.25, 0.001, 0.000141, 0.0012345, 0.00000123)] == [
        "$0.00",
        "$12.50",
        "$1.00",
        "$0.25",
        "$0.001",
        "$0.000141",
        "$0.00123",
        "$0.00000123",
    ]


class _StubRouter:
    def __init__(self) -> None:
        self.clock = FakeClock()

    def chain_of(self, name: str) -> tuple[str, ...]:
        return ("m",)


class _FixedEstimate(Budgets):
    def __init__(self, budgets: list[Budget], estimate: float) -> None:
        super().__init__(budgets)
        self._estimate = estimate

    def estimate(self, router: Any, chain: Any, request: Any) -> float:
        return self._estimate


@settings(max_examples=60, deadline=None)
@given(
    st.floats(0.5, 20),
    st.floats(0.01, 2),
    st.lists(st.tuples(st.integers(1, 6), st.floats(0, 1)), min_size=1, max_size=12),
)
def test_budget_never_exceeded_beyond_one_in_flight_estimate(
    limit: float, estimate: float, waves: list[tuple[int, float]]
) -> None:
    """Concurrent waves of requests each costing at most their estimate: spend ≤ limit + one estimate."""
    import asyncio

    async def scenario() -> float:
        budgets = _FixedEstimate([Budget("b", limit, route="r")], estimate)
        router = _StubRouter()
        for size, fraction in waves:
            contexts = []
            for _ in range(size):
                ctx = PlanContext(router, ask("r"), "r", None)  # type: ignore[arg-type]
                await budgets(ctx)
                contexts.append(ctx)
            for ctx in contexts:  # the wave's requests end after all of them were admitted
                if ctx.refuse is None:
                    for finish in ctx.finishes:
                        finish(AuditRecord("id", "r", [], 0.0, cost_usd=estimate * fraction))
            await budgets.flush()
        return await budgets.spent("b", router.clock.wall())

    spent = asyncio.run(scenario())
    assert spent <= limit + estimate + 1e-9


def test_a_downgrade_does_not_flap_while_requests_are_in_flight() -> None:
    """Before: estimates in flight counted, so a downgrade budget switched at a fraction of its
    limit and switched back as requests ended (models alternating at 14-78 % of the limit)."""
    import asyncio

    async def scenario() -> list[tuple[tuple[str, ...] | None, float]]:
        budgets = _FixedEstimate([Budget("b", 1.0, route="r", downgrade=("cheap",))], 0.6)
        router = _StubRouter()
        seen: list[tuple[tuple[str, ...] | None, float]] = []
        for _ in range(12):  # waves of 3 concurrent requests, each costing 0.05
            contexts = []
            for _ in range(3):
                ctx = PlanContext(router, ask("r"), "r", None)  # type: ignore[arg-type]
                before = await budgets.spent("b", router.clock.wall())
                await budgets(ctx)
                seen.append((ctx.chain, before))
                contexts.append(ctx)
            for ctx in contexts:
                for finish in ctx.finishes:
                    finish(AuditRecord("id", "r", [], 0.0, cost_usd=0.05))
        return seen

    seen = asyncio.run(scenario())
    switched = next(i for i, (chain, _) in enumerate(seen) if chain == ("cheap",))
    assert all(chain is None and spent < 1.0 for chain, spent in seen[:switched])
    assert seen[switched][1] >= 1.0 - 1e-9
    assert all(chain == ("cheap",) for chain, _ in seen[switched:])


def test_period_bounds() -> None:
    start, end = period_bounds(1_700_000_000.0, "day")
    assert start <= 1_700_000_000 < end and end - start == 86400
    start, end = period_bounds(1_700_000_000.0, "month")  # 2023-11-14: November has 30 days
    assert end - start == 30 * 86400
    start, end = period_bounds(1_703_980_800.0, "month")  # 2023-12-31: December rolls into 2024
    assert end - start == 31 * 86400


def test_budget_config_errors() -> None:
    data: dict[str, Any] = {
        "providers": {"o": {"kind": "openai", "base_url": "http://x"}},
        "models": {"m": {"provider": "o", "model": "gpt-4o-mini"}},
        "budgets": {"b": {"route": "m", "task": "t", "limit_usd": 1}},
    }
    with pytest.raises(ConfigError, match=r"budgets\.b: .*exactly one of route, task"):
        parse_config(data)
    data["budgets"] = {"b": {"route": "m", "limit_usd": 1, "action": "downgrade", "downgrade": ["zz"]}}
    with pytest.raises(ConfigError, match=r"budgets\.b\.downgrade\[0\]: unknown model 'zz'"):
        parse_config(data)


async def test_the_sidecar_serves_patterns_and_rules_by_model_name() -> None:
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from router.sidecar import Built, SidecarSettings, create_app

    rules = {
        "smart": {
            "rules": [{"name": "vip", "when": {"metadata": {"tier": "vip"}}, "route": "best"}],
            "default": "fast",
        }
    }
    async with rig(ANSWERS, patterns=RESEARCH, rules=rules) as r:
        server = TestServer(create_app(SidecarSettings(), lambda: Built(r.router)))
        async with server, ClientSession() as http:
            url = str(server.make_url("/v1/chat/completions"))
            body = {"model": "research", "messages": [{"role": "user", "content": "Tell me about turnouts"}]}
            async with http.post(url, json=body) as resp:
                assert resp.status == 200, await resp.text()
                data = await resp.json()
                assert data["choices"][0]["message"]["content"] == "The synthesis."
                assert resp.headers["x-turnout-route"] == "research"
            body = {"model": "smart", "messages": [{"role": "user", "content": "hi"}]}
            async with http.post(url, json=body, headers={"X-Turnout-Meta-Tier": "vip"}) as resp:
                assert resp.status == 200 and resp.headers["x-turnout-model"] == "best"
            async with http.get(str(server.make_url("/v1/models"))) as resp:
                names = [m["id"] for m in (await resp.json())["data"]]
                assert {"research", "smart"} <= set(names)


def test_template_fields_are_checked_against_what_each_stage_and_prompt_can_see() -> None:
    data: dict[str, Any] = {
        "providers": {"o": {"kind": "openai", "base_url": "http://x"}},
        "models": {"m": {"provider": "o", "model": "gpt-4o-mini"}},
        "prompts": {"p": {"default": {"version": "v1", "template": "{inputs}"}}},
        "patterns": {
            "pp": {
                "pipeline": {
                    "stages": [
                        {"name": "a", "route": "m", "template": "{stages.b} {item}"},
                        {"name": "b", "route": "m", "template": "{stages.a}"},
                    ]
                }
            }
        },
    }
    with pytest.raises(ConfigError) as exc:
        parse_config(data)
    lines = str(exc.value).splitlines()
    assert "<config>: prompts.p.default: {inputs}: use {input} or {metadata.KEY}" in lines
    assert (
        "<config>: patterns.pp.pipeline.stages[0].template: {item} has no value here (known: input)" in lines
    )
    assert not any("stages[1]" in line for line in lines)  # {stages.a} is an earlier stage


async def test_a_budget_per_caller_api_key_over_the_sidecar() -> None:
    """Callers pay per key: team A's key runs out, team B's goes on; both on the same route."""
    import openai
    from aiohttp.test_utils import TestServer

    from router.sidecar import Built, SidecarSettings, create_app

    budgets = {"team-a": {"api_key": "sk-team-a-0001", "limit_usd": 0.0003, "period": "month"}}
    async with rig(budgets=budgets, routes=BUDGET_ROUTES) as r:
        server = TestServer(create_app(SidecarSettings(), lambda: Built(r.router)))
        async with server:
            base = str(server.make_url("/v1"))
            team_a = openai.AsyncOpenAI(base_url=base, api_key="sk-team-a-0001", max_retries=0)
            team_b = openai.AsyncOpenAI(base_url=base, api_key="sk-team-b-0002", max_retries=0)
            messages: list[Any] = [{"role": "user", "content": "Summarize."}]
            served = 0
            with pytest.raises(openai.APIStatusError) as exc:
                for _ in range(30):
                    await team_a.chat.completions.create(model="summarization", messages=messages)
                    served += 1
            assert exc.value.status_code == 402 and served >= 1
            assert "API key …0001 spent $0.000" in exc.value.message
            assert "sk-team-a" not in exc.value.message  # the key itself never leaves
            for _ in range(served + 2):
                answer = await team_b.chat.completions.create(model="summarization", messages=messages)
                assert answer.choices[0].message.content
            await team_a.close()
            await team_b.close()


def test_a_budget_names_exactly_one_subject() -> None:
    data = {
        "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}},
        "models": {"m": {"provider": "p", "model": "gpt-4o-mini"}},
        "budgets": {"b": {"route": "m", "api_key": "sk-x", "limit_usd": 1}},
    }
    with pytest.raises(ConfigError, match=r"budgets\.b: .*exactly one of route, task, api_key"):
        parse_config(data)
