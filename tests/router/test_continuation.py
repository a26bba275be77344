"""A stream that fails after output began is continued on a deployment that can continue it.

The pure parts (which plan, which request, the splice) are tested alone; the rest runs the
router against the mock over loopback sockets, with chaos faults that hit only the first stream,
so the continuation's answer can be compared with the mock's deterministic one; a stall, which
would need real time on a socket, runs on the in-memory transport and a fake clock.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st
from memory_upstream import anthropic_sse
from memory_upstream import config as memory_config

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.clock import FakeClock as MockFakeClock
from mockproviders.clock import SystemClock as MockSystemClock
from mockproviders.server import MockServer
from router import ConfigError, Router, parse_config
from router import errors as E
from router._continuation import Splice, continuation_plan, continuation_request
from router.adapters import CODECS, anthropic, make_deployment, mistral
from router.audit import AuditLog, record_to_dict
from router.clock import FakeClock
from router.transport import MemoryTransport, Pause
from router.types import (
    AuditRecord,
    ChatRequest,
    Message,
    StreamEnd,
    StreamStart,
    TextDelta,
    ToolCallDelta,
    ToolSpec,
)

# --- the pure parts ----------------------------------------------------------------------------------


def test_the_splice_drops_the_whitespace_the_prefill_left_out() -> None:
    s = Splice("Hello, ")
    assert s.feed(" world") == "world"
    assert s.feed(" again") == " again"  # once only


def test_the_splice_keeps_text_the_caller_has_not_seen() -> None:
    s = Splice("Hello,\n\n")
    assert s.feed("\n") == ""  # whitespace alone, already sent: wait for more
    assert s.feed("\nNext") == "Next"
    assert Splice("Hello").feed(" world") == " world"


def test_the_splice_drops_an_echoed_prefill() -> None:
    s = Splice("The train")
    assert s.feed("The ") == "" and s.feed("train") == ""  # held, then dropped as an echo
    assert s.feed(" leaves") == " leaves"
    held = Splice("The train")
    assert held.feed("The tr") == ""
    assert held.flush() == "The tr"  # it ended there: it was text after all


@given(st.text(min_size=1), st.text(), st.integers(min_value=1, max_value=5))
def test_a_continuation_of_an_answer_rebuilds_the_answer(head: str, tail: str, pieces: int) -> None:
    """Whatever the cut, sent + spliced(rest of the answer after the prefill) == the answer."""
    answer = head + tail
    sent = head
    prefill = continuation_request(ChatRequest("m", []), sent).prefill or ""
    rest = answer[len(prefill) :]  # what a provider continuing its own answer sends
    s = Splice(sent)
    size = max(1, len(rest) // pieces)
    out = "".join(s.feed(rest[i : i + size]) for i in range(0, len(rest), size)) + s.flush()
    if prefill and rest.startswith(prefill):
        return  # an answer that repeats its own beginning reads as an echo: out of scope
    assert sent + out == answer


def plan_config(**models: dict[str, Any]) -> Router:
    return Router(
        parse_config(
            {
                "providers": {
                    "o": {"kind": "openai", "base_url": "http://127.0.0.1:9/v1"},
                    "a": {"kind": "anthropic", "base_url": "http://127.0.0.1:9"},
                    "m": {"kind": "mistral", "base_url": "http://127.0.0.1:9"},
                    "v": {"kind": "openai_compatible", "base_url": "http://127.0.0.1:9/v1"},
                },
                "models": models,
                "routes": {"r": {"chain": list(models)}},
            }
        )
    )


async def test_the_continuation_plan_keeps_only_deployments_that_can_continue() -> None:
    async with plan_config(
        gpt={"provider": "o", "model": "x"},
        claude={"provider": "a", "model": "x"},
        vllm={"provider": "v", "model": "x", "continuation": True},
        local={"provider": "v", "model": "x"},
        mis={"provider": "m", "model": "x"},
    ) as r:
        plans, deps = r._plans, r._deployments
        got = continuation_plan(plans["r"], "claude", deps)
        assert got is not None and got.chain == ("claude", "vllm", "mis")  # itself first, then later ones
        assert got.on_error[E.ErrorKind.BAD_REQUEST] == got.chain  # a refusal moves on
        after_gpt = continuation_plan(plans["r"], "gpt", deps)
        assert after_gpt is not None and after_gpt.chain == ("claude", "vllm", "mis")
        assert continuation_plan(plans["r"], "mis", deps) is not None
        assert continuation_plan(plans["gpt"], "gpt", deps) is None


def test_openai_cannot_be_configured_to_continue() -> None:
    with pytest.raises(ConfigError, match=r"models\.gpt\.continuation"):
        plan_config(gpt={"provider": "o", "model": "x", "continuation": True})


def test_each_adapter_sends_the_prefill_its_provider_s_way() -> None:
    req = continuation_request(ChatRequest("m", [Message("user", "hi")]), "The answer so far ")
    assert req.prefill == "The answer so far"

    def dep(kind: str) -> Any:
        return make_deployment("d", provider="p", kind=kind, model="x", base_url="http://h")

    body = anthropic.to_wire(req, dep("anthropic"))
    assert body["messages"][-1] == {"role": "assistant", "content": "The answer so far"}
    body = mistral.to_wire(req, dep("mistral"))
    assert body["messages"][-1] == {"role": "assistant", "content": "The answer so far", "prefix": True}
    body = CODECS["openai_compatible"].to_wire(req, dep("openai_compatible"))
    assert body["messages"][-1] == {"role": "assistant", "content": "The answer so far"}
    assert body["continue_final_message"] is True and body["add_generation_prompt"] is False
    assert "continue_final_message" not in CODECS["openai"].to_wire(req, dep("openai"))
    plain = ChatRequest("m", [Message("user", "hi")])
    assert anthropic.to_wire(plain, dep("anthropic"))["messages"][-1]["role"] == "user"


# --- through the mock ----------------------------------------------------------------------------------


def config(urls: dict[str, str], chain: list[str], idle: str = "2s", failures: int = 10) -> Any:
    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk-test"},
                "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": "sk-ant"},
                "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": "m-test"},
            },
            "models": {
                "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
                "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 256},
                "mistral": {"provider": "mistral", "model": "mistral-small-latest"},
            },
            "routes": {"main": {"chain": chain}},
            "defaults": {
                "retries": 1,
                "backoff_base": "1ms",
                "backoff_max": "2ms",
                "breaker": {"failures": failures},
                "timeouts": {
                    "total": "20s",
                    "connect": "1s",
                    "read": "2s",
                    "first_token": "2s",
                    "idle": idle,
                },
            },
        }
    )


def once(fault: str, provider: str, n: int = 1, **params: Any) -> Rule:
    """``fault`` on the first ``n`` streams to ``provider``."""
    return Rule.model_validate(
        {
            "name": f"{fault}-{provider}",
            "fault": fault,
            "params": params,
            "match": {"provider": provider},
            "when": {"first": n},
        }
    )


@asynccontextmanager
async def stack(
    chain: list[str], *rules: Rule, real_time: bool = False, idle: str = "2s", failures: int = 10
) -> AsyncIterator[tuple[Router, AuditLog]]:
    engine = ChaosEngine(list(rules), clock=MockSystemClock() if real_time else MockFakeClock())
    async with MockServer(app=create_mock_app(engine=engine)) as server:
        log = AuditLog()
        router = Router(config(server.base_urls, chain, idle, failures), clock=FakeClock(), listeners=[log])
        try:
            yield router, log
        finally:
            await router.aclose()


def ask(**kw: Any) -> ChatRequest:
    return ChatRequest(model="main", messages=[Message("user", "Say something about trains.")], **kw)


async def whole_answer(chain: list[str]) -> str:
    """What the mock answers on ``chain``'s first deployment with no fault (deterministic)."""
    async with stack(chain) as (router, _):
        return (await router.complete(ask())).content


