"""The state store: what router replicas share so they act as one (issue 8).

One sidecar per application pod means many routers talking to the same providers. A
:class:`StateStore` holds what they must agree on: the rate-limit buckets of each deployment
(requests and tokens, tightened by the provider's headers), its circuit breaker (failures,
open-until deadline, the single half-open probe) and budgets' spend.

Two implementations, chosen by the ``state:`` section of the router's configuration:

- :class:`router.state.memory.MemoryStore` — in-process, the default. The router does not call it
  on the request path: the per-deployment :class:`~router.breaker.CircuitBreaker` and
  :class:`~router.ratelimit.RateLimiter` already are the in-memory state, unchanged and as fast.
  It serves budgets and is the reference the Redis store is tested against.
- :class:`router.state.redis.RedisStore` — Redis, every update one atomic Lua script.

Time: every ``now`` and every deadline (``until``) here is **wall-clock epoch seconds**
(:meth:`router.clock.Clock.wall`), because replicas share no monotonic clock. Waits are seconds.

The primitives (names are stable; other modules build on them):

==============================================  ==================================================
``admit(key, limits, breaker, tokens, now,``    the gate of one attempt, in one round trip: breaker
``probe_ttl, owner) -> Admission``              (open? half-open: take the probe lease) then the
                                                buckets (take 1 request + ``tokens``, or the wait)
``lease(key, limits, requests, tokens, now)``  a slice of the buckets for one replica to spend
``-> Lease``                                    locally (closed breaker and no hold only)
``acquire(key, limits, tokens, now) -> float``  the token buckets alone: 0.0 taken, else the wait
``refund(key, limits, tokens, requests, now)``  give back what was taken and not used (< 0: take)
``observe_headroom(key, limits, snap, now)``    the provider's headers: lower levels, block until reset
``record_failure(key, breaker, now)``           a counted failure; the new open-until, or ``None``
``-> float | None``
``trip(key, until, breaker, now) -> float``     open until ``until`` at least (only moves later: max)
``read_breaker(key, now) -> BreakerView``       ``(state, until)``
``try_probe(key, owner, ttl) -> bool``          the half-open probe lease (``SET NX PX``)
``release_probe(key, owner)``                   give the lease back without a verdict
``record_success(key, now)``                    a probe succeeded: closed, no history
``add_spend(key, amount, period_start)``        add to a budget's spend for the period; the new total
``-> float``
``get_spend(key, period_start) -> float``       a budget's spend for the period (0.0 if none)
``ping()`` / ``aclose()``                       health check / release connections
==============================================  ==================================================

``key`` is a deployment name for buckets and breakers, and a budget's name for spend; the store
namespaces it. ``period_start`` is the epoch second the budget period began (an int), so each
period is its own counter and old ones expire.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, Protocol, runtime_checkable

from router.headers import RateLimitSnapshot

__all__ = [
    "Admission",
    "BreakerSpec",
    "BreakerView",
    "BucketSpec",
    "Lease",
    "StateStore",
    "StateStoreError",
    "Verdict",
]

Verdict = Literal["ok", "wait", "open", "probing"]
SharedBreakerState = Literal["closed", "open", "half_open"]


class StateStoreError(Exception):
    """The store could not answer (unreachable, timed out, replied nonsense); callers fall back."""


@dataclass(frozen=True, slots=True)
class BucketSpec:
    """A deployment's configured limits; ``None`` is not enforced."""

    rpm: int | None = None
    tpm: int | None = None


@dataclass(frozen=True, slots=True)
class BreakerSpec:
    """A deployment's breaker parameters (seconds), as in :class:`~router.breaker.CircuitBreaker`."""

    failures: int = 5
    window: float = 30.0
    cooldown: float = 15.0
    max_cooldown: float = 300.0
    backoff: float = 2.0


