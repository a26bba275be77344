"""The engine alone (no socket): rule order, counters, determinism, fault headers, rule edits."""

from __future__ import annotations

import asyncio
import json
from fnmatch import fnmatchcase
from typing import Any

import pytest
from chaos_helpers import ok, request, rule, send
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos import ChaosEngine, Scenario
from mockproviders.clock import FakeClock
from mockproviders.types import AbortConnection

PROVIDERS = ("openai", "anthropic", "mistral")


async def test_first_firing_rule_wins_and_every_matching_rule_counts() -> None:
    engine = ChaosEngine(
        [
            rule("a", "server_error", when={"every": 2}),
            rule("b", "rate_limit", when={"first": 3}),
            rule("c", "unauthorized", match={"provider": "anthropic"}),
        ],
        clock=FakeClock(),
    )
    results = [await send(engine, request()) for _ in range(4)]
    assert results == [429, 500, 429, 500]
    assert engine.counters() == {
        "a": {"matched": 4, "injected": 2},
        "b": {"matched": 4, "injected": 2},  # its third hit was shadowed by "a"
        "c": {"matched": 0, "injected": 0},
    }
    assert [e["rule"] for e in engine.journal] == ["b", "a", "b", "a"]


async def test_time_windows_read_the_engine_clock() -> None:
    clock = FakeClock()
    engine = ChaosEngine(
        [rule("outage", "server_error", when={"window": {"start": 10, "end": 20}})], clock=clock
    )
    seen = []
    for _ in range(4):
        seen.append(await send(engine, request()))
        clock.advance(7)
    assert seen == [200, 200, 500, 200]  # at t = 0, 7, 14, 21
    assert [e["time"] for e in engine.journal] == [0, 7, 14, 21]


async def test_reset_restarts_counters_journal_numbering_and_time() -> None:
    clock = FakeClock()
    engine = ChaosEngine([rule("f", "server_error", when={"first": 1})], clock=clock)
    assert [await send(engine, request()) for _ in range(2)] == [500, 200]
    clock.advance(100)
    engine.reset()
    assert engine.journal == [] and engine.elapsed() == 0
    assert [await send(engine, request()) for _ in range(2)] == [500, 200]
    assert engine.journal[0]["index"] == 0


async def test_rule_edits() -> None:
    engine = ChaosEngine(clock=FakeClock())
    engine.add_rule(rule("a", "reset"))
    with pytest.raises(ValueError, match="already exists"):
        engine.add_rule(rule("a", "hang"))
    assert engine.replace_rule(rule("a", "server_error")) is True
    assert engine.replace_rule(rule("b", "rate_limit")) is False
    assert [(r.name, r.fault) for r in engine.rules] == [("a", "server_error"), ("b", "rate_limit")]
    engine.remove_rule("a")
    with pytest.raises(KeyError, match="no rule named 'a'"):
        engine.remove_rule("a")
    engine.clear_rules()
    assert engine.rules == []


async def test_fault_headers_are_off_by_default_and_precise_when_on() -> None:
    headers: dict[str, Any] = {"x_turnout_fault": "rate_limit"}
    headers["x_turnout_fault_params"] = json.dumps({"retry_after": 7})
    off = ChaosEngine(clock=FakeClock())
    assert await send(off, request(**headers)) == 200
    on = ChaosEngine([rule("never", "reset", when={"probability": 0})], clock=FakeClock(), header_faults=True)
    response = await on(request(**headers), ok)
    assert (response.status, response.headers["retry-after"]) == (429, "7")
    assert on.journal[0]["rule"] == "header:rate_limit"
    assert await send(on, request(x_turnout_fault="reset")) == "reset"
    bad = await on(request(x_turnout_fault="explode"), ok)
    assert bad.status == 400 and b"unknown fault 'explode'" in (bad.body or b"")
    bad = await on(request(x_turnout_fault="cut", x_turnout_fault_params="{nope"), ok)
    assert bad.status == 400 and b"x-turnout-fault" in (bad.body or b"")


async def test_stream_cuts_are_journaled() -> None:
    engine = ChaosEngine([rule("cut", "cut", params={"after_tokens": 2})], clock=FakeClock())
    assert await send(engine, request(stream=True)) == "close"
    assert engine.journal[0]["aborted"] == "close" and engine.journal[0]["status"] == 200


async def test_from_scenario_takes_seed_rules_and_limits() -> None:
    scenario = Scenario.model_validate(
        {"seed": 5, "rules": [{"name": "x", "fault": "reset"}], "limits": [{"rpm": 2}]}
    )
    engine = ChaosEngine.from_scenario(scenario, clock=FakeClock())
    assert (engine.seed, [r.name for r in engine.rules], len(engine.limits.limits)) == (5, ["x"], 1)


