"""What an attempt cost, from genai-prices or from the config's per-deployment prices.

``genai_prices.calc_price`` takes about 250 us a call, too slow for every attempt. So each
deployment's prices are read once, as per-token rates found by probing ``calc_price`` with small
usages; when the probes show the price is not linear (tiered prices, e.g. above 200k input
tokens), the exact ``calc_price`` is called instead, through a bounded cache. Unknown models (and
OpenAI-compatible servers, whose model names say nothing about a price) cost ``None``. Which
genai-prices provider a deployment's model is looked up under is its provider kind's fact
(:attr:`router.adapters.Provider.price_id`).

Token convention: ``Usage.input_tokens`` counts every prompt token, cached ones included (the
adapters normalize Anthropic's usage to that), as genai-prices expects.
"""

from __future__ import annotations

import functools
import warnings
from dataclasses import dataclass

from router.types import Usage

__all__ = ["PriceTable", "Rates"]

_PROBE = 1000
_M = 1_000_000


@dataclass(frozen=True, slots=True)
class Rates:
    """USD per token."""

    input: float
    output: float
    cached: float
    cache_write: float
    linear: bool = True

    @classmethod
    def per_million(
        cls, input: float, output: float, cached: float | None = None, cache_write: float | None = None
    ) -> Rates:
        return cls(
            input / _M,
            output / _M,
            (input if cached is None else cached) / _M,
            (input if cache_write is None else cache_write) / _M,
        )

    def cost(self, u: Usage) -> float:
        uncached = max(0, u.input_tokens - u.cached_input_tokens - u.cache_write_tokens)
        return (
            uncached * self.input
            + u.cached_input_tokens * self.cached
            + u.cache_write_tokens * self.cache_write
            + u.output_tokens * self.output
        )


def _genai_price(provider_id: str, model: str, inp: int, out: int, cached: int, write: int) -> float:
    from genai_prices import Usage as GUsage
    from genai_prices import calc_price

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        usage = GUsage(
            input_tokens=inp, output_tokens=out, cache_read_tokens=cached, cache_write_tokens=write
        )
        return float(calc_price(usage, model, provider_id=provider_id).total_price)


@functools.lru_cache(maxsize=4096)
def _exact(provider_id: str, model: str, inp: int, out: int, cached: int, write: int) -> float:
    return _genai_price(provider_id, model, inp, out, cached, write)


def probe_rates(provider_id: str, model: str) -> Rates | None:
    """Per-token rates of a model from genai-prices, or ``None`` if it does not know the model."""
    try:
        p_in = _genai_price(provider_id, model, _PROBE, 0, 0, 0)
        p_out = _genai_price(provider_id, model, 0, _PROBE, 0, 0)
        p_cached = _genai_price(provider_id, model, _PROBE, 0, _PROBE, 0)
        p_write = _genai_price(provider_id, model, _PROBE, 0, 0, _PROBE)
        big_in = _genai_price(provider_id, model, _M, 0, 0, 0)
        big_out = _genai_price(provider_id, model, 0, _M, 0, 0)
    except (LookupError, ValueError, TypeError, ArithmeticError):
        return None
    r_in, r_out = p_in / _PROBE, p_out / _PROBE
    linear = abs(big_in - r_in * _M) <= 1e-9 * max(1.0, big_in) and abs(big_out - r_out * _M) <= 1e-9 * max(
        1.0, big_out
    )
    return Rates(r_in, r_out, p_cached / _PROBE, p_write / _PROBE, linear)


class PriceTable:
    """Cost per attempt; rates looked up once per deployment."""

    __slots__ = ("_rates",)

    def __init__(self) -> None:
        self._rates: dict[str, tuple[str, str, Rates | None]] = {}

    def register(
        self, deployment: str, provider_id: str | None, model: str, override: Rates | None = None
    ) -> None:
        """Price ``deployment`` from ``override``, else from genai-prices under ``provider_id``
        (looked up now, once); no ``provider_id`` and no override: no price."""
        provider_id = provider_id or ""
        if override is not None:
            rates: Rates | None = override
        elif provider_id:
            rates = probe_rates(provider_id, model)
        else:
            rates = None
        self._rates[deployment] = (provider_id, model, rates)

    def rates(self, deployment: str) -> Rates | None:
        entry = self._rates.get(deployment)
        return entry[2] if entry else None

    def cost(self, deployment: str, usage: Usage | None) -> float | None:
        """USD for ``usage`` on ``deployment``; ``None`` when no price is known."""
        entry = self._rates.get(deployment)
        if entry is None or usage is None:
            return None
        provider_id, model, rates = entry
        if rates is None:
            return None
        if rates.linear:
            return rates.cost(usage)
        try:
            return _exact(
                provider_id,
                model,
                usage.input_tokens,
                usage.output_tokens,
                usage.cached_input_tokens,
                usage.cache_write_tokens,
            )
        except (LookupError, ValueError, TypeError, ArithmeticError):
            return rates.cost(usage)
