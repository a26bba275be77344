"""The health model through the engine, checked by Hypothesis: any sequence of outcomes (provider
failures, caller errors, 429s, cut streams) and clock steps.

- a deployment is ejected only by the provider's failures, never by a caller's mistake or a 429;
- an ejection ends within the bound (``max_cooldown``) and one probe brings traffic back;
- a request is never refused without a call while a deployment of its chain is merely ejected
  (panic mode): only a provider's hold (0 remaining, 429s that keep coming) refuses without one;
- a cut stream counts against stream health only: non-streamed requests never skip for it.
"""

from __future__ import annotations

import asyncio
from contextlib import aclosing

from hypothesis import settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from router_fakes import FakeAdapter, Step, config, err

from router import Router
from router import errors as E
from router.audit import AuditLog
from router.clock import FakeClock
from router.hooks import BaseListener
from router.types import ChatRequest, Message, StreamEnd

MAX_EJECTION = 4.0  # the default max_cooldown

PROVIDER_FAILURES = {
    "server": lambda: Step(error=err(E.ServerError, status=503)),
    "overloaded": lambda: Step(error=err(E.Overloaded, status=529, retry_after=0.7)),
    "timeout": lambda: Step(hang=True),
}
OTHER = {
    "ok": lambda: Step(),
    "bad_request": lambda: Step(error=err(E.BadRequest, status=400)),
    "not_found": lambda: Step(error=err(E.NotFound, status=404)),
    "auth": lambda: Step(error=err(E.AuthError, status=401)),
    "context_length": lambda: Step(error=err(E.ContextLengthExceeded, status=400)),
    "rate_limit": lambda: Step(error=err(E.RateLimited, status=429, retry_after=0.5)),
    "cut": lambda: Step(cut_after=1),  # a stream cut after output began (non-streamed: served)
}
OUTCOMES = sorted([*PROVIDER_FAILURES, *OTHER])


class HealthMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.fake = FakeAdapter(self.clock)
        machine = self
        self.failed_since_close: dict[str, bool] = {}
        self.log = AuditLog()

        class Changes(BaseListener):
            def on_breaker_change(self, model: str, old: str, new: str) -> None:
                if new == "closed":
                    machine.failed_since_close[model] = False

        self.router = Router(
            config(("a", "b"), retries=1, defaults={"breaker": {"failures": 2}}),
            clock=self.clock,
            adapters={"p": self.fake},
            listeners=[Changes(), self.log],
            rng_seed=3,
        )

    def teardown(self) -> None:
        self.loop.run_until_complete(self.loop.shutdown_asyncgens())
        self.loop.close()

    @rule(a=st.sampled_from(OUTCOMES), b=st.sampled_from(OUTCOMES), streamed=st.booleans())
    def request(self, a: str, b: str, streamed: bool) -> None:
        self.fake.scripts.clear()
        steps = {name: (PROVIDER_FAILURES | OTHER)[outcome]() for name, outcome in (("a", a), ("b", b))}
        for name, step in steps.items():
            self.fake.script(name, step)
        before = len(self.fake.calls)
        held = {n: self.router.deployment(n).limiter.blocked_for() > 0 for n in ("a", "b")}
        ejected = {n: self.router.deployment(n).breaker.state == "open" for n in ("a", "b")}
        request = ChatRequest(model="r", messages=[Message("user", "hi")])
        raised: E.RouterError | None = None
        try:
            if streamed:
                self.loop.run_until_complete(self._drain(request))
            else:
                self.loop.run_until_complete(self.router.complete(request))
        except E.RouterError as exc:
            raised = exc
        called = self.fake.calls[before:]
        for name, outcome in (("a", a), ("b", b)):
            if name in called:
                counted = outcome in PROVIDER_FAILURES or (streamed and outcome == "cut")
                key = f"{name}#stream" if streamed and outcome == "cut" else name
                if counted:
                    self.failed_since_close[key] = True
        if isinstance(raised, E.Unavailable) and not called:
            # refused without a call: every deployment was held by the provider, none merely ejected
            assert all(held.values()), (held, ejected, raised)
        rec = self.log.last()
        assert rec is not None
        if not streamed:  # stream health never gates a non-streamed request
            assert not any("ejected for streams" in (x.message or "") for x in rec.attempts)

    async def _drain(self, request: ChatRequest) -> None:
        async with aclosing(self.router.stream(request)) as events:
            async for ev in events:
                if isinstance(ev, StreamEnd):
                    return

    @rule(seconds=st.sampled_from([0.05, 0.5, 1.0, 2.0, 5.0]))
    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @invariant()
    def ejected_only_by_provider_failures(self) -> None:
        for name in ("a", "b"):
            rt = self.router.deployment(name)
            for key, breaker in ((name, rt.breaker), (f"{name}#stream", rt.stream_breaker)):
                if breaker.state != "closed":
                    assert self.failed_since_close.get(key), (key, breaker.snapshot())

    @invariant()
    def ejection_is_bounded(self) -> None:
        now = self.clock.now()
        for name in ("a", "b"):
            rt = self.router.deployment(name)
            for breaker in (rt.breaker, rt.stream_breaker):
                if breaker.retry_at is not None:
                    assert breaker.retry_at - now <= MAX_EJECTION + 1e-9


HealthMachine.TestCase.settings = settings(max_examples=60, stateful_step_count=30, deadline=None)
TestHealthMachine = HealthMachine.TestCase


def test_non_streamed_traffic_is_unharmed_by_cut_streams() -> None:
    """20 % of streams cut after output began: the stream health may eject, the calls never skip."""
    clock = FakeClock()
    fake = FakeAdapter(clock)
    router = Router(
        config(("a", "b"), retries=1, defaults={"breaker": {"failure_rate": 0.1, "min_calls": 10}}),
        clock=clock,
        adapters={"p": fake},
        rng_seed=1,
    )

    async def run() -> tuple[dict[str, int], dict[str, int], int]:
        calls = {"a": 0, "b": 0}
        streams = {"a": 0, "b": 0}
        failed = 0
        for i in range(200):
            clock.advance(0.05)
            request = ChatRequest(model="r", messages=[Message("user", "hi")])
            if i % 2:
                if i % 10 == 1:
                    fake.script("a", Step(cut_after=1))
                try:
                    async for ev in router.stream(request):
                        if isinstance(ev, StreamEnd):
                            streams[ev.response.model] += 1
                except E.StreamInterrupted:
                    failed += 1
            else:
                calls[(await router.complete(request)).model] += 1
        return calls, streams, failed

    calls, streams, failed = asyncio.run(run())
    assert calls == {"a": 100, "b": 0}  # every non-streamed call served by the primary
    assert router.deployment("a").breaker.state == "closed"
    assert router.deployment("a").stream_breaker.opened >= 1  # its streams went elsewhere a while
    assert streams["b"] > 0 and failed < 20
