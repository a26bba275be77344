"""Anthropic prompt caching as Anthropic does it, with the anthropic SDK through every front end
(socket, interception, MockTransport): up to four breakpoints, the longest cached prefix at any
breakpoint (or in the lookback before one) is read, a minimum cacheable length per model,
``input_tokens`` excluding cache reads and writes, TTLs on the mock's clock.

Token arithmetic (the mock's tokenizer: one word is one token; a message or the system prompt
adds 3; the request adds 3): ``SYSTEM`` is 1200 + 3 = 1203, ``U1`` 6 + 3 = 9, ``A1`` 4 + 3 = 7,
``U2`` 3 + 3 = 6.
"""

from __future__ import annotations

from typing import Any

import anthropic
import pytest
from mock_sdk_client import SDK

from mockproviders.clock import FakeClock
from mockproviders.config import ConfigError, MockConfig, PromptCaching, parse_config

SONNET = "claude-sonnet-4-5"  # minimum cacheable prompt: 1024 tokens
HAIKU = "claude-haiku-4-5"  # minimum: 4096 tokens
EPHEMERAL: dict[str, Any] = {"type": "ephemeral"}
SYSTEM_TEXT = "Timetable rules apply. " * 400
U1 = "Which platform for the north express?"
A1 = "Platform two, at nine."
U2 = "And the local?"


def system(mark: dict[str, Any] | None = EPHEMERAL) -> list[dict[str, Any]]:
    block: dict[str, Any] = {"type": "text", "text": SYSTEM_TEXT}
    if mark is not None:
        block["cache_control"] = mark
    return [block]


def msg(role: str, text: str, mark: dict[str, Any] | None = None) -> dict[str, Any]:
    block: dict[str, Any] = {"type": "text", "text": text}
    if mark is not None:
        block["cache_control"] = mark
    return {"role": role, "content": [block]}


def usage(answer: anthropic.types.Message) -> tuple[int, int, int]:
    u = answer.usage
    return u.cache_read_input_tokens or 0, u.cache_creation_input_tokens or 0, u.input_tokens


async def ask(
    sdk: SDK, messages: list[dict[str, Any]], *, model: str = SONNET, **kw: Any
) -> anthropic.types.Message:
    kw.setdefault("system", system())
    return await sdk.anthropic.messages.create(model=model, max_tokens=20, messages=messages, **kw)  # type: ignore[arg-type]


async def counted(sdk: SDK, messages: list[dict[str, Any]], *, model: str = SONNET, **kw: Any) -> int:
    kw.setdefault("system", system())
    result = await sdk.anthropic.messages.count_tokens(model=model, messages=messages, **kw)  # type: ignore[arg-type]
    return result.input_tokens


async def test_turn_two_reads_the_system_and_history_cached_by_turn_one(sdk: SDK) -> None:
    """Breakpoints on the system prompt and the last message: turn 2 reads turn 1's whole
    prefix (found in the lookback before its last breakpoint) and writes only the new turn."""
    turn1 = [msg("user", U1, EPHEMERAL)]
    first = await ask(sdk, turn1)
    assert usage(first) == (0, 1203 + 9, 3)
    turn2 = [msg("user", U1), msg("assistant", A1), msg("user", U2, EPHEMERAL)]
    second = await ask(sdk, turn2)
    assert usage(second) == (1203 + 9, 7 + 6, 3)
    assert sum(usage(second)) == await counted(sdk, turn2) == 1203 + 9 + 7 + 6 + 3
    again = await ask(sdk, turn2)
    assert usage(again) == (1203 + 9 + 7 + 6, 0, 3)


async def test_the_system_breakpoint_is_read_when_the_history_is_new(sdk: SDK) -> None:
    """The router's markers (system, and the history before the newest message): turn 2 reads
    the system prefix cached at turn 1 instead of writing everything again (the issue's case)."""
    first = await ask(sdk, [msg("user", U1)])
    assert usage(first) == (0, 1203, 9 + 3)
    second = await ask(sdk, [msg("user", U1), msg("assistant", A1, EPHEMERAL), msg("user", U2)])
    assert usage(second) == (1203, 9 + 7, 6 + 3)
    other = await ask(sdk, [msg("user", "Another question entirely?", EPHEMERAL)])
    assert usage(other) == (1203, 3 + 3, 3)