def audit(log: AuditLog) -> AuditRecord:
    rec = log.last()
    assert rec is not None
    return rec


@pytest.mark.parametrize(
    ("fault", "params", "kind"),
    [
        ("cut", {"after_tokens": 4}, "stream_cut"),
        ("malformed_event", {"at": 4}, "malformed"),
        ("error_event", {"after_tokens": 4, "type": "overloaded_error"}, None),
        ("drop_terminator", {}, "stream_cut"),
    ],
)
@pytest.mark.parametrize(("provider", "model"), [("anthropic", "claude"), ("mistral", "mistral")])
async def test_a_stream_cut_mid_answer_is_continued_into_the_whole_answer(
    fault: str, params: dict[str, Any], kind: str | None, provider: str, model: str
) -> None:
    expected = await whole_answer([model])
    async with stack([model], once(fault, provider, **params)) as (router, log):
        events = [ev async for ev in router.stream(ask())]
    starts = [e for e in events if isinstance(e, StreamStart)]
    ends = [e for e in events if isinstance(e, StreamEnd)]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    assert len(starts) == 1 and len(ends) == 1 and events[0] is starts[0] and events[-1] is ends[0]
    assert text == expected == ends[0].response.content  # no duplicate, no gap
    rec = audit(log)
    if fault == "drop_terminator" and provider == "mistral":  # finish reason + clean end: complete
        assert rec.continuation is None and len(rec.attempts) == 1
        return
    assert rec.outcome == "success" and rec.continuation == "continued"
    first, second = rec.attempts
    assert (first.model, first.outcome, second.model, second.outcome) == (model, "error", model, "success")
    if kind is not None:
        assert first.error_kind == kind
    assert second.continued_from is not None and 0 < second.continued_from <= len(expected)
    assert any("characters carried over" in d for d in rec.decisions)
    logged = record_to_dict(rec)
    assert logged["continuation"] == "continued"
    assert logged["attempts"][1]["continued_from"] == second.continued_from
    # Usage summed over both attempts (the cut one estimated), cost per attempt.
    resp = ends[0].response
    assert first.usage is not None and second.usage is not None
    assert resp.usage.output_tokens == first.usage.output_tokens + second.usage.output_tokens
    assert resp.usage.input_tokens == first.usage.input_tokens + second.usage.input_tokens
    assert first.cost_usd is not None and second.cost_usd is not None
    assert resp.cost_usd == pytest.approx(first.cost_usd + second.cost_usd)
    assert resp.attempts == 2