@dataclass(frozen=True, slots=True)
class Admission:
    """What :meth:`StateStore.admit` decided.

    - ``ok``: go; one request and the tokens were taken; ``probe`` if this is the half-open probe.
    - ``wait``: the buckets are short; nothing was taken; retry in ``wait`` seconds.
    - ``open``: the breaker is open until ``until`` (epoch seconds).
    - ``probing``: half-open, another replica holds the probe lease until about ``until``.
    """

    verdict: Verdict
    wait: float = 0.0
    until: float | None = None
    probe: bool = False


@dataclass(frozen=True, slots=True)
class Lease:
    """What :meth:`StateStore.lease` granted: a slice of the buckets for one replica to spend.

    - ``ok``: ``requests`` requests and ``tokens`` tokens were taken from the buckets (0 requests:
      they are empty; with no request limit, ``requests`` is what was asked).
    - ``open``: the breaker is open until ``until``; ``half``: it is half-open (admissions go one
      by one, for the probe lease); ``hold``: the provider's headers hold it until ``until``.
    """

    verdict: Literal["ok", "open", "half", "hold"]
    requests: int = 0
    tokens: int = 0
    until: float | None = None


@dataclass(frozen=True, slots=True)
class BreakerView:
    """A shared breaker as read now: ``until`` is the open-until deadline (epoch s), if any."""

    state: SharedBreakerState
    until: float | None = None


@runtime_checkable
class StateStore(Protocol):
    """Shared limits, breakers and budgets; every method atomic with respect to other replicas."""

    name: str  # "memory" or "redis", for logs and metrics

    async def admit(
        self,
        key: str,
        limits: BucketSpec,
        breaker: BreakerSpec,
        tokens: int,
        now: float,
        probe_ttl: float,
        owner: str,
    ) -> Admission:
        """Breaker, then buckets, atomically: see :class:`Admission`."""
        ...

    async def lease(self, key: str, limits: BucketSpec, requests: int, tokens: int, now: float) -> Lease:
        """Up to ``requests`` requests and ``tokens`` tokens taken at once, while the breaker is
        closed and nothing holds the deployment: see :class:`Lease`."""
        ...

    async def acquire(self, key: str, limits: BucketSpec, tokens: int, now: float) -> float:
        """Take one request and ``tokens`` tokens (0.0), or nothing and the seconds to wait."""
        ...

    async def refund(self, key: str, limits: BucketSpec, tokens: int, requests: int, now: float) -> None:
        """Give back ``tokens`` and ``requests`` (capped at capacity); negative numbers take more."""
        ...

    async def observe_headroom(
        self, key: str, limits: BucketSpec, snapshot: RateLimitSnapshot, now: float
    ) -> None:
        """Tighten the buckets from the provider's headers; "0 left, reset in s" blocks until then."""
        ...

    async def record_failure(self, key: str, breaker: BreakerSpec, now: float) -> float | None:
        """Count a failure; the open-until deadline if this failure opened (or re-opened) it."""
        ...

    async def trip(self, key: str, until: float, breaker: BreakerSpec, now: float) -> float:
        """Open until ``until`` at least; never shortens a running cooldown. The deadline now."""
        ...

    async def read_breaker(self, key: str, now: float) -> BreakerView:
        """The breaker's state now: closed, open (until), or half-open (cooldown over)."""
        ...

    async def try_probe(self, key: str, owner: str, ttl: float) -> bool:
        """Take the half-open probe lease for ``ttl`` seconds; False if another owner has it."""
        ...

    async def release_probe(self, key: str, owner: str) -> None:
        """Give the lease back (only if ``owner`` holds it)."""
        ...

    async def record_success(self, key: str, now: float) -> None:
        """A success: a half-open breaker closes with no history; otherwise nothing changes."""
        ...

    async def add_spend(self, key: str, amount: float, period_start: int) -> float:
        """Add ``amount`` to the spend of budget ``key`` for the period; the new total."""
        ...

    async def get_spend(self, key: str, period_start: int) -> float:
        """The spend of budget ``key`` for the period so far."""
        ...

    async def ping(self) -> None:
        """Raise :class:`StateStoreError` unless the store answers."""
        ...

    async def aclose(self) -> None:
        """Release connections; the store is not used afterwards."""
        ...