async def test_below_the_models_minimum_nothing_is_cached(sdk: SDK) -> None:
    first = await ask(sdk, [msg("user", U1)], model=HAIKU)  # 1203 < 4096
    second = await ask(sdk, [msg("user", U1)], model=HAIKU)
    assert usage(first) == usage(second) == (0, 0, 1203 + 9 + 3)
    short = [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    assert usage(await ask(sdk, [msg("user", U1)], system=short)) == (0, 0, 5 + 9 + 3)


async def test_the_minimum_is_configurable_for_small_test_prompts(sdk: SDK) -> None:
    sdk.core.configure(MockConfig(prompt_caching=PromptCaching(min_tokens={"default": 0, HAIKU: 1000})))
    short = [{"type": "text", "text": "Be brief.", "cache_control": EPHEMERAL}]
    await ask(sdk, [msg("user", U1)], system=short)
    assert usage(await ask(sdk, [msg("user", U1)], system=short)) == (5, 0, 9 + 3)
    await ask(sdk, [msg("user", U1)], model=HAIKU)
    assert usage(await ask(sdk, [msg("user", U1)], model=HAIKU)) == (1203, 0, 9 + 3)


async def test_a_fifth_breakpoint_is_refused_in_anthropics_shape(sdk: SDK) -> None:
    marked = [msg("user", U1, EPHEMERAL), msg("assistant", A1, EPHEMERAL), msg("user", U2, EPHEMERAL)]
    two_system = [*system(), {"type": "text", "text": "More rules.", "cache_control": EPHEMERAL}]
    assert (await ask(sdk, marked, system=system())).usage.cache_creation_input_tokens
    with pytest.raises(anthropic.BadRequestError) as info:
        await ask(sdk, marked, system=two_system)
    assert info.value.body == {
        "type": "error",
        "error": {
            "type": "invalid_request_error",
            "message": "A maximum of 4 blocks with cache_control may be provided. Found 5.",
        },
        "request_id": info.value.request_id,
    }
    with pytest.raises(anthropic.BadRequestError):  # the top-level marker takes a slot too
        await ask(sdk, [*marked[:2], msg("user", U2)], system=two_system, cache_control=EPHEMERAL)


async def test_entries_expire_after_their_ttl_and_reads_refresh_them(sdk: SDK, mock_clock: FakeClock) -> None:
    await ask(sdk, [msg("user", U1)])
    mock_clock.advance(299)
    assert usage(await ask(sdk, [msg("user", U1)]))[0] == 1203  # read: refreshed for 5 more minutes
    mock_clock.advance(299)
    assert usage(await ask(sdk, [msg("user", U1)]))[0] == 1203
    mock_clock.advance(301)
    assert usage(await ask(sdk, [msg("user", U1)])) == (0, 1203, 12)  # expired: written again
    hour = {"type": "ephemeral", "ttl": "1h"}
    opus = "claude-opus-4-7"  # another model, another cache (not in the docs table: 1024, as Opus)
    written = await ask(sdk, [msg("user", U1)], system=system(hour), model=opus)
    assert written.usage.cache_creation is not None
    assert written.usage.cache_creation.ephemeral_1h_input_tokens == 1203
    assert written.usage.cache_creation.ephemeral_5m_input_tokens == 0
    mock_clock.advance(1800)
    assert usage(await ask(sdk, [msg("user", U1)], system=system(hour), model=opus))[0] == 1203
    with pytest.raises(anthropic.BadRequestError) as info:
        await ask(sdk, [msg("user", U1)], system=system({"type": "ephemeral", "ttl": "2h"}))
    assert "system.0.cache_control.ttl" in str(info.value)


async def test_top_level_cache_control_marks_the_last_block(sdk: SDK) -> None:
    plain = system(None)
    first = await ask(sdk, [msg("user", U1)], system=plain, cache_control=EPHEMERAL)
    assert usage(first) == (0, 1203 + 9, 3)
    turn2 = [msg("user", U1), msg("assistant", A1), msg("user", U2)]
    assert usage(await ask(sdk, turn2, system=plain, cache_control=EPHEMERAL)) == (1212, 13, 3)


async def test_a_stream_reports_the_same_cache_usage(sdk: SDK) -> None:
    await ask(sdk, [msg("user", U1)])
    async with sdk.anthropic.messages.stream(
        model=SONNET,
        max_tokens=20,
        system=system(),  # type: ignore[arg-type]
        messages=[msg("user", U1)],  # type: ignore[list-item]
    ) as stream:
        final = await stream.get_final_message()
    assert usage(final) == (1203, 0, 12)


@pytest.mark.parametrize(
    ("section", "problem"),
    [
        (
            {"min_tokens": {"claude-haiku-4-5": -1}},
            "prompt_caching.min_tokens: min_tokens of 'claude-haiku-4-5' must be 0 or more, not -1",
        ),
        (
            {"min_token": {}},
            "prompt_caching.min_token: unknown field 'min_token'; did you mean 'min_tokens'?",
        ),
    ],
)
def test_a_bad_prompt_caching_section_names_the_field(section: dict[str, Any], problem: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config({"prompt_caching": section}, "mock.yaml")
    assert str(info.value) == f"mock.yaml: invalid mock configuration\n  {problem}"


def test_the_default_minimums_are_anthropics() -> None:
    config = MockConfig()
    minimums = {
        m: config.cache_min_tokens(m) for m in ("claude-sonnet-4-5", "claude-sonnet-4-6", "claude-haiku-4-5")
    }
    assert minimums == {"claude-sonnet-4-5": 1024, "claude-sonnet-4-6": 2048, "claude-haiku-4-5": 4096}
    assert config.cache_min_tokens("claude-opus-4-7") == 1024  # not in the table: Opus-class
    assert config.cache_min_tokens("claude-haiku-9") == 2048  # not in the table: Haiku-class
    assert MockConfig(prompt_caching=PromptCaching(min_tokens={"default": 0})).cache_min_tokens(HAIKU) == 0