async def test_a_stall_mid_answer_is_continued() -> None:
    """On the in-memory transport and the router's fake clock: the stall costs the idle limit
    there, and no real time here (it took a real 0.1 s idle limit against the mock)."""
    clock = FakeClock()
    upstream = MemoryTransport(clock=clock)
    stalled = anthropic_sse("The answer ", "is ", Pause(600.0), "never sent")
    upstream.add("/messages", stalled, anthropic_sse("forty-two."))
    cfg = memory_config(("claude",), continuation=True, timeouts={"total": "60s", "idle": "2s"}, retries=1)
    log = AuditLog()
    router = Router(cfg, clock=clock, transport=upstream, listeners=[log])
    events = [ev async for ev in router.stream(ask())]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == "The answer is forty-two."
    rec = audit(log)
    assert [(a.outcome, a.error_kind) for a in rec.attempts] == [("error", "stall"), ("success", None)]
    assert clock.now() == 2.0  # the idle limit, on the fake clock
    prefill = upstream.requests[1].json()["messages"][-1]
    assert prefill["role"] == "assistant" and prefill["content"].startswith("The answer is")
    await router.aclose()


async def test_an_openai_primary_is_continued_by_a_fallback_that_can() -> None:
    async with stack(["gpt", "claude"], once("cut", "openai", after_tokens=4)) as (router, log):
        events = [ev async for ev in router.stream(ask())]
    text = "".join(e.text for e in events if isinstance(e, TextDelta))
    end = events[-1]
    assert isinstance(events[0], StreamStart) and events[0].model == "gpt"  # the caller saw gpt start
    assert isinstance(end, StreamEnd) and end.response.content == text and end.response.model == "claude"
    rec = audit(log)
    assert [(a.model, a.outcome) for a in rec.attempts] == [("gpt", "error"), ("claude", "success")]
    carried = rec.attempts[1].continued_from
    assert carried is not None and text.startswith(text[:carried]) and len(text) > carried


