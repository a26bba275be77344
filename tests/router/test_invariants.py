"""Hypothesis stateful tests: the engine's invariants under any mix of faults, on a fake clock.

Each step sends a request (complete or stream) after scripting what every deployment will do
for its next attempts; other steps move time, close a deployment for a while (as other traffic's
429 or retry-after would), or heal every deployment. After each request the
audit record and the caller's view are checked against the invariants the router promises.
"""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, precondition, rule
from router_fakes import FakeAdapter, Step, config, err

from router import Router
from router import errors as E
from router.audit import AuditLog
from router.clock import FakeClock
from router.headers import RateLimitSnapshot
from router.hooks import BaseListener
from router.retry import NEVER_RETRIED
from router.types import AttemptRecord, ChatRequest, Message, StreamEnd, StreamStart, TextDelta

CHAIN = ("a", "b", "c")
RETRIES = 2
TOTAL = 20.0
CAP = 60.0
RATE_LIMIT_WAIT = 5.0  # the default
MIN_CHAIN_WAIT = 0.01
TEXT = "the whole answer"
# open -> closed: a request sent past an ejected deployment in panic mode succeeded
VALID = {
    ("closed", "open"),
    ("open", "half_open"),
    ("half_open", "closed"),
    ("half_open", "open"),
    ("open", "closed"),
}

retry_after = st.sampled_from([None, 0.5, 3.0, 59.0, 61.0, 150.0])


@st.composite
def steps(draw: st.DrawFn) -> Step:
    kind = draw(
        st.sampled_from(
            [
                "ok",
                "ok",
                "server",
                "overloaded",
                "rate",
                "no_retry",
                "bad",
                "context",
                "policy",
                "auth",
                "hang",
                "slow",
                "cut",
                "stall",
                "fail",
            ]
        )
    )
    if kind == "ok":
        return Step(text=TEXT)
    if kind == "server":
        return Step(error=err(E.ServerError, status=503, retry_after=draw(retry_after)))
    if kind == "overloaded":
        return Step(error=err(E.Overloaded, status=529))
    if kind == "rate":
        return Step(error=err(E.RateLimited, status=429, retry_after=draw(retry_after)))
    if kind == "no_retry":
        return Step(error=err(E.ServerError, status=503, should_retry=False))
    if kind == "bad":
        return Step(error=err(E.BadRequest, status=400))
    if kind == "context":
        return Step(error=err(E.ContextLengthExceeded, status=400))
    if kind == "policy":
        return Step(error=err(E.ContentPolicy, status=400))
    if kind == "auth":
        return Step(error=err(E.AuthError, status=401))
    if kind == "hang":
        return Step(hang=True)
    if kind == "slow":
        return Step(latency=draw(st.sampled_from([0.5, 1.9, 4.0])), text=TEXT)
    n = draw(st.integers(0, 2))
    return Step(text=TEXT, **{{"cut": "cut_after", "stall": "stall_after", "fail": "fail_after"}[kind]: n})


class Watch(BaseListener):
    def __init__(self) -> None:
        self.attempts: list[AttemptRecord] = []
        self.changes: list[tuple[str, str, str]] = []

    def on_attempt(self, route: str, record: AttemptRecord) -> None:
        self.attempts.append(record)

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        self.changes.append((model, old, new))


class RouterMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.loop = asyncio.new_event_loop()
        self.clock = FakeClock()
        self.fake = FakeAdapter(self.clock)
        self.fake.default_text = TEXT
        self.log = AuditLog()
        self.watch = Watch()
        cfg = config(CHAIN, retries=RETRIES, total=f"{TOTAL}s")
        self.router = Router(
            cfg, clock=self.clock, adapters={"p": self.fake}, listeners=[self.log, self.watch], rng_seed=0
        )
        self.requests = 0

    def teardown(self) -> None:
        self.loop.run_until_complete(self.router.aclose())
        self.loop.close()

    @rule(
        scripts=st.fixed_dictionaries({d: st.lists(steps(), max_size=4) for d in CHAIN}),
        streamed=st.booleans(),
    )
    def send(self, scripts: dict[str, list[Step]], streamed: bool) -> None:
        self.fake.scripts.clear()
        for name, script in scripts.items():
            self.fake.script(name, *script)
        calls_before = len(self.fake.calls)
        seen_before = len(self.watch.attempts)
        t0 = self.clock.now()
        outcome, events, error = self.loop.run_until_complete(self._call(streamed))
        elapsed = self.clock.now() - t0
        rec = self.log.last()
        assert rec is not None
        self.requests += 1
        attempts = [a for a in rec.attempts if a.outcome != "skipped"]
        consumed: dict[str, list[Step]] = {d: [] for d in CHAIN}
        for name in self.fake.calls[calls_before:]:
            consumed[name].append(
                scripts[name][len(consumed[name])]
                if len(consumed[name]) < len(scripts[name])
                else Step(text=TEXT)
            )

        # attempts never exceed the budget: retries + 1 per deployment
        assert len(attempts) <= len(CHAIN) * (RETRIES + 1)
        assert len(attempts) == len(self.fake.calls) - calls_before
        # the total deadline is never exceeded
        assert elapsed <= TOTAL + 1e-9, elapsed
        # exactly one record (with its usage and cost) per attempt, and the totals add up
        assert self.watch.attempts[seen_before:] == rec.attempts
        for a in attempts:
            assert a.usage is not None and (a.cost_usd is not None)
        assert rec.usage.input_tokens == sum(a.usage.input_tokens for a in attempts if a.usage)
        # non-retryable errors are never retried; retry-after is honoured up to the cap
        by_dep: dict[str, list[AttemptRecord]] = {}
        for a in attempts:
            by_dep.setdefault(a.model, []).append(a)
        for name, recs in by_dep.items():
            for i, a in enumerate(recs[:-1]):
                kind = E.ErrorKind(a.error_kind) if a.error_kind else None
                assert kind not in NEVER_RETRIED, (name, kind)
                step = consumed[name][i]
                made = step.error(self.fake_dep(name)) if step.error else None
                if made is not None:
                    assert made.retryable
                    if made.retry_after:
                        assert made.retry_after <= CAP
                        # the retry after the asked wait; or, when that failure re-ejected a probed
                        # deployment so the retry found it closed, the panic walk's fresh attempt
                        panicked = any(d.startswith("panic:") for d in rec.decisions)
                        assert (
                            recs[i + 1].wait_source == "retry-after"
                            and recs[i + 1].wait_s == made.retry_after
                        ) or (panicked and recs[i + 1].wait_source == "none")
                assert kind not in {E.ErrorKind.TIMEOUT, E.ErrorKind.FIRST_TOKEN_TIMEOUT, E.ErrorKind.STALL}
        for a in attempts:
            if a.wait_source == "backoff":
                assert a.wait_s <= 8.0
            if a.wait_source in ("rate-limit", "cooldown") or (a is attempts[0] and a.wait_s):
                assert a.wait_s <= RATE_LIMIT_WAIT + 1e-9  # a closed chain is waited for this long at most
        # nothing tried: the chain was closed past the wait or the deadline, and retry_after says
        # truthfully when the first deployment opens
        if isinstance(error, E.Unavailable):
            assert attempts == [] and error.retry_after is not None
            opens = []
            for name in CHAIN:
                snap = self.router.snapshot()["deployments"][name]
                opens.append(max(snap["limiter"]["blocked_for_s"], snap["breaker"]["retry_in_s"] or 0.0))
            assert error.retry_after == pytest.approx(min(opens), abs=1e-6)
            soonest = max(error.retry_after, MIN_CHAIN_WAIT)
            assert soonest > RATE_LIMIT_WAIT or soonest >= TOTAL - elapsed - 1e-9
        # a truncated stream is never reported as success
        if outcome == "success":
            assert rec.outcome == "success" and rec.winner is not None
            if streamed:
                assert isinstance(events[0], StreamStart) and isinstance(events[-1], StreamEnd)
                assert "".join(e.text for e in events if isinstance(e, TextDelta)) == TEXT
                assert events[-1].response.content == TEXT
            win = [a for a in attempts if a.outcome == "success"]
            assert len(win) == 1 and win[0].model == rec.winner
        else:
            assert rec.outcome == "error"
            assert not any(isinstance(e, StreamEnd) for e in events)
            if any(isinstance(e, StreamStart) for e in events):
                assert isinstance(error, E.StreamInterrupted)
                assert error.partial == "".join(e.text for e in events if isinstance(e, TextDelta))

    def fake_dep(self, name: str) -> Any:
        return self.router.deployment(name).deployment

    async def _call(self, streamed: bool) -> tuple[str, list[Any], E.RouterError | None]:
        request = ChatRequest(model="r", messages=[Message("user", "hi")])
        events: list[Any] = []
        try:
            if streamed:
                async for ev in self.router.stream(request):
                    events.append(ev)
            else:
                resp = await self.router.complete(request)
                assert resp.content == TEXT
        except E.RouterError as exc:
            return "error", events, exc
        return "success", events, None

    @rule(seconds=st.sampled_from([0.5, 5.0, 11.0, 31.0]))
    def wait(self, seconds: float) -> None:
        self.clock.advance(seconds)

    @rule(
        closed=st.dictionaries(
            st.sampled_from(CHAIN),
            st.tuples(st.sampled_from([0.5, 3.0, 4.99, 7.0, 61.0]), st.booleans()),
            min_size=1,
        )
    )
    def closed_by_other_traffic(self, closed: dict[str, tuple[float, bool]]) -> None:
        """Other requests' 429s (limiter) or 503s with retry-after (breaker) close deployments."""
        for name, (seconds, breaker) in closed.items():
            rt = self.router.deployment(name)
            if breaker:
                rt.breaker.trip(self.clock.now() + seconds)
            else:
                rt.limiter.observe(RateLimitSnapshot(remaining_requests=0, reset_requests_s=seconds))

    @precondition(lambda self: self.requests > 0)
    @rule()
    def providers_recover(self) -> None:
        """Every deployment heals; once cooldowns pass, the first choice gets traffic back."""
        self.fake.scripts.clear()
        self.clock.advance(301.0)  # past the longest cooldown and any retry-after
        resp = self.loop.run_until_complete(self.router.complete(ChatRequest("r", [Message("user", "hi")])))
        assert resp.model == CHAIN[0]
        assert self.router.deployment(CHAIN[0]).breaker.state == "closed"

    @invariant()
    def breaker_transitions_follow_the_state_machine(self) -> None:
        for _, old, new in self.watch.changes:
            assert (old, new) in VALID, (old, new)


RouterMachine.TestCase.settings = settings(
    max_examples=60,
    stateful_step_count=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
TestRouterInvariants = RouterMachine.TestCase
