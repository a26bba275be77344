"""The router against the mock providers over real loopback sockets, with chaos faults.

These prove the adapters (wire formats, SSE, error bodies, headers, transport failures) and the
engine together. The router runs on a FakeClock where only its own waits matter (backoff,
retry-after, cooldowns), so nothing sleeps for long; hedging, which needs real time on the wire,
uses limits of a fraction of a second. The limits themselves (a hang, a slow first token, a
stall) are tested without sockets or real time in test_transport_memory.py.
"""

from __future__ import annotations

import socket
from collections.abc import AsyncIterator, Callable
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

import pytest

from chaos import ChaosEngine, Limit, Rule, create_mock_app
from mockproviders.clock import FakeClock as MockFakeClock
from mockproviders.clock import SystemClock as MockSystemClock
from mockproviders.server import MockServer
from router import Router, parse_config
from router import errors as E
from router.audit import AuditLog
from router.clock import FakeClock
from router.types import ChatRequest, EmbeddingRequest, Message, StreamEnd, StreamStart, TextDelta


def rule(name: str, fault: str, **kw: Any) -> Rule:
    return Rule.model_validate({"name": name, "fault": fault, **kw})


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def router_config(urls: dict[str, str], route: dict[str, Any] | None = None, **defaults: Any) -> Any:
    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk-test"},
                "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": "sk-ant-test"},
                "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": "m-test"},
                "local": {"kind": "openai_compatible", "base_url": urls["openai"], "api_key": "none"},
                "dead": {"kind": "openai", "base_url": f"http://127.0.0.1:{free_port()}/v1", "api_key": "x"},
            },
            "models": {
                "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
                "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 256},
                "mistral": {"provider": "mistral", "model": "mistral-small-latest"},
                "local": {"provider": "local", "model": "gpt-4o-mini"},  # a server that serves it
                "dead": {"provider": "dead", "model": "gpt-4o-mini"},
                "embed": {"provider": "openai", "model": "text-embedding-3-small"},
                "membed": {"provider": "mistral", "model": "mistral-embed"},
            },
            "routes": {"main": {"chain": ["gpt", "claude", "mistral"], **(route or {})}},
            "defaults": {
                "retries": 2,
                "backoff_base": "1ms",
                "backoff_max": "2ms",
                "timeouts": {
                    "total": "20s",
                    "connect": "1s",
                    "read": "2s",
                    "first_token": "2s",
                    "idle": "2s",
                },
                "breaker": {"failures": 3, "window": "60s", "cooldown": "30s"},
                **defaults,
            },
        }
    )


class Rig:
    def __init__(
        self, server: MockServer, engine: ChaosEngine, router: Router, log: AuditLog, clock: FakeClock
    ):
        self.server, self.engine, self.router, self.log, self.clock = server, engine, router, log, clock

    def attempts(self) -> list[tuple[str, str, str | None]]:
        rec = self.log.last()
        assert rec is not None
        return [(a.model, a.outcome, a.error_kind) for a in rec.attempts]


RigFactory = Callable[..., AbstractAsyncContextManager[Rig]]


@pytest.fixture
def rig() -> RigFactory:
    @asynccontextmanager
    async def factory(
        *rules: Rule,
        real_time: bool = False,
        route: dict[str, Any] | None = None,
        limits: tuple[Limit, ...] = (),
        **defaults: Any,
    ) -> AsyncIterator[Rig]:
        engine = ChaosEngine(rules, clock=MockSystemClock() if real_time else MockFakeClock(), limits=limits)
        async with MockServer(app=create_mock_app(engine=engine)) as server:
            clock = FakeClock()
            log = AuditLog()
            router = Router(router_config(server.base_urls, route, **defaults), clock=clock, listeners=[log])
            try:
                yield Rig(server, engine, router, log, clock)
            finally:
                await router.aclose()

    return factory


def ask(model: str = "main", **kw: Any) -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", "Say something about trains.")], **kw)


async def collect(router: Router, request: ChatRequest) -> list[Any]:
    return [ev async for ev in router.stream(request)]


