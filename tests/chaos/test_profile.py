"""Provider profiles: quotas and speed compiled to the scenario's limits and the mock's latency;
the ``concurrent`` limit they can set (requests in flight per key and model)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import pytest
from chaos_helpers import ok, request

from chaos import ChaosEngine, Limit
from chaos.profile import Profile, ProfileError, apply_profile, load_profile
from chaos.scenario import Scenario
from mockproviders.clock import FakeClock
from mockproviders.types import MockRequest, MockResponse

ROOT = Path(__file__).resolve().parents[2]


def test_per_minute_quotas_become_buckets_over_the_enforcement_span() -> None:
    profile = Profile.model_validate(
        {
            "enforce": "1s",
            "providers": {
                "openai": {"limits": {"rpm": 3000, "tpm": 120000, "concurrent": 8}},
                "mistral/mistral-small-latest": {"limits": {"rpm": 600}, "speed": {"ttft": "80ms"}},
            },
        }
    )
    openai_limit, mistral_limit = profile.limits()
    assert (openai_limit.rpm, openai_limit.tpm, openai_limit.concurrent, openai_limit.window) == (
        50,
        2000,
        8,
        1.0,
    )
    assert openai_limit.match.provider == ["openai"] and openai_limit.match.model is None
    assert (mistral_limit.rpm, mistral_limit.window) == (10, 1.0)
    assert mistral_limit.match.model == ["mistral-small-latest"]
    assert profile.latency()["mistral/mistral-small-latest"].ttft == pytest.approx(0.08)


def test_applied_to_a_scenario_its_faults_stay_and_its_own_latency_wins() -> None:
    scenario = Scenario.model_validate(
        {
            "mock": {"latency": {"openai": {"ttft": 2}}},
            "rules": [{"name": "boom", "fault": "server_error"}],
            "limits": [{"rpm": 5}],
        }
    )
    profile = Profile.model_validate(
        {"providers": {"openai": {"speed": {"ttft": 0.1}}, "anthropic": {"limits": {"rpm": 60}}}}
    )
    merged = apply_profile(profile, scenario)
    assert [r.name for r in merged.rules] == ["boom"]
    assert [lim.rpm for lim in merged.limits] == [5, 1]
    assert merged.mock is not None and merged.mock.latency["openai"].ttft == 2
    fresh = apply_profile(profile)
    assert fresh.mock is not None and fresh.mock.latency["openai"].ttft == pytest.approx(0.1)


@pytest.mark.parametrize(
    ("text", "where"),
    [
        ("providers: {openia: {limits: {rpm: 1}}}", "providers: 'openia' must be a provider"),
        ("providers: {openai: {limits: {rpm: 0}}}", "providers.openai.limits.rpm"),
        ("providers: {openai: {speed: {spread: 2}}}", "providers.openai.speed.spread"),
        ("providers: {openai: {limit: {rpm: 1}}}", "providers.openai.limit: unknown field"),
        ("enforce: 2m", "enforce"),
        ("- a list", "a mapping at the top level"),
        ("providers: [", "not valid YAML"),
    ],
)
def test_a_bad_profile_is_refused_naming_the_field(tmp_path: Path, text: str, where: str) -> None:
    path = tmp_path / "profile.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(ProfileError) as err:
        load_profile(path)
    assert str(path) in str(err.value) and where in str(err.value)


def test_the_shipped_example_profile_is_valid() -> None:
    profile = load_profile(ROOT / "loadtests" / "examples" / "profile-3000rpm.yaml")
    assert {lim.name: lim.rpm for lim in profile.limits()} == {"profile:openai": 50, "profile:mistral": 20}


async def test_concurrent_limit_refuses_over_the_cap_and_frees_slots_when_answers_end() -> None:
    engine = ChaosEngine(limits=[Limit(concurrent=2)], clock=FakeClock())
    gate = asyncio.Event()

    async def slow(req: MockRequest) -> MockResponse:
        await gate.wait()
        return await ok(req)

    first = asyncio.ensure_future(engine(request(), slow))
    second = asyncio.ensure_future(engine(request(), slow))
    await asyncio.sleep(0)
    refused = await engine(request(), ok)
    assert refused.status == 429 and refused.headers["retry-after"] == "1"
    assert b"concurrent" in (refused.body or b"")
    other_model = await engine(request(model="gpt-4o"), ok)  # counted per model
    assert other_model.status == 200
    gate.set()
    assert [(await first).status, (await second).status] == [200, 200]
    assert (await engine(request(), ok)).status == 200  # slots freed


async def test_a_stream_holds_its_slot_until_its_last_event() -> None:
    engine = ChaosEngine(limits=[Limit(concurrent=1)], clock=FakeClock())
    streamed = await engine(request(stream=True), ok)
    assert streamed.status == 200 and streamed.stream is not None
    assert (await engine(request(stream=True), ok)).status == 429  # the first is still open
    events: list[Any] = [event async for event in streamed.stream]
    assert events[-1].kind == "done"
    assert (await engine(request(stream=True), ok)).status == 200


async def test_a_failed_call_frees_its_slot() -> None:
    engine = ChaosEngine(limits=[Limit(concurrent=1)], clock=FakeClock())

    async def broken(req: MockRequest) -> MockResponse:
        raise RuntimeError("upstream blew up")

    with pytest.raises(RuntimeError):
        await engine(request(), broken)
    assert (await engine(request(), ok)).status == 200
