"""router.batch: BatchRunner against the mock's batch APIs over a real socket, on one fake clock.

The router's FakeClock drives both sides: the runner's polling sleeps advance it, and the mock's
batch life cycles read it (through ``Linked``), so a day-long batch runs in milliseconds.
"""

from __future__ import annotations

import json
import random
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import pytest

from mockproviders.config import DEFAULT_MODELS
from mockproviders.config import parse_config as mock_config
from mockproviders.core import MockCore
from mockproviders.errors import error_response
from mockproviders.server import MockServer, create_app
from mockproviders.types import MockRequest, MockResponse
from router import AuthError, BadRequest, ChatRequest, Message, Router, parse_config
from router.adapters import make_deployment
from router.batch import (
    BatchError,
    BatchItem,
    BatchResultError,
    BatchRunner,
    BatchSummary,
    PollPolicy,
    batch_rates,
)
from router.batch.wire import parse_anthropic_results, parse_openai_results
from router.clock import FakeClock
from router.cost import Rates

Handler = Callable[[MockRequest], Awaitable[MockResponse]]
TIMING = {"validating": "30s", "per_item": "2s", "finalizing": "30s", "cancelling": "10s"}
GROQ_MODEL = "llama-3.1-8b-instant"
MODELS = {"openai": [*DEFAULT_MODELS["openai"], GROQ_MODEL]}  # the mock serves Groq's model too
FAST = PollPolicy(initial=5, factor=2, max_interval=60, jitter=0.1)


class Linked:
    """The mock's clock, read from the router's FakeClock (epoch seconds)."""

    def __init__(self, clock: FakeClock) -> None:
        self.clock = clock

    def now(self) -> float:
        return self.clock.wall()

    async def sleep(self, seconds: float) -> None:
        await self.clock.sleep(seconds)


def router_config(urls: dict[str, str], api_key: str = "sk-test") -> Any:
    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": api_key},
                "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": api_key},
                "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": api_key},
                # Groq's batch API is OpenAI's files + batches under its own base URL: the mock's
                "groq": {"kind": "groq", "base_url": urls["openai"], "api_key": api_key},
            },
            "models": {
                "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
                "claude": {"provider": "anthropic", "model": "claude-haiku-4-5", "max_tokens": 128},
                "mistral": {"provider": "mistral", "model": "mistral-small-latest"},
                "groq": {"provider": "groq", "model": GROQ_MODEL},
            },
            "routes": {"chat": {"chain": ["gpt", "claude"]}, "chat-a": {"chain": ["claude", "gpt"]}},
            "defaults": {"retries": 1, "backoff_base": "1ms", "backoff_max": "2ms"},
        }
    )


@dataclass
class Rig:
    core: MockCore
    router: Router
    clock: FakeClock

    def intercept(self, fn: Callable[[MockRequest, Handler], Awaitable[MockResponse]]) -> None:
        self.core.add_interceptor(fn)  # type: ignore[arg-type]  # a plain coroutine function does


@asynccontextmanager
async def rig(api_key: str = "sk-test", **batch: Any) -> AsyncIterator[Rig]:
    clock = FakeClock()
    core = MockCore(mock_config({"batch": {**TIMING, **batch}, "models": MODELS}), clock=Linked(clock))
    async with MockServer(app=create_app(core=core)) as server:
        router = Router(router_config(server.base_urls, api_key), clock=clock)
        try:
            yield Rig(core, router, clock)
        finally:
            await router.aclose()


def items(route: str, *texts: str) -> list[BatchItem]:
    return [
        BatchItem(f"q{i}", ChatRequest(model=route, messages=[Message("user", text)]))
        for i, text in enumerate(texts)
    ]


async def flaky_single_requests(request: MockRequest, call_next: Handler) -> MockResponse:
    """Single (non-batch) OpenAI chat requests about 'flaky' things fail with 503."""
    if request.provider == "openai" and request.endpoint == "chat" and b"flaky" in request.body:
        return error_response("openai", 503, request_id=request.request_id)
    return await call_next(request)


# -- end to end ---------------------------------------------------------------------------------