# --- healthy paths ----------------------------------------------------------------------------------


@pytest.mark.parametrize("model", ["gpt", "claude", "mistral", "local"])
async def test_every_provider_complete_and_stream(rig: RigFactory, model: str) -> None:
    async with rig() as r:
        resp = await r.router.complete(ask(model, system="Be brief.", max_tokens=50))
        assert resp.content and resp.model == model and resp.finish_reason == "stop"
        assert resp.usage.input_tokens > 0 and resp.usage.output_tokens > 0
        if model != "local":
            assert resp.cost_usd is not None and resp.cost_usd > 0
        events = await collect(r.router, ask(model))
        assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text and text == events[-1].response.content
        assert events[-1].response.usage.output_tokens > 0 and events[-1].response.ttft_s is not None


async def test_embeddings(rig: RigFactory) -> None:
    async with rig() as r:
        for model in ("embed", "membed"):
            resp = await r.router.embed(EmbeddingRequest(model=model, input=["a", "b"]))
            assert len(resp.vectors) == 2 and resp.vectors[0] and resp.usage.input_tokens > 0
        # a caller's mistake: refused before any call, and it never counts against the deployment
        for _ in range(20):
            with pytest.raises(E.Unsupported, match="'claude' serves chat, not embeddings") as info:
                await r.router.embed(EmbeddingRequest(model="claude", input=["a"]))
            assert info.value.http_status == 400
            assert r.attempts() == []  # no call made
        assert r.router.deployment("claude").breaker.snapshot()["calls"] == 0
        for route in ("main", "embed"):  # and the other way round: chat of an embedding model
            if route == "embed":
                with pytest.raises(E.Unsupported, match="serves embeddings, not chat"):
                    await r.router.complete(ask(route))
            else:
                assert (await r.router.complete(ask(route))).model == "gpt"


# --- status errors -----------------------------------------------------------------------------------


async def test_503_is_retried_then_falls_back(rig: RigFactory) -> None:
    async with rig(rule("down", "server_error", params={"status": 503}, match={"provider": "openai"})) as r:
        resp = await r.router.complete(ask())
        assert resp.model == "claude" and resp.attempts == 4
        assert r.attempts() == [("gpt", "error", "server")] * 3 + [("claude", "success", None)]


async def test_retry_after_is_honoured(rig: RigFactory) -> None:
    limited = rule(
        "rl", "rate_limit", params={"retry_after": 2}, match={"provider": "openai"}, when={"first": 1}
    )
    async with rig(limited) as r:
        resp = await r.router.complete(ask())
        assert resp.model == "gpt"
        rec = r.log.last()
        assert (
            rec is not None and rec.attempts[1].wait_source == "retry-after" and rec.attempts[1].wait_s == 2.0
        )
        assert r.clock.sleeps == [2.0]  # the router's clock waited exactly what was asked


async def test_retry_after_above_the_cap_falls_back_at_once(rig: RigFactory) -> None:
    async with rig(rule("rl", "rate_limit", params={"retry_after": 120}, match={"provider": "openai"})) as r:
        assert (await r.router.complete(ask())).model == "claude"
        assert r.clock.sleeps == []
        assert r.attempts()[0] == ("gpt", "error", "rate_limit")
        for _ in range(2):  # 429s that keep coming (3 in a row) hold the deployment
            assert (await r.router.complete(ask())).model == "claude"
            assert r.attempts()[0] == ("gpt", "error", "rate_limit")
        assert (await r.router.complete(ask())).model == "claude"
        assert r.attempts()[0] == ("gpt", "skipped", "unavailable")  # held back until then


@pytest.mark.parametrize(
    ("fault", "params", "kind"),
    [
        ("insufficient_quota", {}, "quota"),
        ("unauthorized", {}, "auth"),
        ("not_found", {}, "not_found"),
        ("server_error", {"status": 503, "should_retry": False}, "server"),
    ],
)
async def test_not_retried_on_the_same_model(
    rig: RigFactory, fault: str, params: dict[str, Any], kind: str
) -> None:
    async with rig(rule("f", fault, params=params, match={"provider": "openai"})) as r:
        assert (await r.router.complete(ask())).model == "claude"
        assert r.attempts() == [("gpt", "error", kind), ("claude", "success", None)]