async def test_panic_in_a_continuation_never_tries_a_deployment_that_cannot_continue() -> None:
    """gpt is ejected for streams before the request; claude answers, is cut, and is ejected by
    that cut (failures: 1). The continuation's walk finds claude ejected and panics: it must try
    claude anyway, never gpt (skipped by the first walk), which would answer afresh."""
    expected = await whole_answer(["claude"])
    async with stack(["gpt", "claude"], once("cut", "anthropic", after_tokens=4), failures=1) as (
        router,
        log,
    ):
        router.deployment("gpt").stream_breaker.on_failure(E.ErrorKind.SERVER)
        events = [ev async for ev in router.stream(ask())]
    assert "".join(e.text for e in events if isinstance(e, TextDelta)) == expected
    rec = audit(log)
    assert [(a.model, a.outcome) for a in rec.attempts if a.outcome != "skipped"] == [
        ("claude", "error"),
        ("claude", "success"),
    ]


async def test_no_deployment_that_can_continue_ends_with_the_original_error() -> None:
    async with stack(["gpt"], once("cut", "openai", after_tokens=4)) as (router, log):
        got: list[Any] = []
        with pytest.raises(E.StreamInterrupted) as info:
            async for ev in router.stream(ask()):
                got.append(ev)
    assert info.value.cause_kind is E.ErrorKind.STREAM_CUT
    assert info.value.partial == "".join(e.text for e in got if isinstance(e, TextDelta))
    assert not any(isinstance(e, StreamEnd) for e in got)
    rec = audit(log)
    assert rec.outcome == "error" and rec.continuation == "impossible"
    assert [a.outcome for a in rec.attempts] == ["error"]  # never restarted after text was sent


async def test_a_deployment_refusing_the_prefill_is_passed_over() -> None:
    refuse = Rule.model_validate(  # the second stream to anthropic (the continuation) gets a 400
        {
            "name": "refuse",
            "fault": "http_error",
            "params": {"status": 400, "message": "assistant prefill not supported"},
            "match": {"provider": "anthropic"},
            "when": {"sequence": "pass 1, fail 1", "sequence_repeat": False},
        }
    )
    cut = once("cut", "anthropic", after_tokens=4)
    async with stack(["claude", "mistral"], cut, refuse) as (router, log):
        events = [ev async for ev in router.stream(ask())]
    assert isinstance(events[-1], StreamEnd) and events[-1].response.model == "mistral"
    rec = audit(log)
    assert [(a.model, a.outcome, a.error_kind) for a in rec.attempts] == [
        ("claude", "error", "stream_cut"),
        ("claude", "error", "bad_request"),
        ("mistral", "success", None),
    ]
    assert rec.continuation == "continued"


async def test_a_refusal_is_never_the_error_the_caller_sees() -> None:
    refuse = Rule.model_validate(
        {
            "name": "refuse",
            "fault": "http_error",
            "params": {"status": 400, "message": "assistant prefill not supported"},
            "match": {"provider": "anthropic"},
            "when": {"sequence": "pass 1, fail 9", "sequence_repeat": False},
        }
    )
    async with stack(["claude"], once("cut", "anthropic", after_tokens=4), refuse) as (router, log):
        with pytest.raises(E.StreamInterrupted) as info:
            _ = [ev async for ev in router.stream(ask())]
    assert info.value.cause_kind is E.ErrorKind.STREAM_CUT and "bad request" not in str(info.value).lower()
    rec = audit(log)
    assert rec.continuation == "failed" and rec.error_kind == "stream_cut"


async def test_a_deployment_whose_continuation_breaks_too_is_not_asked_again() -> None:
    always = Rule.model_validate(
        {
            "name": "cut",
            "fault": "cut",
            "params": {"after_tokens": 1},
            "match": {"provider": ["anthropic", "mistral"]},
        }
    )
    async with stack(["claude", "mistral", "gpt"], always) as (router, log):
        with pytest.raises(E.StreamInterrupted) as info:
            _ = [ev async for ev in router.stream(ask())]
    assert info.value.cause_kind is E.ErrorKind.STREAM_CUT and info.value.model == "claude"
    rec = audit(log)
    assert rec.continuation == "failed"
    # claude, then its own continuation, then mistral's; gpt cannot continue and is not asked.
    assert [(a.model, a.continued_from is not None) for a in rec.attempts] == [
        ("claude", False),
        ("claude", True),
        ("mistral", True),
    ]