REQUESTS = st.lists(
    st.tuples(
        st.sampled_from(PROVIDERS), st.sampled_from(["gpt-4o-mini", "gpt-4o", "claude"]), st.booleans()
    ),
    min_size=1,
    max_size=40,
)


def _engine(seed: int) -> ChaosEngine:
    return ChaosEngine(
        [
            rule("storm", "rate_limit", match={"provider": "openai"}, when={"probability": 0.3}),
            rule("cuts", "cut", when={"probability": 0.5}),
            rule("flap", "server_error", match={"model": "gpt-4o*"}, when={"sequence": "fail 2, pass 1"}),
            rule("rare", "reset", when={"probability": 0.1, "every": 2}),
        ],
        seed=seed,
        clock=FakeClock(),
    )


@settings(max_examples=30, deadline=None)
@given(seed=st.integers(0, 2**31), requests=REQUESTS)
def test_same_seed_and_requests_give_the_same_journal(
    seed: int, requests: list[tuple[str, str, bool]]
) -> None:
    async def run() -> tuple[list[dict[str, Any]], list[int | str]]:
        engine = _engine(seed)
        outcomes = [await send(engine, request(p, m, s)) for p, m, s in requests]
        return engine.journal, outcomes

    first, second = asyncio.run(run()), asyncio.run(run())
    assert first == second


@settings(max_examples=15, deadline=None)
@given(seed=st.integers(0, 2**31), requests=REQUESTS)
def test_concurrency_does_not_change_which_request_gets_which_fault(
    seed: int, requests: list[tuple[str, str, bool]]
) -> None:
    # Probabilities are keyed on the request index, never drawn from a shared generator, so
    # requests run concurrently (their streams interleaving) get the faults they get one by one.
    async def sequential() -> list[Any]:
        engine = _engine(seed)
        return [await send(engine, request(p, m, s)) for p, m, s in requests]

    async def concurrent() -> list[Any]:
        engine = _engine(seed)
        responses: list[Any] = []
        for p, m, s in requests:  # arrive in order, then are read all at once
            try:
                responses.append(await engine(request(p, m, s), ok))
            except AbortConnection as exc:
                responses.append(exc.mode)

        async def drain(r: Any) -> Any:
            if isinstance(r, str) or r.stream is None:
                return r if isinstance(r, str) else r.status
            try:
                async for _ in r.stream:
                    await asyncio.sleep(0)
            except AbortConnection as exc:
                return exc.mode
            return r.status

        return list(await asyncio.gather(*(drain(r) for r in responses)))

    assert asyncio.run(sequential()) == asyncio.run(concurrent())


RULE_SPECS = st.lists(
    st.tuples(
        st.sampled_from([None, "openai", "anthropic"]),
        st.sampled_from([None, "gpt-4o*", "claude"]),
        st.sampled_from(["first", "every", "sequence"]),
        st.integers(1, 4),
    ),
    min_size=1,
    max_size=4,
)


@settings(max_examples=40, deadline=None)
@given(specs=RULE_SPECS, requests=REQUESTS)
def test_targeting_and_schedules_compose_as_documented(
    specs: list[tuple[str | None, str | None, str, int]], requests: list[tuple[str, str, bool]]
) -> None:
    """Documented: a rule's counters advance on every request its target matches; the first
    rule in order that fires is applied; a schedule is an AND of its parts."""
    rules = []
    for i, (provider, model, kind, n) in enumerate(specs):
        match = {k: v for k, v in (("provider", provider), ("model", model)) if v is not None}
        when = {"sequence": f"pass {n}, fail 1"} if kind == "sequence" else {kind: n}
        rules.append(rule(f"r{i}", "server_error", match=match, when=when))

    def fires(kind: str, n: int, nth: int) -> bool:
        if kind == "first":
            return nth < n
        if kind == "every":
            return nth % n == n - 1
        return nth % (n + 1) == n  # pass n, fail 1

    counts = [0] * len(specs)
    expected = []
    for provider, model, _ in requests:
        chosen = None
        for i, (p, m, kind, n) in enumerate(specs):
            if (p is None or p == provider) and (m is None or fnmatchcase(model, m)):
                if chosen is None and fires(kind, n, counts[i]):
                    chosen = f"r{i}"
                counts[i] += 1
        expected.append(chosen)

    async def run() -> list[Any]:
        engine = ChaosEngine(rules, clock=FakeClock())
        for p, m, s in requests:
            await send(engine, request(p, m, s))
        return [e["rule"] for e in engine.journal]

    assert asyncio.run(run()) == expected