async def test_context_length_goes_to_the_larger_model(rig: RigFactory) -> None:
    async with rig(
        rule("ctx", "context_length", match={"provider": "openai"}),
        route={"on_error": {"context_length": ["mistral"]}},
    ) as r:
        assert (await r.router.complete(ask())).model == "mistral"
        assert r.attempts() == [("gpt", "error", "context_length"), ("mistral", "success", None)]


async def test_content_policy_reason_reaches_the_caller(rig: RigFactory) -> None:
    async with rig(
        rule("pol", "content_policy", params={"message": "refused: trains"}, match={"provider": "openai"})
    ) as r:
        with pytest.raises(E.ContentPolicy, match="refused: trains") as info:
            await r.router.complete(ask())
        assert info.value.status == 400 and info.value.provider == "openai"
        assert r.attempts() == [("gpt", "error", "content_policy")]


async def test_anthropic_529_overloaded(rig: RigFactory) -> None:
    async with rig(rule("ov", "overloaded", match={"provider": "anthropic"})) as r:
        with pytest.raises(E.AllAttemptsFailed) as info:
            await r.router.complete(ask("claude"))
        assert {e.kind for e in info.value.errors} == {E.ErrorKind.OVERLOADED}
        assert all(e.status == 529 for e in info.value.errors)


# --- transport failures ------------------------------------------------------------------------------


async def test_connection_refused_fails_over(rig: RigFactory) -> None:
    async with rig(route={"chain": ["dead", "gpt"]}) as r:
        assert (await r.router.complete(ask())).model == "gpt"
        assert r.attempts()[0] == ("dead", "error", "connect")


async def test_reset_is_retried(rig: RigFactory) -> None:
    async with rig(rule("rst", "reset", match={"provider": "openai"}, when={"first": 1})) as r:
        assert (await r.router.complete(ask())).model == "gpt"
        assert r.attempts() == [("gpt", "error", "connect"), ("gpt", "success", None)]


# --- streams -----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("fault", "params", "cause"),
    [
        ("cut", {"after_tokens": 3}, E.ErrorKind.STREAM_CUT),
        ("error_event", {"after_tokens": 3, "type": "overloaded_error"}, E.ErrorKind.OVERLOADED),
    ],
)
@pytest.mark.parametrize("provider", ["openai", "anthropic"])
async def test_a_failure_after_output_is_never_a_success(
    rig: RigFactory, fault: str, params: dict[str, Any], cause: E.ErrorKind, provider: str
) -> None:
    model = {"openai": "gpt", "anthropic": "claude"}[provider]
    async with rig(rule("f", fault, params=params, match={"provider": provider})) as r:
        got: list[Any] = []
        with pytest.raises(E.StreamInterrupted) as info:
            async for ev in r.router.stream(ask(model)):
                got.append(ev)
        assert isinstance(got[0], StreamStart) and not any(isinstance(e, StreamEnd) for e in got)
        assert info.value.partial == "".join(e.text for e in got if isinstance(e, TextDelta))
        assert info.value.cause_kind is cause
        rec = r.log.last()
        assert rec is not None and rec.outcome == "error"


async def test_anthropic_without_message_stop_is_cut(rig: RigFactory) -> None:
    async with rig(rule("f", "drop_terminator", match={"provider": "anthropic"})) as r:
        with pytest.raises(E.StreamInterrupted) as info:
            await collect(r.router, ask("claude"))
        assert info.value.cause_kind is E.ErrorKind.STREAM_CUT