async def test_openai_batch_answers_and_failed_items_fall_back_through_the_router() -> None:
    async with rig(fail=[{"pattern": "^q[13]$", "status": 500}]) as r:
        r.intercept(flaky_single_requests)
        batch = items("chat", "what is a turnout?", "flaky one", "name a colour", "flaky two")
        runner = BatchRunner(r.router, "gpt", poll=FAST, rng=random.Random(7))
        result = await runner.run(batch)
        s = result.summary
        assert (s.status, s.total, s.succeeded, s.errored, s.retried, s.retry_succeeded, s.failed) == (
            "completed", 4, 2, 2, 2, 2, 0,
        )  # fmt: skip
        by_id = result.items
        assert [by_id[c].source for c in ("q0", "q1", "q2", "q3")] == ["batch", "retry", "batch", "retry"]
        assert by_id["q1"].response is not None and by_id["q1"].response.model == "claude"  # the fallback
        assert by_id["q1"].batch_error is not None and by_id["q1"].batch_error.status == 500
        assert by_id["q1"].batch_outcome == "errored"
        # a batch answer is the single answer for the same request on the same deployment
        for cid in ("q0", "q2"):
            single = await r.router.complete(ChatRequest(model="gpt", messages=by_id[cid].request.messages))
            got = by_id[cid].response
            assert got is not None and got.content == single.content and got.usage == single.usage
            assert got.model == "gpt" and got.route == "batch:gpt"
            standard = r.router.price("gpt", got.usage)
            assert standard is not None and got.cost_usd == pytest.approx(standard / 2)  # batch price
        assert s.batch_cost_usd is not None and s.retry_cost_usd is not None
        assert s.cost_usd == pytest.approx(s.batch_cost_usd + s.retry_cost_usd)
        assert s.polls >= 3 and s.waited_s == pytest.approx(sum(r.clock.sleeps[: s.polls]))
        assert "2 from the batch" in s.format() and "retried 2" in s.format()


async def test_groq_batches_over_its_openai_style_batch_api() -> None:
    async with rig() as r:
        runner = BatchRunner(r.router, "groq", poll=FAST, prices=Rates.per_million(0.1, 0.2))
        result = await runner.run(items("groq", "what is a turnout?", "name a colour"))
        s = result.summary
        assert (s.status, s.provider, s.succeeded, s.failed) == ("completed", "groq", 2, 0)
        assert {e.path.rsplit("/", 1)[-1] for e in r.core.journal if e.method == "POST"} == {
            "files",
            "batches",
        }
        for item in result.items.values():
            assert item.source == "batch" and item.response is not None and item.response.model == "groq"
            u = item.response.usage
            assert item.response.cost_usd == pytest.approx(
                (u.input_tokens * 0.1 + u.output_tokens * 0.2) / 1e6
            )


async def test_anthropic_batch_answers_and_retries() -> None:
    async with rig(fail=[{"custom_id": "q1", "status": 529}]) as r:
        batch = items("chat", "hello there", "general kenobi", "a third")
        result = await BatchRunner(r.router, "claude", poll=FAST).run(batch)
        s = result.summary
        assert (s.status, s.succeeded, s.errored, s.retry_succeeded, s.failed) == ("ended", 2, 1, 1, 0)
        q1 = result.items["q1"]
        assert q1.source == "retry" and q1.response is not None and q1.response.model == "gpt"
        assert q1.batch_error is not None and q1.batch_error.error_type == "overloaded_error"
        single = await r.router.complete(
            ChatRequest(model="claude", messages=result.items["q0"].request.messages)
        )
        got = result.items["q0"].response
        assert got is not None and (got.content, got.usage, got.finish_reason) == (
            single.content, single.usage, single.finish_reason,
        )  # fmt: skip


async def test_an_invalid_request_ends_with_the_router_s_error_not_lost() -> None:
    async with rig() as r:
        bad = ChatRequest(
            model="chat-a", messages=[Message("user", "hi")], temperature=1.5
        )  # > 1 on Anthropic
        result = await BatchRunner(r.router, "claude", poll=FAST).run([BatchItem("bad", bad)])
        item = result.items["bad"]
        assert item.batch_outcome == "errored" and item.batch_error is not None
        assert "temperature" in item.batch_error.message and "line 1" in item.batch_error.message
        # the retry runs the route; a bad request is final there too, so the item ends with that error
        assert item.source is None and item.response is None and isinstance(item.error, BadRequest)
        assert result.summary.retried == 1 and result.summary.failed == 1


async def test_expired_items_are_retried() -> None:
    async with rig(expires="35s") as r:  # validating 30 s, then 2 s per item: two of four in time
        result = await BatchRunner(r.router, "gpt", poll=FAST).run(items("gpt", "a", "b", "c", "d"))
        s = result.summary
        assert (s.status, s.succeeded, s.expired, s.retry_succeeded) == ("expired", 2, 2, 2)
        assert [result.items[f"q{i}"].source for i in range(4)] == ["batch", "batch", "retry", "retry"]


