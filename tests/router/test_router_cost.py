"""Cost: genai-prices rates looked up once, overrides, unknown models; prompt-cache reads and
writes priced as Anthropic bills them, end to end through the mock."""

from genai_prices import Usage as GUsage
from genai_prices import calc_price

from mockproviders.server import MockServer, create_app
from router import Router, parse_config
from router.cost import PriceTable, Rates
from router.types import ChatRequest, Message, Usage


def test_linear_rates_match_genai_prices() -> None:
    t = PriceTable()
    t.register("mini", "openai", "gpt-4o-mini")
    u = Usage(input_tokens=1200, output_tokens=300, cached_input_tokens=200)
    expected = calc_price(
        GUsage(input_tokens=1200, output_tokens=300, cache_read_tokens=200),
        "gpt-4o-mini",
        provider_id="openai",
    )
    assert abs(t.cost("mini", u) - float(expected.total_price)) < 1e-12  # type: ignore[operator]


def test_tiered_model_uses_exact_price() -> None:
    t = PriceTable()
    t.register("sonnet", "anthropic", "claude-sonnet-4-5")
    big = Usage(input_tokens=300_000, output_tokens=10)
    expected = calc_price(
        GUsage(input_tokens=300_000, output_tokens=10), "claude-sonnet-4-5", provider_id="anthropic"
    )
    assert abs(t.cost("sonnet", big) - float(expected.total_price)) < 1e-9  # type: ignore[operator]


def test_override_and_unknown() -> None:
    t = PriceTable()
    t.register("mine", None, "llama", Rates.per_million(1.0, 2.0))  # openai_compatible: no price id
    t.register("local", None, "llama")
    t.register("odd", "openai", "no-such-model-xyz")
    assert t.cost("mine", Usage(1_000_000, 500_000)) == 2.0
    assert t.cost("local", Usage(10, 10)) is None
    assert t.cost("odd", Usage(10, 10)) is None
    assert t.cost("never-registered", Usage(10, 10)) is None


def _sonnet_price(usage: GUsage) -> float:
    return float(calc_price(usage, "claude-sonnet-4-5", provider_id="anthropic").total_price)


async def test_cache_reads_and_writes_cost_what_anthropic_bills_end_to_end() -> None:
    """Router -> the mock's Anthropic over a socket, two turns of one conversation with the
    route's cache markers (system, and the history before the newest message): turn 2 reads the
    system prefix turn 1 wrote, writes only the history, and costs what genai-prices says for the
    reported read, write and uncached tokens; less than the same turn without caching."""
    system = "You are a railway expert. " * 220  # 1100 words: above the 1024-token minimum

    def config(base_url: str) -> dict[str, object]:
        return {
            "providers": {"anthropic": {"kind": "anthropic", "base_url": base_url, "api_key": "sk-ant"}},
            "models": {"claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 64}},
            "routes": {
                "cached": {"chain": ["claude"], "cache": {"markers": "auto", "min_prefix_tokens": 1024}},
                "plain": {"chain": ["claude"]},
            },
            "defaults": {"retries": 0},
        }

    turn1 = [Message("user", "Which platform for the north express?")]
    turn2 = [*turn1, Message("assistant", "Platform two, at nine."), Message("user", "And the local?")]
    async with (
        MockServer(app=create_app()) as server,
        Router(parse_config(config(server.base_urls["anthropic"]))) as router,
    ):
        first = await router.complete(ChatRequest("cached", turn1, system=system))
        second = await router.complete(ChatRequest("cached", turn2, system=system))
        plain = await router.complete(ChatRequest("plain", turn2, system=system))
    # turn 1 writes the system prompt (1100 words + 3); turn 2 reads it and writes the history
    assert (first.usage.cached_input_tokens, first.usage.cache_write_tokens) == (0, 1103)
    u = second.usage
    assert (u.cached_input_tokens, u.cache_write_tokens) == (1103, 9 + 7)
    raw = second.raw["usage"]
    assert raw["cache_read_input_tokens"] == u.cached_input_tokens
    assert raw["cache_creation_input_tokens"] == u.cache_write_tokens
    assert raw["input_tokens"] == u.input_tokens - u.cached_input_tokens - u.cache_write_tokens == 6 + 3
    expected = _sonnet_price(
        GUsage(
            input_tokens=u.input_tokens,
            cache_read_tokens=u.cached_input_tokens,
            cache_write_tokens=u.cache_write_tokens,
            output_tokens=u.output_tokens,
        )
    )
    assert second.cost_usd is not None and abs(second.cost_usd - expected) < 1e-12
    # without markers the same turn is billed whole, at the full input rate
    assert (plain.usage.cached_input_tokens, plain.usage.cache_write_tokens) == (0, 0)
    assert plain.usage.input_tokens == u.input_tokens and plain.usage.output_tokens == u.output_tokens
    uncached = _sonnet_price(GUsage(input_tokens=u.input_tokens, output_tokens=u.output_tokens))
    assert plain.cost_usd is not None and abs(plain.cost_usd - uncached) < 1e-12
    assert second.cost_usd < plain.cost_usd
    # and the conversation as a whole: the write premium of turn 1 is paid back by turn 2's read
    first_uncached = _sonnet_price(
        GUsage(input_tokens=first.usage.input_tokens, output_tokens=first.usage.output_tokens)
    )
    assert first.cost_usd is not None and first.cost_usd + second.cost_usd < first_uncached + plain.cost_usd
