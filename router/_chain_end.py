"""What a run does when its chain runs out (:class:`~router._engine.RequestRun`).

When the chain runs out (every deployment tried failed, or was skipped) and some deployment of it
was skipped because it is ejected (its breaker open), the request does not give up: it walks the
ejected deployments past their breakers, the one most likely back (its probe due soonest) first:
*panic mode*, as Envoy's panic threshold (with too few healthy hosts, health is ignored). A
success there closes the breaker.

Otherwise, when the chain runs out without a single attempt, every deployment having been skipped for a
wait (a limiter block or bucket, a breaker tripped by a retry-after, a breaker cooldown or the
probe that ends it), the request waits for the one that opens soonest and tries it, as long as
that is within ``rate_limit_wait`` (in all) and before the deadline; otherwise it fails at once
with :class:`~router.errors.Unavailable` and a ``retry_after`` of when the soonest one opens. A
closed door is never waited for while another deployment of the chain is open.
"""

from __future__ import annotations

import random
from typing import TYPE_CHECKING

from router import errors as E
from router.types import WaitSource

if TYPE_CHECKING:
    from router._engine import RequestRun

__all__ = ["exhausted", "panic_order", "soonest_open"]

MIN_CHAIN_WAIT = 0.01  # each wait for a blocked chain takes at least this, so it cannot spin
MAX_SPREAD = 0.5  # seconds: waiters for a closed chain are spread over at most this once it opens


def panic_order(run: RequestRun) -> list[str]:
    """The deployments skipped because they are ejected (not held by a rate limit or a
    provider's retry-after), the one whose probe is due soonest first."""
    found: list[tuple[float, str]] = []
    for name, opens in run.blocked.items():
        if opens is not None and opens[1] != "cooldown":
            continue
        if run.deployments[name].limiter.blocked_for() > 0.0:
            continue
        found.append((opens[0] if opens is not None else float("-inf"), name))  # None: probe out
    found.sort(key=lambda f: f[0])
    return [name for _, name in found]


def soonest_open(run: RequestRun) -> tuple[str, float, WaitSource] | None:
    """The skipped deployment to wait for, when nothing was attempted and the soonest one
    opens within what is left of ``rate_limit_wait`` and of the deadline; else None."""
    if run.attempts or not run.blocked:
        return None
    budget = run.rate_limit_wait - run.chain_waited
    if budget <= 0.0:
        return None
    now = run.clock.now()
    best: tuple[str, float, WaitSource] | None = None
    for name, opens in run.blocked.items():
        if opens is not None and (best is None or opens[0] - now < best[1]):
            best = (name, opens[0] - now, opens[1])
    if best is None:
        return None
    name, wait, source = best
    wait = max(wait, MIN_CHAIN_WAIT)
    left = run.deadline.remaining()
    if wait > budget or (left is not None and wait >= left):
        return None
    # Requests that wait for the same door spread over a short while after it opens instead
    # of arriving together, as a herd; within the wait budget and the deadline.
    room = min(MAX_SPREAD, wait * 0.25, budget - wait, float("inf") if left is None else (left - wait) / 2)
    if room > 0.0:
        rng = run.plan.policy.rng
        wait += (rng.random() if rng is not None else random.random()) * room
    return name, wait, source


def exhausted(run: RequestRun) -> E.RouterError:
    """The error a run whose chain ran out ends with: what failed, and when to come back."""
    errors = run.errors
    now = run.clock.now()
    hints: list[float] = []
    for name in dict.fromkeys(e.model for e in errors if e.model):
        rt = run.deployments.get(name)
        if rt is None:
            continue
        # A skip's own retry_after was measured when it was made: use when it opens instead.
        known = [
            e.retry_after
            for e in errors
            if e.model == name and e.retry_after is not None and not isinstance(e, E.Unavailable)
        ]
        opens = run.blocked.get(name)
        if opens is not None:
            known.append(max(0.0, opens[0] - now))
        retry_at = rt.breaker.retry_at
        if retry_at is not None:
            known.append(max(0.0, retry_at - now))
        if known:
            hints.append(max(known))
    retry_after = min(hints) if hints else None
    if not errors:
        return E.Unavailable(f"route {run.plan.name!r} has no deployment left to try")
    if run.attempts == 0:
        detail = "; ".join(f"{e.model}: {e.message}" for e in errors)
        return E.Unavailable(
            f"no deployment of {run.plan.name!r} is available ({detail})", retry_after=retry_after
        )
    last = next((e for e in reversed(errors) if not isinstance(e, E.Unavailable)), errors[-1])
    exc = E.AllAttemptsFailed(
        f"all {run.attempts} attempts on {run.plan.name!r} failed; last: {last.model}: {last.message}",
        errors=list(errors),
        provider=last.provider,
        model=last.model,
        status=last.status,
        retry_after=retry_after,
        error_type=last.error_type,
    )
    statuses = {e.http_status for e in errors}
    if len(statuses) == 1:
        exc.http_status = statuses.pop()
    return exc