async def test_a_batch_that_fails_validation_is_retried_whole() -> None:
    async with rig() as r:

        async def duplicate_ids(request: MockRequest, call_next: Handler) -> MockResponse:
            if request.endpoint == "files" and request.method == "POST":
                request.body = request.body.replace(b'"custom_id":"q1"', b'"custom_id":"q0"')
            return await call_next(request)

        r.intercept(duplicate_ids)
        result = await BatchRunner(r.router, "gpt", poll=FAST).run(items("chat", "a", "b"))
        s = result.summary
        assert (s.status, s.missing, s.retry_succeeded, s.failed) == ("failed", 2, 2, 0)
        assert s.batch_errors and "line 2: duplicate_custom_id" in s.batch_errors[0]
        assert "duplicate_custom_id" in str(result.items["q0"].batch_error)


async def test_poll_timeout_cancels_and_keeps_partial_results() -> None:
    async with rig() as r:
        policy = PollPolicy(initial=5, factor=1, max_interval=5, jitter=0, timeout=35)
        result = await BatchRunner(r.router, "gpt", poll=policy).run(items("gpt", *"abcdef"))
        s = result.summary
        assert s.status == "cancelled" and s.succeeded == 2 and s.canceled == 4
        assert s.retry_succeeded == 4 and s.failed == 0
        assert [e.endpoint for e in r.core.journal if e.path.endswith("/cancel")] == ["batches"]


async def test_anthropic_cancel_on_timeout() -> None:
    async with rig() as r:
        policy = PollPolicy(initial=5, factor=1, max_interval=5, jitter=0, timeout=35)
        result = await BatchRunner(r.router, "claude", poll=policy, retry=False).run(items("x", *"abcd"))
        s = result.summary
        assert (s.status, s.succeeded, s.canceled, s.retried, s.failed) == ("ended", 2, 2, 0, 2)
        assert result.items["q3"].response is None and result.items["q3"].batch_outcome == "canceled"


# -- polling --------------------------------------------------------------------------------------


async def test_polling_backs_off_exponentially_with_jitter_on_the_fake_clock() -> None:
    async with rig(validating="1000s") as r:
        policy = PollPolicy(initial=2, factor=2, max_interval=60, jitter=0.25)
        result = await BatchRunner(r.router, "gpt", poll=policy, rng=random.Random(1)).run(items("gpt", "a"))
        waits = r.clock.sleeps
        assert len(waits) == result.summary.polls and sum(waits) >= 1000 + 2 + 30
        for n, wait in enumerate(waits):
            base = min(60.0, 2.0 * 2**n)
            assert base * 0.75 <= wait <= base * 1.25
        assert len(set(waits)) == len(waits)  # jittered: no two the same
        assert waits[0] < waits[1] < waits[2] < waits[3] < waits[4]


async def test_poll_errors_are_retried_then_give_up() -> None:
    async with rig() as r:
        failures = {"left": 2}

        async def flaky_polls(request: MockRequest, call_next: Handler) -> MockResponse:
            if request.method == "GET" and request.endpoint == "batches" and failures["left"] > 0:
                failures["left"] -= 1
                return error_response("openai", 503, request_id=request.request_id)
            return await call_next(request)

        r.intercept(flaky_polls)
        result = await BatchRunner(r.router, "gpt", poll=FAST).run(items("gpt", "a"))
        assert result.summary.poll_errors == 2 and result.summary.succeeded == 1

        failures["left"] = 100
        with pytest.raises(BatchError, match="3 in a row"):
            await BatchRunner(r.router, "gpt", poll=PollPolicy(initial=1, max_errors=3)).run(
                items("gpt", "a")
            )


async def test_submit_errors_are_router_errors() -> None:
    async with rig() as r:
        r.core.configure(mock_config({"api_keys": {"openai": ["other"]}, "batch": TIMING}))
        with pytest.raises(AuthError):
            await BatchRunner(r.router, "gpt", poll=FAST).run(items("gpt", "a"))


