"""The runtime built from a config: the rate-limit header hook each deployment gets."""

from __future__ import annotations

import pytest
from router_fakes import FakeAdapter, config

from router import Router
from router.adapters import PROVIDERS
from router.clock import FakeClock
from router.headers import RateLimitDialect, RateLimitSnapshot


def make(models: dict[str, dict[str, int]] | None = None) -> Router:
    clock = FakeClock()
    return Router(config(("a", "b"), models=models), clock=clock, adapters={"p": FakeAdapter(clock)})


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    calls: list[str] = []

    kinds: dict[RateLimitDialect, str] = {}
    for kind, spec in PROVIDERS.items():
        kinds.setdefault(spec.ratelimits, kind)  # the first kind that declares each dialect
    parse = RateLimitDialect.parse

    def counting(
        self: RateLimitDialect, headers: object, now: float | None = None
    ) -> RateLimitSnapshot | None:
        calls.append(kinds[self])
        return parse(self, headers, now)  # type: ignore[arg-type]

    monkeypatch.setattr(RateLimitDialect, "parse", counting)
    return calls


HEALTHY = {"x-ratelimit-remaining-requests": "499", "x-ratelimit-reset-requests": "120ms"}
EMPTY = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "2s"}


def test_without_limits_headers_are_parsed_only_when_a_quota_is_exhausted(parses: list[str]) -> None:
    rt = make().deployment("a")
    rt.on_headers(HEALTHY)
    assert parses == [] and rt.limiter.blocked_for() == 0.0  # nothing it could act on
    rt.on_headers(EMPTY)
    assert parses == ["openai"]
    assert rt.limiter.blocked_for() == pytest.approx(2.0)  # "0 left until the reset" still holds


def test_with_limits_every_response_is_learned_from(parses: list[str]) -> None:
    rt = make({"a": {"rpm": 500}}).deployment("a")
    rt.on_headers({"x-ratelimit-remaining-requests": "3"})
    assert parses == ["openai"]
    assert rt.limiter.snapshot()["requests_available"] == 3.0  # the provider's lower count
    rt.on_headers(HEALTHY)
    assert len(parses) == 2
