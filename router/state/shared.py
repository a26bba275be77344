"""A deployment's breaker and limiter, shared through a store: the local objects stay, and sync.

With ``state: {backend: redis}``, each deployment gets a :class:`SharedBreaker` and a
:class:`SharedLimiter` (subclasses of the local ones, so everything that reads them, the
snapshot, the metrics, the engine's calls, is unchanged) and a :class:`SharedDeployment` that
the engine's gate awaits once per attempt:

- **admission** (one Lua script, one round trip): the shared breaker (open? half-open: take the
  one probe lease, so only one replica probes), then the shared request and token buckets. The
  verdict is mirrored into the local breaker (a peer opened it: trip it here too; the peers
  closed it: reset here), so ``/admin/state`` and the ``breaker_state`` gauge show shared truth.
- **outcomes** (queued, never awaited by the request): ejections (each replica's health model
  judges the traffic it sees, as each Envoy's outlier detection does, and an ejection it decides
  is written to the store, so every replica skips the deployment until the shared probe says it
  is back), the probe's verdict, refunds and the provider's rate-limit headers (holds).

When the store is down, :meth:`SharedDeployment.gate` returns ``False`` without a network call
and the engine runs its local gate on the same local objects, which kept being updated (each
shared admission also takes from the local bucket), so the fallback starts from a sensible
state. With the memory backend none of this exists: the engine's only extra work is one
``is None`` test per attempt.
"""

from __future__ import annotations

import asyncio
import dataclasses
from typing import TYPE_CHECKING, Any, Literal

from router.breaker import CircuitBreaker
from router.clock import Clock
from router.errors import ErrorKind
from router.headers import RateLimitSnapshot
from router.ratelimit import RateLimiter, estimate_tokens
from router.state.base import BreakerSpec, BucketSpec
from router.state.resilient import ResilientStore

if TYPE_CHECKING:
    from router._engine import RequestRun
    from router._runtime import DeploymentRuntime

__all__ = ["SharedBreaker", "SharedDeployment", "SharedLimiter"]

TINY_WAIT = 0.05  # as the engine's: a limit that frees up this soon is waited for, not skipped
REFUND_EVERY = 0.05  # seconds: refunds of one deployment are summed this long, then sent as one
OBSERVE_EVERY = 0.25  # seconds: headers that only lower a level are sent at most this often
LEASE_SHARE = 20  # a lease holds at most 1/20 of a minute's limit, so no replica strands much