@pytest.mark.parametrize("model", ["gpt", "mistral"])
async def test_an_openai_style_stream_complete_but_for_done_is_a_success(rig: RigFactory, model: str) -> None:
    """Finish reason sent, body ended cleanly, no `data: [DONE]` (some compatible servers omit it)."""
    provider = {"gpt": "openai", "mistral": "mistral"}[model]
    async with rig(rule("f", "drop_terminator", match={"provider": provider})) as r:
        events = await collect(r.router, ask(model))
        assert isinstance(events[-1], StreamEnd)
        text = "".join(e.text for e in events if isinstance(e, TextDelta))
        assert text and events[-1].response.content == text
        assert r.attempts() == [(model, "success", None)]
        assert r.router.deployment(model).stream_breaker.snapshot()["failures"] == 0


@pytest.mark.parametrize(
    ("fault", "params", "kind"),
    [
        ("error_event", {"after_tokens": 0, "type": "overloaded_error"}, "overloaded"),
        ("malformed_event", {"at": 0}, "malformed"),
        ("cut", {"after_tokens": 0}, "stream_cut"),
    ],
)
async def test_a_failure_before_output_fails_over(
    rig: RigFactory, fault: str, params: dict[str, Any], kind: str
) -> None:
    async with rig(
        rule("f", fault, params=params, match={"provider": "anthropic"}), route={"chain": ["claude", "gpt"]}
    ) as r:
        events = await collect(r.router, ask())
        assert events[0].model == "gpt" and isinstance(events[-1], StreamEnd)
        assert r.attempts()[0] == ("claude", "error", kind)


async def test_buffered_stream_fails_over_a_cut_cleanly(rig: RigFactory) -> None:
    async with rig(
        rule("cut", "cut", params={"after_tokens": 3}, match={"provider": "openai"}),
        route={"buffer_stream": True},
        retries=0,
    ) as r:
        events = await collect(r.router, ask())
        assert events[0].model == "claude" and isinstance(events[-1], StreamEnd)
        assert "".join(e.text for e in events if isinstance(e, TextDelta)) == events[-1].response.content


# --- breaker and hedging -----------------------------------------------------------------------------


async def test_a_dead_provider_costs_one_breaker_then_traffic_returns(rig: RigFactory) -> None:
    async with rig(
        rule("down", "server_error", params={"status": 500}, match={"provider": "openai"}), retries=0
    ) as r:
        for _ in range(3):
            assert (await r.router.complete(ask())).model == "claude"
        hits = len(r.engine.journal)
        for _ in range(5):
            assert (await r.router.complete(ask())).model == "claude"
        gpt_hits = [e for e in r.engine.journal[hits:] if e.get("provider") == "openai"]
        assert gpt_hits == []  # open: not one request reached it
        r.engine.clear_rules()  # it recovers
        r.clock.advance(30.0)
        assert (await r.router.complete(ask())).model == "gpt"
        assert r.router.snapshot()["deployments"]["gpt"]["breaker"]["state"] == "closed"


async def test_hedge_starts_the_next_model_and_keeps_the_first_answer(rig: RigFactory) -> None:
    async with rig(
        rule("slow", "latency", params={"delay": "600ms"}, match={"provider": "openai"}),
        real_time=True,
        route={"hedge": {"after": "100ms"}},
    ) as r:
        resp = await r.router.complete(ask())
        assert resp.model == "claude"
        assert sorted(r.attempts()) == [("claude", "success", None), ("gpt", "cancelled", None)]


async def test_a_429_holds_the_deployment_back_for_everyone(rig: RigFactory) -> None:
    limit = Limit.model_validate({"match": {"provider": "openai"}, "rpm": 2})
    async with rig(limits=(limit,)) as r:
        assert [(await r.router.complete(ask())).model for _ in range(3)] == ["gpt", "gpt", "claude"]
        seen = len(r.engine.journal)
        assert (await r.router.complete(ask())).model == "claude"
        assert r.attempts()[0] == ("gpt", "skipped", "unavailable")
        assert [e["provider"] for e in r.engine.journal[seen:]] == ["anthropic"]  # no second 429
        assert r.router.snapshot()["deployments"]["gpt"]["limiter"]["blocked_for_s"] > 0
