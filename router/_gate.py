"""The doors before each attempt: may a request try a deployment now?

:func:`admit` asks, in order, the shared store when the deployment has one (a breaker and buckets
shared by every replica; when the store is down, the local doors), the breaker (past it in panic
mode), the stream health for a streamed request (its ``stream_breaker``, which only failures of
a stream's body count against), then the rate limiter, which a request waits
for only briefly (``TINY_WAIT``): a longer wait is the chain's to take, once every deployment of
it turns out to be closed (:mod:`router._chain_end`). A closed door is recorded on the run as a
skip (:meth:`RequestRun.skip <router._engine.RequestRun.skip>`) with when it opens.
"""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, NamedTuple

from router._runtime import DeploymentRuntime
from router.breaker import CircuitBreaker
from router.ratelimit import estimate_tokens
from router.types import WaitSource

if TYPE_CHECKING:
    from router._engine import RequestRun

__all__ = ["CLOSED", "Gate", "admit"]

TINY_WAIT = 0.05  # a local limit that frees up this soon is waited for, not skipped


class Gate(NamedTuple):
    """The gate's verdict on one attempt: ``open`` (if not, the skip is recorded), the tokens taken
    from the limiter for it and the seconds waited for the limiter."""

    open: bool
    estimate: int = 0
    waited: float = 0.0


CLOSED = Gate(False)


async def admit(run: RequestRun, rt: DeploymentRuntime) -> Gate:
    """Breaker and limiter: may ``rt`` be tried now (a skip is recorded when not)?"""
    if rt.shared is not None and not run.panic:  # shared state; False: the store is down, go local
        shared = await rt.shared.gate(run, rt)
        if shared is None:
            return CLOSED
        if shared is not False:
            return Gate(True, *shared)
    breaker = rt.breaker
    if run.panic:
        pass  # panic mode: past the breakers, once (router._chain_end)
    elif not breaker.allow():
        closed(run, rt, breaker, "circuit breaker")
        return CLOSED
    elif run.streamed and not rt.stream_breaker.allow():
        breaker.release_probe()
        closed(run, rt, rt.stream_breaker, "ejected for streams")
        return CLOSED
    limiter = rt.limiter
    estimate = 0
    if limiter.tpm is not None:
        estimate = estimate_tokens(run.text_chars(), run.tokens_hint or rt.deployment.max_tokens)
    waited = 0.0
    while True:
        wait = limiter.try_acquire(estimate)
        if wait == 0.0:
            return Gate(True, estimate, waited)
        left = run.deadline.remaining()
        # Longer waits are not taken here: another deployment may be open now; the chain
        # waits (run) only once every deployment has turned out to be closed.
        if wait > TINY_WAIT or (left is not None and wait >= left):
            run.release(rt)
            run.skip(rt, f"local rate limit, retry in {wait:.3g}s", wait, "rate-limit")
            return CLOSED
        try:
            await run.clock.sleep(wait)
        except asyncio.CancelledError:
            run.release(rt)
            raise
        waited += wait


def closed(run: RequestRun, rt: DeploymentRuntime, breaker: CircuitBreaker, what: str) -> None:
    """Record the skip of ``rt`` whose ``breaker`` is closed to this request."""
    now = run.clock.now()  # read only for a closed door: the open one needs no time
    retry_at = breaker.retry_at
    source: WaitSource = "retry-after" if breaker.asked else "cooldown"
    if retry_at is None:  # half-open, another request's probe in flight: it answers soon
        wait = TINY_WAIT
        msg = f"{what} half-open, probe in flight"
    else:
        wait = max(0.0, retry_at - now)
        held = rt.limiter.blocked_for()  # when the breaker opens, the limiter may still hold
        if held > wait:
            wait, source = held, "rate-limit"
        msg = f"{what} open, retry in {wait:.3g}s"
    run.skip(rt, msg, wait, source)