async def test_a_tool_call_cut_before_any_text_is_retried_whole() -> None:
    """A tool call is held until the stream ends (its arguments cannot be spliced), so a cut
    inside one reaches the caller as nothing at all: the attempt is retried from the start."""
    tools = [ToolSpec("lookup", "find a train", {"type": "object", "properties": {"q": {"type": "string"}}})]
    async with stack(["claude", "mistral"], once("cut", "anthropic", after_tokens=2)) as (router, log):
        events = [ev async for ev in router.stream(ask(tools=tools, tool_choice="required"))]
    end = events[-1]
    assert isinstance(events[0], StreamStart) and isinstance(end, StreamEnd)
    args = "".join(e.arguments for e in events if isinstance(e, ToolCallDelta))
    assert [t.name for t in end.response.tool_calls] == ["lookup"]
    assert args == end.response.tool_calls[0].arguments and json.loads(args)  # whole, once
    rec = audit(log)
    assert rec.continuation is None
    assert [(a.model, a.outcome, a.error_kind) for a in rec.attempts] == [
        ("claude", "error", "stream_cut"),
        ("claude", "success", None),
    ]


class Scripted:
    """An adapter whose streams are scripted event lists; an exception in one is raised there."""

    def __init__(self, *streams: list[Any]) -> None:
        self.streams = list(streams)

    def stream(self, deployment: Any, request: ChatRequest, options: Any) -> AsyncIterator[Any]:
        return self._play(self.streams.pop(0))

    async def _play(self, events: list[Any]) -> AsyncIterator[Any]:
        for ev in events:
            if isinstance(ev, Exception):
                raise ev
            yield ev

    async def complete(self, *a: Any) -> Any:
        raise NotImplementedError

    async def embed(self, *a: Any) -> Any:
        raise NotImplementedError

    async def aclose(self) -> None:
        pass


async def test_a_tool_call_cut_after_text_ends_with_a_clean_error() -> None:
    cut = E.StreamCut("connection lost mid-stream", provider="a", model="claude")
    text_then_tool = [TextDelta("Let me look that up."), ToolCallDelta(0, "t1", "lookup", '{"q": "tr'), cut]
    log = AuditLog()
    cfg = parse_config(
        {
            "providers": {"a": {"kind": "anthropic", "base_url": "http://127.0.0.1:9"}},
            "models": {"claude": {"provider": "a", "model": "x"}},
            "routes": {"main": {"chain": ["claude"]}},
        }
    )
    async with Router(cfg, adapters={"a": Scripted(text_then_tool)}, listeners=[log]) as router:  # type: ignore[dict-item]
        got: list[Any] = []
        with pytest.raises(E.StreamInterrupted) as info:
            async for ev in router.stream(ask()):
                got.append(ev)
    assert info.value.partial == "Let me look that up."
    assert any(isinstance(e, ToolCallDelta) for e in got)
    rec = audit(log)
    assert rec.continuation == "impossible" and [a.outcome for a in rec.attempts] == ["error"]
    assert any("tool call" in d for d in rec.decisions)


async def test_a_caller_leaving_during_a_continuation_still_gets_its_request_recorded() -> None:
    async with stack(["claude"], once("cut", "anthropic", after_tokens=4)) as (router, log):
        stream = router.stream(ask())
        seen = 0
        async for ev in stream:
            if isinstance(ev, TextDelta):
                seen += 1
                if seen == 6:  # past the cut (4 tokens): the continuation is relaying
                    break
        await stream.aclose()  # type: ignore[attr-defined]
    rec = audit(log)
    assert rec.outcome == "error" and rec.continuation == "continued"
    assert [a.outcome for a in rec.attempts] == ["error", "cancelled"]