class SharedDeployment:
    """One deployment's link to the shared store (see the module docstring)."""

    __slots__ = (
        "_cap_r",
        "_cap_t",
        "_last_observe",
        "_lease_r",
        "_lease_t",
        "_lease_until",
        "_refund_queued",
        "_refund_requests",
        "_refund_tokens",
        "_renewal",
        "_renewing",
        "_win_count",
        "_win_start",
        "_win_tokens",
        "breaker",
        "clock",
        "key",
        "lease_s",
        "limiter",
        "limits",
        "probe_ttl",
        "probing",
        "spec",
        "store",
    )

    def __init__(
        self,
        key: str,
        store: ResilientStore,
        breaker: SharedBreaker,
        limiter: SharedLimiter,
        clock: Clock,
        probe_ttl: float,
        lease: float = 0.0,
    ) -> None:
        self.key = key
        self.store = store
        self.breaker = breaker
        self.limiter = limiter
        self.clock = clock
        self.probe_ttl = probe_ttl
        self.limits = BucketSpec(limiter.rpm, limiter.tpm)
        self.spec = BreakerSpec(
            breaker.failures, breaker.window, breaker.cooldown, breaker.max_cooldown, breaker.backoff
        )
        self.probing = False  # this replica holds the shared probe lease
        self._last_observe = float("-inf")
        self._refund_tokens = self._refund_requests = 0
        self._refund_queued = False
        # Leasing (see gate): a slice of the shared buckets spent here without a round trip.
        rpm, tpm = self.limits.rpm, self.limits.tpm
        self.lease_s = lease
        self._cap_r = 1_000_000 if rpm is None else rpm // LEASE_SHARE
        self._cap_t = 0 if tpm is None else tpm // LEASE_SHARE
        if self._cap_r < 2 or (tpm is not None and self._cap_t < 1):
            self.lease_s = 0.0  # limits this small are shared one admission at a time
        self._lease_r = 0
        self._lease_t = 0.0 if tpm is not None else float("inf")
        self._lease_until = float("-inf")
        self._renewing = False
        self._renewal: asyncio.Task[None] | None = None
        self._win_start = float("-inf")
        self._win_count = self._win_tokens = 0
        breaker.shared = self
        limiter.shared = self
        store.deployments.append(self)

    def _mono(self, wall: float) -> float:
        return self.clock.now() + (wall - self.clock.wall())

    def _wall(self, mono: float) -> float:
        return self.clock.wall() + (mono - self.clock.now())

    # --- the gate --------------------------------------------------------------------------------

    async def gate(self, run: RequestRun, rt: DeploymentRuntime) -> tuple[int, float] | Literal[False] | None:
        """The engine's gate on shared state: ``(estimate, waited)``, None after recording a
        skip, or False when the store is down (the engine then runs its local gate)."""
        store = self.store
        local_limiter = self.limiter
        estimate = 0
        if local_limiter.tpm is not None:
            estimate = estimate_tokens(run.text_chars(), run.tokens_hint or rt.deployment.max_tokens)
        clock = self.clock
        if self.lease_s:
            now = clock.now()
            if now - self._win_start > self.lease_s:
                self._win_start, self._win_count, self._win_tokens = now, 0, 0
            self._win_count += 1
            self._win_tokens += estimate
            if now >= self._lease_until:
                if self._lease_r:
                    self.drop_lease()  # the period is over: what is left goes back, a new one is asked
            elif (
                self._lease_r >= 1
                and self._lease_t >= estimate
                and not self.probing
                and self.breaker.state == "closed"
                and RateLimiter.try_acquire(local_limiter, estimate) == 0.0
            ):
                self._lease_r -= 1
                self._lease_t -= estimate
                if not self._renewing and (
                    self._lease_r * 2 < self._win_count or now > self._lease_until - self.lease_s / 2
                ):
                    self._renew()  # half the lease or half its period gone: renew ahead of need
                return estimate, 0.0
        waited = 0.0
        while True:
            adm = await store.call(
                store.primary.admit,
                self.key,
                self.limits,
                self.spec,
                estimate,
                clock.wall(),
                self.probe_ttl,
                store.owner,
            )
            if adm is None:
                return False
            verdict = adm.verdict
            local = self.breaker
            if verdict == "ok":
                if adm.probe:
                    self.probing = True
                elif local.state != "closed":
                    CircuitBreaker.reset(local)  # the peers closed it
                RateLimiter.try_acquire(local_limiter, estimate)  # keep the local level near reality
                if (
                    self.lease_s
                    and self._win_count >= 2
                    and self._lease_r * 2 < self._win_count
                    and not self._renewing
                    and not adm.probe
                ):
                    self._renew()  # traffic enough to spend a lease: admit the next ones locally
                return estimate, waited
            if verdict != "wait":  # open, or half-open with a peer's probe in flight
                until = adm.until if adm.until is not None else clock.wall()
                CircuitBreaker.trip(local, self._mono(until))
                wait = max(0.0, until - clock.wall())
                why = (
                    "circuit breaker open"
                    if verdict == "open"
                    else "circuit breaker half-open, probed elsewhere"
                )
                run.skip(rt, f"{why} (shared), retry in {wait:.3g}s", wait, "none")
                return None
            wait = adm.wait
            left = run.deadline.remaining()
            # as the engine's gate: longer waits are the chain's to take, once all are closed
            if wait > TINY_WAIT or (left is not None and wait >= left):
                run.skip(rt, f"shared rate limit, retry in {wait:.3g}s", wait, "rate-limit")
                return None
            await clock.sleep(wait)
            waited += wait

    # --- leases ----------------------------------------------------------------------------------
    # At a few requests a second every admission is a round trip, as before. Once a deployment
    # sees two or more admissions within one lease period, this replica leases a slice of the
    # shared buckets (twice the admissions of its current period, at most 1/LEASE_SHARE of the
    # minute's limit) in one script and admits from it locally; it tops the lease up when half is
    # spent, and what is left when the period ends goes back to the buckets. The buckets stay
    # exact (what is leased was taken from them); a replica that dies strands at most its slice,
    # which the buckets refill within 60/LEASE_SHARE s. The lease is granted only while the
    # breaker is closed and no hold is in force, and each renewal reads both again, so a peer's
    # ejection or the provider's hold reaches this replica within one lease period (a local
    # ejection or hold stops the lease at once: the gate checks the local breaker and limiter).

    def _renew(self) -> None:
        self._renewing = True
        requests = min(max(2, self._win_count * 2), self._cap_r)
        tokens = min(self._win_tokens * 2, self._cap_t)
        self._renewal = asyncio.get_running_loop().create_task(self._send_lease(requests, tokens))

    async def _send_lease(self, requests: int, tokens: int) -> None:
        store = self.store
        try:  # None: the store is down (the lease runs out; the local gate takes over)
            lease = await store.call(
                store.primary.lease, self.key, self.limits, requests, tokens, self.clock.wall()
            )
        finally:
            self._renewing = False
        if lease is None:
            return
        if lease.verdict == "ok":
            if lease.requests:
                self._lease_r += lease.requests
                self._lease_t += lease.tokens
                self._lease_until = self.clock.now() + self.lease_s
                # the period's end gives back what is left if no request comes (a timer may fire early)
                asyncio.get_running_loop().call_later(self.lease_s * 1.01, self._expire)
            return
        self.drop_lease()
        if lease.verdict == "open" and lease.until is not None:
            CircuitBreaker.trip(self.breaker, self._mono(lease.until))  # a peer ejected it

    def _expire(self) -> None:
        if self.clock.now() >= self._lease_until:
            self.drop_lease()

    def drop_lease(self) -> None:
        """Give what is left of the lease back to the shared buckets."""
        left_r, left_t = self._lease_r, self._lease_t
        self._lease_r = 0
        if self.limits.tpm is not None:
            self._lease_t = 0.0
        self._lease_until = float("-inf")
        if left_r or (self.limits.tpm is not None and left_t >= 1):
            self.refund(int(left_t) if self.limits.tpm is not None else 0, left_r)

    # --- outcomes, queued ------------------------------------------------------------------------

    def failure(self) -> None:
        self.probing = False  # the verdict: the script re-opens and drops the lease
        self.store.submit(self.store.primary.record_failure, self.key, self.spec, self.clock.wall())

    def success(self) -> None:
        if self.probing:  # only a probe's success changes shared state: no write per request
            self.probing = False
            self.store.submit(self.store.primary.record_success, self.key, self.clock.wall())
            if self.breaker.state != "closed":  # the local mirror was open (a peer opened it)
                CircuitBreaker.reset(self.breaker)

    def recovered(self) -> None:
        """A request sent past the breaker (panic mode) succeeded: closed for every replica."""
        self.probing = False
        self.store.submit(self.store.primary.record_success, self.key, self.clock.wall())

    def release(self) -> None:
        if self.probing:
            self.probing = False
            self.store.submit(self.store.primary.release_probe, self.key, self.store.owner)

    def trip(self, until: float) -> None:
        now = self.clock.wall()
        self.store.submit(self.store.primary.trip, self.key, self._wall(until), self.spec, now)

    def refund(self, tokens: int, requests: int) -> None:
        # Refunds add up: they are summed here for REFUND_EVERY, then sent as one write, so a
        # token estimate corrected on every response does not mean a write (about 100 us of
        # redis-py CPU) each: at thousands of requests a second that cost as much as admissions.
        if (tokens and self.limits.tpm is not None) or (requests and self.limits.rpm is not None):
            self._refund_tokens += tokens
            self._refund_requests += requests
            if not self._refund_queued:
                self._refund_queued = True
                asyncio.get_running_loop().call_later(REFUND_EVERY, self.store.submit, self._send_refund)

    async def _send_refund(self) -> None:
        tokens, requests = self._refund_tokens, self._refund_requests
        self._refund_tokens = self._refund_requests = 0
        self._refund_queued = False
        if tokens or requests:
            await self.store.primary.refund(self.key, self.limits, tokens, requests, self.clock.wall())

    def observe(self, snap: RateLimitSnapshot) -> None:
        rr, rt = snap.remaining_requests, snap.remaining_tokens
        blocks = (rr is not None and rr <= 0 and bool(snap.reset_requests_s)) or (
            rt is not None and rt <= 0 and bool(snap.reset_tokens_s)
        )
        lowers = (rr is not None and self.limits.rpm is not None and rr < self.limits.rpm) or (
            rt is not None and self.limits.tpm is not None and rt < self.limits.tpm
        )
        if not (blocks or lowers):
            return
        now = self.clock.wall()
        if not blocks and now - self._last_observe < OBSERVE_EVERY:
            return
        self._last_observe = now
        self.store.submit(self.store.primary.observe_headroom, self.key, self.limits, snap, now)

    def resync(self) -> None:
        """The store is back: write this replica's open breaker to it (never shortens one there)."""
        retry_at = self.breaker.retry_at
        if retry_at is not None and retry_at > self.clock.now():
            self.trip(retry_at)


