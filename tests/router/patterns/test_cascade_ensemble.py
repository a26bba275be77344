"""Cascade and ensemble against the mock, with scripted answers and faults injected mid-pattern."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st
from pattern_rig import answer, ask, fault, rig
from pydantic import BaseModel

from router import AllAttemptsFailed
from router.patterns import (
    Cascade,
    Ensemble,
    json_valid,
    judge,
    length,
    pydantic_schema,
    scorer,
    self_confidence,
)
from router.patterns.checks import parse_confidence
from router.patterns.ensemble import majority, normalize_label
from router.types import ChatResponse, Usage

CASCADE = {"careful": {"cascade": {"tiers": ["fast", "mid", "best"], "checks": [{"json": True}]}}}


async def test_cascade_escalates_on_invalid_json_and_reports_the_saving() -> None:
    answers = [
        answer('{"answer": oops', model="gpt-4o-mini"),
        answer("not json at all", model="mistral-small-latest"),
        answer('{"answer": 42}', model="claude-sonnet-4-5"),
    ]
    async with rig(answers, patterns=CASCADE) as r:
        result = await Cascade(r.router, ["fast", "mid", "best"], [json_valid()], name="c").run(ask("c"))
        s = result.summary
        assert result.response.content == '{"answer": 42}' and s.winner == "best"
        assert [t.accepted for t in s.tiers] == [False, False, True]
        assert s.tiers[0].reason.startswith("invalid JSON at line 1 col 12")
        assert s.escalations[1].startswith("mid: invalid JSON at line 1 col 1")
        assert s.cost_usd is not None and s.top_tier_cost_usd is not None
        assert s.saved_usd == pytest.approx(s.top_tier_cost_usd - s.cost_usd)
        rec = r.record("c")
        assert rec.decisions[0].startswith("cascade: tier fast escalated: invalid JSON at line 1 col 12")
        assert rec.decisions[2].startswith("cascade: tier best accepted")
        assert [a.model for a in rec.attempts] == ["fast", "mid", "best"]
        assert rec.cost_usd == pytest.approx(s.cost_usd)
        # the same cascade from YAML, as a model name
        resp = await r.router.complete(ask("careful"))
        assert resp.route == "careful" and resp.model == "best"
        assert "careful" in r.router.route_names()


async def test_a_pattern_named_as_a_model_hands_back_its_own_summary_record() -> None:
    answers = [answer('{"answer": 1}', model="gpt-4o-mini")]
    async with rig(answers, patterns=CASCADE) as r:
        out = await r.router.complete_outcome(ask("careful"))
        assert out.response is not None and out.audit is not None
        assert out.audit is r.log.last()  # the summary, not the record of the tier it called
        assert out.audit.route == "careful" and out.audit.request_id == out.response.request_id
        stream = r.router.stream_outcome(ask("careful"))
        assert [type(ev).__name__ async for ev in stream.events][-1] == "StreamEnd"
        assert stream.audit is r.log.last() and stream.audit is not None
        assert stream.audit.route == "careful"


async def test_cascade_accepts_the_cheap_tier_when_confident_and_saves_money() -> None:
    answers = [answer("Paris. Confidence: 92%", model="gpt-4o-mini")]
    async with rig(answers) as r:
        result = await Cascade(r.router, ["fast", "best"], [self_confidence(0.8), length(min_chars=3)]).run(
            ask("x")
        )
        assert result.summary.winner == "fast" and result.response.model == "fast"
        assert result.summary.saved_usd is not None and result.summary.saved_usd > 0


async def test_a_tier_that_times_out_escalates_with_the_reason() -> None:
    hang = fault("hang", "hang", params={"max": "5s"}, match={"provider": "openai"})
    async with rig(
        [answer('{"ok": true}')], (hang,), real_time=True, defaults={"timeouts": {"read": "0.3s"}}
    ) as r:
        result = await Cascade(r.router, ["fast", "best"], [json_valid()]).run(ask("x"))
        assert result.summary.winner == "best"
        assert result.summary.tiers[0].reason.startswith("timeout")
        assert r.record("cascade").decisions[0].startswith("cascade: tier fast escalated: timeout")


async def test_judge_and_scorer_checks() -> None:
    answers = [
        answer("3", model="mistral-small-latest", contains="Score:"),  # the judge
        answer("A vague answer", model="gpt-4o-mini"),
        answer("A precise answer", model="claude-sonnet-4-5"),
    ]
    async with rig(answers) as r:
        result = await Cascade(r.router, ["fast", "best"], [judge(r.router, "mid", 7)]).run(ask("x"))
        assert result.summary.tiers[0].reason == "judge mid scored 3/10 < 7"
        assert result.response.content == "A precise answer"
        assert len(r.record("cascade").attempts) == 4  # fast, judge, best, judge (kept: top tier)

        def precise(req: object, resp: ChatResponse) -> float:
            return 1.0 if "precise" in resp.content else 0.0

        result = await Cascade(r.router, ["fast", "best"], [scorer(precise)]).run(ask("x"))
        assert result.summary.tiers[0].reason == "precise scored 0 < 0.5"


async def test_pydantic_schema_check() -> None:
    class Answer(BaseModel):
        city: str

    check = pydantic_schema(Answer)
    resp = ChatResponse('```json\n{"city": "Paris"}\n```', "m", "p", "m", "stop", Usage())
    assert (await check(ask("x"), resp)).ok
    resp.content = '{"town": "Paris"}'
    verdict = await check(ask("x"), resp)
    assert not verdict.ok and "first at city: Field required" in verdict.reason


def test_confidence_parsing() -> None:
    assert parse_confidence("Answer: 4\nConfidence: 0.75") == 0.75
    assert parse_confidence("confidence 80%") == 0.8
    assert parse_confidence("Confidence: 7/10") == 0.7
    assert parse_confidence("I am sure") is None


ENSEMBLE = {"vote": {"ensemble": {"members": ["fast", "mid", "best"], "labels": ["positive", "negative"]}}}


async def test_ensemble_majority_vote_with_normalized_labels() -> None:
    answers = [
        answer("Positive.", model="gpt-4o-mini"),
        answer("label: POSITIVE", model="mistral-small-latest"),
        answer("negative", model="claude-sonnet-4-5"),
    ]
    async with rig(answers, patterns=ENSEMBLE) as r:
        resp = await r.router.complete(ask("vote", "Trains are great!"))
        assert resp.content == "positive" and resp.route == "vote"
        rec = r.record("vote")
        assert (
            "ensemble: votes fast=positive, mid=positive, best=negative → positive (2 of 3)" in rec.decisions
        )
        assert len(rec.attempts) == 3 and rec.cost_usd is not None


async def test_one_member_fails_mid_ensemble_and_the_quorum_holds() -> None:
    answers = [answer("positive", model="gpt-4o-mini"), answer("Positive", model="claude-sonnet-4-5")]
    down = fault("down", "server_error", params={"status": 503}, match={"provider": "mistral"})
    async with rig(answers, (down,)) as r:
        vote = Ensemble(
            r.router, ["fast", "mid", "best"], labels=["positive", "negative"], quorum=2, name="v"
        )
        result = await vote.run(ask("v"))
        assert result.summary.failed == {"mid": "server"} and result.summary.quorum_met
        assert result.response.content == "positive"
        assert r.record("v").decisions[0] == "ensemble: 2 of 3 answered, quorum 2; failed: mid (server)"
        # a second provider down: below the quorum, a clear error
        r.engine.add_rule(
            fault("down2", "server_error", params={"status": 503}, match={"provider": "anthropic"})
        )
        with pytest.raises(AllAttemptsFailed, match="1 of 3 members answered, quorum is 2") as exc:
            await vote.run(ask("v"))
        assert len(exc.value.errors) == 2
        assert r.record("v").outcome == "error"


async def test_ensemble_judge_mode_picks_the_judged_best() -> None:
    answers = [
        answer("[2]", model="gpt-4.1", contains="Best:"),
        answer("short", model="gpt-4o-mini"),
        answer("a thorough answer", model="mistral-small-latest"),
    ]
    async with rig(answers) as r:
        result = await Ensemble(r.router, ["fast", "mid"], mode="judge", judge="big").run(ask("x"))
        assert result.response.content == "a thorough answer" and result.summary.winner == "mid"


LABELS = ["positive", "negative", "neutral"]


@given(
    st.sampled_from(LABELS),
    st.sampled_from(["", " ", "\n", "label: ", "Answer = "]),
    st.sampled_from(["", ".", "!", '"']),
)
def test_vote_normalization_ignores_case_punctuation_and_prefixes(
    label: str, prefix: str, suffix: str
) -> None:
    for text in (label, label.upper(), label.title()):
        assert normalize_label(f"{prefix}{text}{suffix}", LABELS) == label


@given(st.lists(st.one_of(st.none(), st.sampled_from(LABELS)), min_size=1, max_size=9))
def test_majority_arithmetic(votes: list[str | None]) -> None:
    winner, counts = majority(votes)
    if all(v is None for v in votes):
        assert winner is None
        return
    assert winner is not None
    assert counts[winner] == max(counts.values())
    assert sum(counts.values()) == sum(v is not None for v in votes)
    tied = {v for v in counts if counts[v] == counts[winner]}
    assert winner == next(v for v in votes if v in tied)  # ties go to the earliest voter


@given(st.integers(2, 7), st.data())
def test_quorum_arithmetic(n: int, data: st.DataObject) -> None:
    quorum = data.draw(st.integers(1, n))
    failed = data.draw(st.integers(0, n))
    # the request survives exactly as many failures as the members above the quorum
    assert (n - failed >= quorum) == (failed <= n - quorum)
    assert n // 2 + 1 > n / 2  # the default quorum is a strict majority


async def test_the_sidecar_sums_cascade_savings_and_counts_unknown_routes_in_metrics() -> None:
    """Before: savings existed per request only, and a request naming no route was audited but
    missing from turnout_requests_total."""
    import openai
    from aiohttp import ClientSession
    from aiohttp.test_utils import TestServer

    from router.sidecar import Built, SidecarSettings, create_app

    answers = [answer('{"a": 1}', model="gpt-4o-mini")]
    async with rig(answers, patterns=CASCADE) as r:
        server = TestServer(create_app(SidecarSettings(), lambda: Built(r.router)))
        async with server, ClientSession() as http:
            client = openai.AsyncOpenAI(base_url=str(server.make_url("/v1")), api_key="k", max_retries=0)
            for _ in range(3):
                await client.chat.completions.create(
                    model="careful", messages=[{"role": "user", "content": "Q"}]
                )
            with pytest.raises(openai.NotFoundError):
                await client.chat.completions.create(
                    model="nope", messages=[{"role": "user", "content": "Q"}]
                )
            await client.close()
            saved = [rec.saved_usd for rec in r.log.records() if rec.route == "careful"]
            assert len(saved) == 3 and all(s is not None and s > 0 for s in saved)
            async with http.get(str(server.make_url("/metrics"))) as resp:
                text = await resp.text()
        lines = {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line[:1] != "#"
        }
        assert lines['turnout_cascade_saved_usd{route="careful"}'] == pytest.approx(
            sum(s or 0 for s in saved)
        )
        assert lines['turnout_requests_total{model="none",outcome="error",route="(unknown)"}'] == 1
        assert not any('route="nope"' in key for key in lines)  # the client's string is never a label
