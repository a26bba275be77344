"""Cost: genai-prices rates looked up once, overrides, unknown models."""

from genai_prices import Usage as GUsage
from genai_prices import calc_price

from router.cost import PriceTable, Rates
from router.types import Usage


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