class SharedBreaker(CircuitBreaker):
    """The local breaker, also telling the shared store what happened (see the module docstring)."""

    __slots__ = ("shared",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:  # CircuitBreaker's own parameters
        super().__init__(*args, **kwargs)
        self.shared: SharedDeployment | None = None

    def on_success(self) -> None:
        super().on_success()
        if self.shared is not None:
            self.shared.success()

    def on_failure(self, kind: ErrorKind | None = None) -> None:
        was, opened = self._state, self.opened
        super().on_failure(kind)
        shared = self.shared
        if shared is None:
            return
        if shared.probing:
            shared.failure()  # the shared probe failed: the store re-opens it, for longer
        elif self.opened != opened and was == "closed":
            shared.trip(self._retry_at)  # type: ignore[arg-type]  # ejected here: for every replica

    def recovered(self) -> None:
        super().recovered()
        if self.shared is not None:
            self.shared.recovered()

    def release_probe(self) -> None:
        super().release_probe()
        if self.shared is not None:
            self.shared.release()

    def trip(self, until: float) -> None:
        super().trip(until)
        if self.shared is not None and until > self.clock.now():
            self.shared.trip(until)


class SharedLimiter(RateLimiter):
    """The local limiter, also sending refunds and the provider's headers to the shared store."""

    __slots__ = ("full", "shared")

    def __init__(self, rpm: int | None, tpm: int | None, clock: Clock) -> None:
        super().__init__(rpm, tpm, clock)
        self.shared: SharedDeployment | None = None
        self.full = (rpm, tpm)  # the configured limits; the local bucket may enforce a share

    def share(self, replicas: int) -> None:
        """Enforce ``1/replicas`` of the configured limits here (the store is down and that many
        replicas were alive), or the whole again (1). Levels above the new capacity are cut."""
        self._refill(self.clock.now())
        rpm, tpm = self.full
        self.rpm = None if rpm is None else max(1, rpm // replicas)
        self.tpm = None if tpm is None else max(1, tpm // replicas)
        self._req_rate = (self.rpm or 0) / 60.0
        self._tok_rate = (self.tpm or 0) / 60.0
        self._req = min(self._req, float(self.rpm or 0))
        self._tok = min(self._tok, float(self.tpm or 0))

    def refund(self, tokens: int, requests: int = 0) -> None:
        super().refund(tokens, requests)
        if self.shared is not None:
            self.shared.refund(tokens, requests)

    def observe(self, snapshot: RateLimitSnapshot) -> None:
        super().observe(snapshot)
        if self.shared is not None:
            cap = self.max_hold  # the store holds no longer than the local limiter does
            if (snapshot.reset_requests_s or 0.0) > cap or (snapshot.reset_tokens_s or 0.0) > cap:
                rr, rt = snapshot.reset_requests_s, snapshot.reset_tokens_s
                snapshot = dataclasses.replace(
                    snapshot,
                    reset_requests_s=None if rr is None else min(rr, cap),
                    reset_tokens_s=None if rt is None else min(rt, cap),
                )
            self.shared.observe(snapshot)
