"""One request's journey through a route: gates, attempts, retries, fallbacks, hedging, records.

:class:`RequestRun` walks the route's chain. For each deployment it asks the breaker and the rate
limiter (:mod:`router._gate`; a closed door is a *skip*, recorded), makes the attempt with
limits capped by the request's :class:`~router.deadline.Deadline`, and on failure asks the
:class:`~router.retry.RetryPolicy` whether to try the same deployment again. Then:

- a context-length error switches to the route's ``on_error.context_length`` chain if it has one;
- a content-policy refusal ends the request with the provider's error (its reason reaches the
  caller) unless the route names an ``on_error.content_policy`` chain;
- any other bad request ends the request (the request itself is wrong; another model would
  refuse it too);
- everything else falls back to the next deployment.

When the chain runs out, :mod:`router._chain_end` decides: panic mode past the breakers, a wait
for the soonest door of a closed chain, or the error the caller sees.

The kind of attempt (complete, stream up to its first token, buffered stream, embed) is a
function passed in; this module does not know about streams. Exactly one
:class:`~router.types.AttemptRecord` is made per attempt or skip, each with its own usage and
cost; an attempt in flight when the request stops (a hedge's loser) is recorded as cancelled.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from router import errors as E
from router._chain_end import exhausted, panic_order, soonest_open
from router._gate import admit
from router._runtime import BREAKER_COUNTS, STREAM_FAILURES, DeploymentRuntime, RoutePlan
from router.adapters import CallOptions
from router.clock import Clock
from router.cost import PriceTable
from router.deadline import Deadline
from router.headers import RateLimitSnapshot
from router.hooks import RouterListener
from router.retry import AttemptState
from router.types import AttemptRecord, AuditRecord, Usage, WaitSource
from turnout.logs import get_logger

log = get_logger("turnout.router")

T = TypeVar("T")
AttemptFn = Callable[[DeploymentRuntime, CallOptions], Awaitable[T]]
Discard = Callable[[T], Awaitable[Usage | None]]  # release a result nobody will use; its usage
Prepare = Callable[[str, Any, list[str]], Any]  # (deployment, request, audit decisions) -> request

_HOLD_WITHOUT_RETRY_AFTER = 1.0  # seconds a deployment is held after 429s in a row that gave no time


@dataclass(slots=True)
class Won(Generic[T]):
    """The attempt that answered: its result, its deployment and its (open) record."""

    result: T
    rt: DeploymentRuntime
    record: AttemptRecord
    estimate: int


class RequestRun:
    """The state of one request: its deadline, records and errors."""

    __slots__ = (
        "attempts",
        "audit",
        "blocked",
        "chain_waited",
        "clock",
        "deadline",
        "deployments",
        "errors",
        "finish",
        "listeners",
        "panic",
        "plan",
        "prepare",
        "prices",
        "rate_limit_wait",
        "streamed",
        "text_chars",
        "tokens_hint",
    )

    def __init__(
        self,
        plan: RoutePlan,
        deployments: dict[str, DeploymentRuntime],
        *,
        clock: Clock,
        prices: PriceTable,
        listeners: Sequence[RouterListener],
        audit: AuditRecord,
        rate_limit_wait: float,
        text_chars: Callable[[], int],
        tokens_hint: int | None,
    ) -> None:
        self.plan = plan
        self.deployments = deployments
        self.clock = clock
        self.prices = prices
        self.listeners = listeners
        self.audit = audit
        self.rate_limit_wait = rate_limit_wait
        self.text_chars = text_chars
        self.tokens_hint = tokens_hint
        self.deadline = Deadline(plan.total, clock)
        self.errors: list[E.RouterError] = []
        self.attempts = 0  # real attempts (not skips)
        # Per skipped deployment: when it opens (clock time) and why; None: no known time (a
        # peer's half-open probe in flight). What waiting for a blocked chain chooses from.
        self.blocked: dict[str, tuple[float, WaitSource] | None] = {}
        self.chain_waited = 0.0  # seconds spent waiting for a blocked chain (<= rate_limit_wait)
        self.streamed = audit.streamed  # gate on stream health too; stream failures count there
        self.panic = False  # the one attempt past the breakers (panic mode) is under way or done
        # The planner hook (router.patterns.planner), None unless a pattern acts on this request:
        # ``prepare(deployment, request, decisions)`` adapts the request to each deployment (prompt
        # variant, cache markers); ``finish(audit)`` runs once the audit record is complete.
        self.prepare: Prepare | None = None
        self.finish: Callable[[AuditRecord], None] | None = None

    # --- records ---------------------------------------------------------------------------------

    def emit(self, record: AttemptRecord) -> None:
        self.audit.attempts.append(record)
        for listener in self.listeners:
            try:
                listener.on_attempt(self.plan.name, record)
            except Exception:
                log.exception("router listener %r failed in on_attempt", listener)

    def finish_record(self, record: AttemptRecord, rt: DeploymentRuntime, usage: Usage | None) -> None:
        record.latency_s = self.clock.now() - record.started_at
        record.usage = usage if usage is not None else Usage()
        record.cost_usd = self.prices.cost(rt.name, record.usage)
        self.emit(record)

    # --- the chain -------------------------------------------------------------------------------

    def continue_on(self, plan: RoutePlan) -> None:
        """Walk ``plan`` next (a stream's continuation), afresh: what the last walk skipped is not
        this one's to wait for or to try in panic (one that cannot continue answers afresh)."""
        self.plan = plan
        self.blocked.clear()

    async def run(self, attempt: AttemptFn[T], discard: Discard[T], *, hedge: bool = True) -> Won[T]:
        """Walk the chain until an attempt succeeds; raise the error the caller should see."""
        plan = self.plan
        queue = deque(plan.chain)
        tried: set[str] = set()
        hedge_after = plan.hedge_after if hedge else None
        waited: tuple[float, WaitSource] | None = None  # a blocked chain's wait, for the next record
        while True:
            while queue:
                name = queue.popleft()
                if name in tried:
                    continue
                tried.add(name)
                rt = self.deployments[name]
                if hedge_after is not None and queue:
                    outcome = await self._hedged(rt, queue, tried, hedge_after, attempt, discard)
                else:
                    outcome = await self._deployment(rt, attempt, waited, more=bool(queue))
                    waited = None
                if isinstance(outcome, Won):
                    return outcome
                if outcome is None:
                    continue  # skipped: breaker open or rate-limited
                err = outcome
                kind = err.kind
                if kind is E.ErrorKind.DEADLINE:
                    raise err
                switch = plan.on_error.get(kind)
                if switch is not None:
                    queue = deque(n for n in switch if n not in tried)
                    self.audit.decisions.append(f"{kind.value} on {name}: switching to {list(queue)}")
                    continue
                if kind is E.ErrorKind.CONTENT_POLICY and plan.final_on_policy:
                    self.audit.decisions.append(f"content policy refusal on {name} is final")
                    raise err
                if kind is E.ErrorKind.BAD_REQUEST:
                    self.audit.decisions.append(f"bad request on {name}: not retried elsewhere")
                    raise err
                if queue:
                    self.audit.decisions.append(f"{kind.value} on {name}: falling back to {queue[0]}")
            if not self.panic:
                ejected = panic_order(self)
                if ejected:
                    self.panic = True
                    self.audit.decisions.append(
                        f"panic: no deployment of {plan.name!r} left but ejected ones; "
                        f"trying {', '.join(ejected)} anyway, the one most likely back first"
                    )
                    queue = deque(ejected)
                    tried.difference_update(ejected)
                    continue
            soonest = soonest_open(self)
            if soonest is None:
                raise exhausted(self)
            name, wait, source = soonest
            self.audit.decisions.append(
                f"every deployment is closed for now; waiting {wait:.3g}s for {name} ({source})"
            )
            await self.clock.sleep(wait)
            self.chain_waited += wait
            waited = (wait, source)
            tried.discard(name)
            queue.append(name)

    async def _hedged(
        self,
        rt: DeploymentRuntime,
        queue: deque[str],
        tried: set[str],
        after: float,
        attempt: AttemptFn[T],
        discard: Discard[T],
    ) -> Won[T] | E.RouterError | None:
        """Run ``rt``; if it has not answered after ``after`` seconds, start the next one too."""
        first = asyncio.ensure_future(self._deployment(rt, attempt, more=True))
        timer = asyncio.ensure_future(self.clock.sleep(after))
        try:
            await asyncio.wait((first, timer), return_when=asyncio.FIRST_COMPLETED)
        except asyncio.CancelledError:
            first.cancel()
            timer.cancel()
            raise
        if first.done():
            timer.cancel()
            return first.result()
        second_name = queue.popleft()
        tried.add(second_name)
        self.audit.decisions.append(
            f"hedge: no answer from {rt.name} after {after:g}s, starting {second_name}"
        )
        second = asyncio.ensure_future(
            self._deployment(self.deployments[second_name], attempt, more=bool(queue))
        )
        pending = {first, second}
        last: E.RouterError | None = None
        winner: Won[T] | None = None
        try:
            while pending and winner is None:
                done, pending = await asyncio.wait(pending, return_when=asyncio.FIRST_COMPLETED)
                for task in (t for t in (first, second) if t in done):
                    outcome = task.result()
                    if isinstance(outcome, Won):
                        if winner is None:
                            winner = outcome
                            self.audit.decisions.append(f"hedge: {outcome.rt.name} answered first")
                        else:  # both answered in the same turn: the second is paid for, not used
                            await self._discard(outcome, discard)
                    elif outcome is not None:
                        last = outcome
            return winner if winner is not None else last
        finally:
            for task in pending:
                task.cancel()
            if pending:
                await asyncio.gather(*pending, return_exceptions=True)

    async def _discard(self, won: Won[T], discard: Discard[T]) -> None:
        usage = await discard(won.result)
        won.record.outcome = "cancelled"
        won.rt.limiter.commit(won.estimate, usage.total_tokens if usage is not None else 0)
        self.finish_record(won.record, won.rt, usage)

    def release(self, rt: DeploymentRuntime) -> None:
        """The probes this request may hold on ``rt`` end without a verdict."""
        rt.breaker.release_probe()
        if self.streamed:
            rt.stream_breaker.release_probe()

    def skip(self, rt: DeploymentRuntime, message: str, wait: float | None, source: WaitSource) -> None:
        """Record that ``rt`` was not tried; ``wait``: seconds until it opens, if known."""
        dep = rt.deployment
        if wait is not None and source == "none":
            source = "cooldown"  # a breaker (the shared gate's), open for a known time
        again = rt.name in self.blocked
        self.blocked[rt.name] = None if wait is None else (self.clock.now() + wait, source)
        if again:
            # Re-checked after waiting for a blocked chain (a half-open probe still out, every
            # 50 ms): the same decision again, so the audit keeps the one record it has.
            return
        err = E.Unavailable(message, provider=dep.provider, model=dep.name, retry_after=wait)
        self.errors.append(err)
        self.emit(
            AttemptRecord(
                model=dep.name,
                provider=dep.provider,
                outcome="skipped",
                started_at=self.clock.now(),
                error_kind=err.kind.value,
                message=message,
                wait_source=source,
            )
        )

    async def _deployment(
        self,
        rt: DeploymentRuntime,
        attempt: AttemptFn[T],
        before: tuple[float, WaitSource] | None = None,
        *,
        more: bool = False,
    ) -> Won[T] | E.RouterError | None:
        """Try one deployment, with retries. A Won, the error that ended it, or None if skipped.

        ``before``: what the request waited for this deployment first (a blocked chain).
        ``more``: the chain has deployments after this one; a deployment that the failure left
        held (the provider said 0 remaining, or 429s keep coming) is then not waited for here."""
        dep = rt.deployment
        policy = self.plan.policy
        tries = 0
        first_at = self.clock.now()
        wait, source = before if before is not None else (0.0, "none")
        while True:
            if self.deadline.expired():
                return self._deadline_error(None)
            gate = await admit(self, rt)
            if not gate.open:
                return None
            _, estimate, waited = gate
            if waited:
                wait, source = wait + waited, "rate-limit"
            record = AttemptRecord(
                model=dep.name,
                provider=dep.provider,
                outcome="success",
                started_at=self.clock.now(),
                wait_s=wait,
                wait_source=source,
            )
            tries += 1
            self.attempts += 1
            try:
                result = await attempt(rt, self.plan.options(rt, self.deadline))
            except E.RouterError as exc:
                err = self._settle_failure(rt, exc, record, estimate)
                if err.kind is E.ErrorKind.DEADLINE:
                    return err
                decision = policy.decide(
                    AttemptState(
                        attempt=tries,
                        error=err,
                        started_at=first_at,
                        now=self.clock.now(),
                        deadline_remaining=self.deadline.remaining(),
                        total_attempts=self.attempts,
                    )
                )
                if not decision.retry:
                    return err
                if more and rt.limiter.blocked_for() > 0.0:
                    self.audit.decisions.append(f"{dep.name}: held by the provider; not waiting for it")
                    return err
                self.audit.decisions.append(f"{dep.name}: {decision.reason}")
                await self.clock.sleep(decision.wait)
                wait, source = decision.wait, decision.source
                continue
            except asyncio.CancelledError:
                self.release(rt)
                rt.limiter.refund(estimate)
                record.outcome = "cancelled"
                self.finish_record(record, rt, None)
                raise
            self._answered(rt)
            rt.rate_limited = 0
            return Won(result, rt, record, estimate)

    def count_failure(self, rt: DeploymentRuntime, kind: E.ErrorKind, *, after_output: bool = False) -> None:
        """Tell ``rt``'s health what a failed attempt says about it: a provider failure counts (a
        stream's body failing, against its stream health only); anything else means it answered."""
        if self.streamed and (after_output or kind in STREAM_FAILURES):
            if not after_output:  # the call went through, its body failed: the deployment is up
                self._answered(rt)
            if kind in BREAKER_COUNTS:
                rt.stream_breaker.on_failure(kind)
            else:
                rt.stream_breaker.release_probe()
            return
        if self.streamed:
            rt.stream_breaker.release_probe()
        if kind in BREAKER_COUNTS:
            rt.breaker.on_failure(kind)
        else:
            self._answered(rt)  # a caller's mistake, a 429...: the deployment is up

    def stream_done(self, rt: DeploymentRuntime) -> None:
        """A stream from ``rt`` ended complete: a success for its stream health."""
        if self.panic:
            rt.stream_breaker.recovered()
        else:
            rt.stream_breaker.on_success()

    def _answered(self, rt: DeploymentRuntime) -> None:
        if self.panic:
            rt.breaker.recovered()
        else:
            rt.breaker.on_success()

    def _deadline_error(self, cause: E.RouterError | None) -> E.DeadlineExceeded:
        total = self.plan.total
        why = f"; last error: {cause}" if cause is not None else ""
        err = E.DeadlineExceeded(f"the request's {total:g}s budget ran out{why}")
        self.errors.append(err)
        return err

    def _settle_failure(
        self, rt: DeploymentRuntime, exc: E.RouterError, record: AttemptRecord, estimate: int
    ) -> E.RouterError:
        """Record a failed attempt and tell the breaker and limiter; the error to act on."""
        kind = exc.kind
        if isinstance(exc, E.TransportError) and self.deadline.expired():
            self.release(rt)  # the request's budget, not the provider, ended it
            err: E.RouterError = self._deadline_error(exc)
            kind = err.kind
        else:
            err = exc
            self.errors.append(err)
            self.count_failure(rt, kind)
            if kind is E.ErrorKind.RATE_LIMIT:
                # A 429 delays this request's retry (the retry policy reads its retry-after). The
                # whole deployment is held only when 429s keep coming (or, through the headers
                # hook, when the provider says 0 remaining), for the retry-after, capped.
                rt.rate_limited += 1
                if rt.rate_limited >= rt.hold_after_429s:
                    ra = exc.retry_after
                    hold = ra if ra is not None and ra > 0 else _HOLD_WITHOUT_RETRY_AFTER
                    rt.limiter.observe(RateLimitSnapshot(remaining_requests=0, reset_requests_s=hold))
            elif kind is E.ErrorKind.QUOTA:  # the key is spent: held for as long as a hold lasts
                hold = rt.limiter.max_hold
                rt.limiter.observe(RateLimitSnapshot(remaining_requests=0, reset_requests_s=hold))
        rt.limiter.refund(estimate)
        record.outcome = "error"
        record.error_kind = kind.value
        record.status = exc.status
        record.message = exc.message
        self.finish_record(record, rt, None)
        return err
