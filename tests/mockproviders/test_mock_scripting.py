"""Scripted answers, answer patches, the latency model, determinism and configuration files."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mock_sdk_client import SDK

from mockproviders.clock import FakeClock
from mockproviders.config import ConfigError, Latency, MockConfig, load_config, parse_config
from mockproviders.core import MockCore
from mockproviders.types import AnswerPatch, Handler, MockRequest, MockResponse

HI = [{"role": "user", "content": "Hello there"}]
SONNET = "claude-sonnet-4-6"
RULES = {
    "rules": [
        {
            "match": {"provider": "openai", "contains": "weather"},
            "answer": {"tool_calls": [{"name": "get_weather", "arguments": {"city": "Paris"}}]},
        },
        {"match": {"last_message": "say no"}, "answer": {"refusal": "I can't help with that."}},
        {"match": {"pattern": "^long"}, "answer": {"text": "cut short", "finish_reason": "length"}},
        {"match": {"model": "gpt-4o"}, "answer": {"text": "Fixed for gpt-4o."}},
    ],
    "default": {"text": "Default answer."},
}


def user(text: str) -> list[dict[str, str]]:
    return [{"role": "user", "content": text}]


class Patch:
    def __init__(self, patch: AnswerPatch) -> None:
        self.patch = patch

    async def __call__(self, request: MockRequest, call_next: Handler) -> MockResponse:
        request.patch = self.patch
        request.annotations["fault"] = "patched"
        return await call_next(request)


@pytest.fixture
def mock_config() -> MockConfig:
    return parse_config(RULES)


async def test_rules_fixed_refusal_length_tool_and_default(sdk: SDK) -> None:
    fixed = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI)
    assert fixed.choices[0].message.content == "Fixed for gpt-4o."
    default = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert default.choices[0].message.content == "Default answer."
    tool = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=user("weather in Paris?"))
    assert tool.choices[0].finish_reason == "tool_calls"
    assert json.loads(tool.choices[0].message.tool_calls[0].function.arguments) == {"city": "Paris"}  # type: ignore[index, union-attr]
    no = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=user("say no"))
    assert (
        no.choices[0].message.refusal == "I can't help with that." and no.choices[0].message.content is None
    )
    no_a = await sdk.anthropic.messages.create(model=SONNET, max_tokens=50, messages=user("say no"))
    assert no_a.stop_reason == "refusal"
    long = await sdk.anthropic.messages.create(model=SONNET, max_tokens=50, messages=user("long story"))
    assert long.stop_reason == "max_tokens" and long.content[0].text == "cut short"  # type: ignore[union-attr]
    weather_elsewhere = await sdk.mistral.chat.complete_async(
        model="mistral-small-latest", messages=user("weather")
    )  # type: ignore[arg-type]
    assert weather_elsewhere.choices[0].message.content == "Default answer."  # type: ignore[union-attr]


@pytest.mark.parametrize(
    ("finish", "openai_reason", "anthropic_reason", "mistral_reason"),
    [("length", "length", "max_tokens", "length"), ("content_filter", "content_filter", "refusal", "stop")],
)
async def test_patch_finish_reason_maps_per_provider(
    sdk: SDK, finish: str, openai_reason: str, anthropic_reason: str, mistral_reason: str
) -> None:
    sdk.core.add_interceptor(Patch(AnswerPatch(finish_reason=finish)))
    o = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert o.choices[0].finish_reason == openai_reason
    a = await sdk.anthropic.messages.create(model=SONNET, max_tokens=50, messages=HI)
    assert a.stop_reason == anthropic_reason
    m = await sdk.mistral.chat.complete_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    assert m.choices[0].finish_reason == mistral_reason
    assert sdk.core.journal.entries[-1].annotations == {"fault": "patched"}


async def test_patch_empty_content_and_invalid_tool_arguments(sdk: SDK) -> None:
    sdk.core.add_interceptor(Patch(AnswerPatch(content="")))
    o = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=HI)
    assert o.choices[0].message.content == "" and o.usage and o.usage.completion_tokens == 0
    a = await sdk.anthropic.messages.create(model=SONNET, max_tokens=50, messages=HI)
    assert a.content == []
    sdk.core.interceptors = [Patch(AnswerPatch(tool_arguments='{"city": '))]
    t = await sdk.openai.chat.completions.create(model="gpt-4o-mini", messages=user("weather?"))
    assert t.choices[0].message.tool_calls[0].function.arguments == '{"city": '  # type: ignore[index, union-attr]
    stream = await sdk.openai.chat.completions.create(
        model="gpt-4o-mini", messages=user("weather?"), stream=True
    )
    args = "".join(
        [
            c.function.arguments or ""
            async for ch in stream
            for c in ch.choices[0].delta.tool_calls or []
            if c.function
        ]
    )
    assert args == '{"city": '


async def test_same_request_and_seed_give_the_same_answer() -> None:
    def body(core: MockCore) -> bytes:
        return json.dumps({"model": "gpt-4o", "messages": HI}).encode()

    async def ask(seed: int) -> str:
        core = MockCore(seed=seed)
        r = await core.dispatch(
            "POST", "/openai/v1/chat/completions", {"authorization": "Bearer k"}, body(core)
        )
        assert r.body is not None
        return str(json.loads(r.body)["choices"][0]["message"]["content"])

    assert await ask(1) == await ask(1)
    assert await ask(1) != await ask(2)


async def test_latency_model_uses_the_clock_only() -> None:
    clock = FakeClock()
    config = MockConfig(
        latency={"openai": Latency(ttft=0.5, tokens_per_second=10), "openai/gpt-4o": Latency(ttft=2)}
    )
    core = MockCore(config, clock=clock)
    body = json.dumps({"model": "gpt-4o-mini", "messages": HI, "stream": True}).encode()
    r = await core.dispatch("POST", "/openai/v1/chat/completions", {"authorization": "Bearer k"}, body)
    assert r.stream is not None
    tokens = sum([e.tokens async for e in r.stream])
    assert clock.sleeps[0] == 0.5
    assert clock.sleeps[1:] == [pytest.approx(0.1)] * (tokens - 1)
    clock.sleeps.clear()
    whole = json.dumps({"model": "gpt-4o", "messages": HI}).encode()
    await core.dispatch("POST", "/openai/v1/chat/completions", {"authorization": "Bearer k"}, whole)
    assert clock.sleeps == [2.0]


async def test_latency_jitter_is_seeded() -> None:
    async def delays(seed: int) -> list[float]:
        clock = FakeClock()
        core = MockCore(MockConfig(latency={"default": Latency(ttft=1, jitter=0.5)}), seed=seed, clock=clock)
        for _ in range(3):
            await core.dispatch(
                "POST",
                "/mistral/v1/chat/completions",
                {"authorization": "Bearer k"},
                json.dumps({"model": "mistral-small-latest", "messages": HI}).encode(),
            )
        return clock.sleeps

    first = await delays(7)
    assert first == await delays(7)
    assert all(0.25 <= d <= 2.25 for d in first) and len(set(first)) == 3


def test_config_file_loads_and_errors_name_file_and_field(tmp_path: Path) -> None:
    good = tmp_path / "mock.yaml"
    good.write_text(
        "models:\n  openai: [my-model]\nrules:\n  - match: {contains: hi}\n    answer: {text: yo}\n"
    )
    config = load_config(good)
    assert config.known_models("openai") == frozenset({"my-model"})
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        "rules:\n  - match: {pattern: '('}\n    answer: {finish_reason: 3}\nlatency: {nowhere: {}}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_config(bad)
    text = str(err.value)
    assert str(bad) in text and "rules.0.match.pattern" in text and "rules.0.answer.finish_reason" in text
    (tmp_path / "list.yaml").write_text("- 1\n")
    with pytest.raises(ConfigError, match="top level must be a mapping"):
        load_config(tmp_path / "list.yaml")
    with pytest.raises(ConfigError, match="cannot read"):
        load_config(tmp_path / "missing.yaml")
    with pytest.raises(ConfigError, match="latency key 'nowhere'"):
        parse_config({"latency": {"nowhere": {}}})
