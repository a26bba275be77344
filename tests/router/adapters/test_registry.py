"""Every registered provider kind meets the same contract (run over PROVIDERS, so a new row is
checked the moment it is added)."""

from __future__ import annotations

import pytest
from genai_prices import data as genai_data

from router import ConfigError, parse_config
from router.adapters import CODECS, PROVIDERS, HttpAdapter, make_adapter, make_deployment, provider_for
from router.batch.client import batch_class
from router.types import ChatRequest, Message

KINDS = sorted(PROVIDERS)
GENAI_PROVIDERS = {p.id for p in genai_data.providers}


@pytest.mark.parametrize("kind", KINDS)
async def test_each_kind_is_complete(kind: str) -> None:
    spec = PROVIDERS[kind]
    assert spec.kind == kind and CODECS[kind] is spec.codec and provider_for(kind) is spec
    adapter = make_adapter(kind)
    assert isinstance(adapter, HttpAdapter) and adapter.codec is spec.codec
    await adapter.aclose()
    dep = make_deployment("d", provider="p", kind=kind, model="m", base_url="http://h/v1/", api_key="k")
    assert dep.chat_url.startswith("http://h/v1/") and dep.continuation is spec.continues
    body = spec.codec.to_wire(ChatRequest("r", [Message("user", "hi")], max_tokens=7), dep)
    assert 7 in body.values()  # under the kind's own field name
    # a dialect reads nothing from a response without rate-limit headers, and never holds on it
    assert spec.ratelimits.parse({"content-type": "application/json"}, 0.0) is None
    assert not spec.ratelimits.exhausted({"content-type": "application/json"})
    assert spec.price_id is None or spec.price_id in GENAI_PROVIDERS
    assert not spec.continues or spec.may_continue
    if spec.batch is None:
        with pytest.raises(ValueError, match="batches are supported on kinds"):
            batch_class(dep)
    else:
        assert batch_class(dep).__name__.lower().startswith(spec.batch)


@pytest.mark.parametrize("kind", KINDS)
def test_config_accepts_every_registered_kind(kind: str) -> None:
    cfg = parse_config(
        {
            "providers": {"p": {"kind": kind, "base_url": "http://h/v1"}},
            "models": {"m": {"provider": "p", "model": "x"}},
        }
    )
    assert cfg.providers["p"].kind == kind


def test_an_unknown_kind_is_told_the_registered_ones() -> None:
    with pytest.raises(ConfigError, match=r"providers\.p\.kind: 'bard' is not one of 'openai', 'anthropic'"):
        parse_config({"providers": {"p": {"kind": "bard", "base_url": "http://h"}}, "models": {}})
    with pytest.raises(ValueError, match="unknown provider kind 'bard'"):
        provider_for("bard")