async def test_bad_arguments_are_refused_before_any_request() -> None:
    async with rig() as r:
        with pytest.raises(ValueError, match="unknown deployment 'nope'"):
            BatchRunner(r.router, "nope")
        with pytest.raises(ValueError, match="kind 'mistral'"):
            BatchRunner(r.router, "mistral")
        runner = BatchRunner(r.router, "claude")
        with pytest.raises(ValueError, match="at least one"):
            await runner.run([])
        with pytest.raises(ValueError, match="used twice"):
            await runner.run([*items("x", "a"), *items("x", "b")])
        with pytest.raises(ValueError, match="must match"):
            await runner.run([BatchItem("no spaces allowed", ChatRequest("x", [Message("user", "a")]))])
        assert len(r.core.journal) == 0
    with pytest.raises(ValueError, match="jitter"):
        PollPolicy(jitter=1.5)
    with pytest.raises(ValueError, match="initial"):
        PollPolicy(initial=0)


async def test_malformed_results_file_names_the_line() -> None:
    async with rig() as r:

        async def garble(request: MockRequest, call_next: Handler) -> MockResponse:
            response = await call_next(request)
            if request.path.endswith("/content") and response.body:
                response.body = response.body + b"{oops\n"
            return response

        r.intercept(garble)
        with pytest.raises(BatchResultError, match=r"output file file-\w+ line 2: not JSON"):
            await BatchRunner(r.router, "gpt", poll=FAST).run(items("gpt", "a"))


# -- prices and pure parsing ---------------------------------------------------------------------


async def test_prices_override_and_unknown_prices() -> None:
    async with rig() as r:
        runner = BatchRunner(r.router, "gpt", poll=FAST, prices=Rates.per_million(1.0, 2.0))
        result = await runner.run(items("gpt", "a"))
        response = result.items["q0"].response
        assert response is not None
        u = response.usage
        assert response.cost_usd == pytest.approx((u.input_tokens * 1.0 + u.output_tokens * 2.0) / 1e6)
    assert batch_rates("openai", "no-such-model") is None
    assert batch_rates("openai_compatible", "gpt-4o-mini") is None
    summary = BatchSummary("b", "p", "d", "completed", succeeded=1, batch_cost_usd=None)
    assert summary.cost_usd is None and "cost unknown" in summary.format()


def _dep(kind: str) -> Any:
    return make_deployment("d", provider="p", kind=kind, model="m", base_url="http://x")


KNOWN = {c: BatchItem(c, ChatRequest("x", [Message("user", "a")])) for c in ("a", "b")}


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ('{"custom_id":"a","response":null,"error":null}\n[1]', "line 2: expected a JSON object"),
        ('\n\n{"response":{}}', "line 3: no custom_id"),
        ('{"custom_id":"zz","error":{}}', "line 1: custom_id 'zz' is not one of"),
        ('{"custom_id":"a","error":{}}\n{"custom_id":"a","error":{}}', "line 2: custom_id 'a' appears twice"),
        ('{"custom_id":"a"}', "line 1: neither a response nor an error"),
        ('{"custom_id":"a","response":{"status_code":"200"}}', "line 1: response.status_code"),
    ],
)
def test_openai_result_lines_are_checked(text: str, problem: str) -> None:
    with pytest.raises(BatchResultError, match=f"^out {problem}"):
        parse_openai_results(text, "out", KNOWN, _dep("openai"))


def test_unreadable_answer_bodies_become_errored_items() -> None:
    text = json.dumps({"custom_id": "a", "response": {"status_code": 200, "body": {"choices": []}}})
    found = parse_openai_results(text, "out", KNOWN, _dep("openai"))["a"]
    assert found.outcome == "errored" and found.error is not None and found.line == 1
    assert str(found.error).startswith("out line 1: response has no choices[0]")
    text = json.dumps({"custom_id": "b", "result": {"type": "succeeded", "message": {"content": 3}}})
    found = parse_anthropic_results(text, "res", KNOWN, _dep("anthropic"))["b"]
    assert found.outcome == "errored" and "res line 1" in str(found.error)
    with pytest.raises(BatchResultError, match="line 1: unknown result type 'weird'"):
        parse_anthropic_results(
            '{"custom_id":"a","result":{"type":"weird"}}', "res", KNOWN, _dep("anthropic")
        )
    with pytest.raises(BatchResultError, match="line 1: no result object"):
        parse_anthropic_results('{"custom_id":"a"}', "res", KNOWN, _dep("anthropic"))


async def test_the_example_runs_and_prints_its_summary(capsys: pytest.CaptureFixture[str]) -> None:
    from examples.patterns import batch_example

    result = await batch_example.main()
    s = result.summary
    assert (s.status, s.total, s.succeeded, s.errored, s.retry_succeeded, s.failed) == (
        "completed",
        8,
        6,
        2,
        2,
        0,
    )
    out = capsys.readouterr().out
    assert "retried 2 through the router: 2 answered" in out and "q2  errored   retry" in out
