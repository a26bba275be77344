"""A shared store that never fails a request: timeouts, fallback, one warning per outage, reconnect.

:class:`ResilientStore` wraps the primary store (Redis). While it is up, calls go to it; when a
call fails or times out, the store is marked down at once: the ``up`` flag drops to False (the
sidecar exports it as ``turnout_state_store_up``), ``errors`` counts the failure
(``turnout_state_store_errors_total``), a structlog warning is logged once for the outage, and a
background task pings with backoff until the primary answers again. While down, nothing waits on
the primary: deployments use their local breaker and limiter (:mod:`router.state.shared`) and the
store's own methods (budgets) use an in-memory fallback. When the primary is back, local breakers
that are open are written to it, and shared state is authoritative again.

Replicas say they are alive every second (a heartbeat the primary keeps, :data:`LIVE_TTL_S`), so
each knows how many share the limits. While the primary is down, each replica enforces its share
of every deployment's rpm and tpm (1/N for the N replicas alive at the last heartbeat) instead of
the whole, so N replicas together stay within the limit; the whole limit returns with the primary.

Writes that need no answer (a failure to count, a refund, a provider's headers) go through one
ordered queue drained by a background task, so the request path never waits for them.
"""

from __future__ import annotations

import asyncio
import os
from collections import deque
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

from router.clock import SYSTEM_CLOCK, Clock
from router.headers import RateLimitSnapshot
from router.state.base import Admission, BreakerSpec, BreakerView, BucketSpec, Lease, StateStore
from router.state.memory import MemoryStore
from turnout.logs import get_logger

if TYPE_CHECKING:
    from router.state.shared import SharedDeployment

__all__ = ["ResilientStore"]

log = get_logger("turnout.state")

P = ParamSpec("P")
T = TypeVar("T")

MAX_PENDING = 10_000  # queued writes beyond this are dropped (counted): memory stays bounded
HEARTBEAT_S = 1.0  # each replica says it is alive this often (a Redis sorted set)...
LIVE_TTL_S = 3.0  # ...and counts as gone this long after its last heartbeat


class ResilientStore:
    """A :class:`~router.state.base.StateStore` over ``primary`` that degrades instead of failing."""

    def __init__(
        self,
        primary: StateStore,
        *,
        clock: Clock = SYSTEM_CLOCK,
        fallback: StateStore | None = None,
        reconnect_min: float = 0.05,
        reconnect_max: float = 1.0,
        lease_s: float = 0.0,
    ) -> None:
        self.primary = primary
        self.lease_s = lease_s  # seconds a deployment's lease of the shared buckets lasts; 0: none
        self.fallback = fallback if fallback is not None else MemoryStore(clock)
        self.clock = clock
        self.name = primary.name
        self.owner = f"{os.getpid()}-{os.urandom(4).hex()}"  # this replica, for probe leases
        self.up = True
        self.errors = 0  # failed calls to the primary
        self.outages = 0
        self.dropped = 0  # queued writes lost (down, or queue full)
        self.reconnect_min = reconnect_min
        self.reconnect_max = reconnect_max
        self.deployments: list[SharedDeployment] = []
        self.live_replicas = 1  # replicas alive at the last heartbeat, this one included
        self._beat: asyncio.Task[None] | None = None
        self._pending: deque[tuple[Callable[..., Awaitable[Any]], tuple[Any, ...]]] = deque()
        self._wake: asyncio.Event | None = None
        self._idle: asyncio.Event | None = None
        self._writer: asyncio.Task[None] | None = None
        self._reconnect: asyncio.Task[None] | None = None
        self._closed = False
        try:  # built inside a running loop (the sidecar's start-up): say so to the others now
            asyncio.get_running_loop()
        except RuntimeError:
            pass
        else:
            self.start()

    # --- health ----------------------------------------------------------------------------------

    def failed(self, exc: BaseException) -> None:
        """A call to the primary failed: count it; on the first failure of an outage, go local."""
        self.errors += 1
        if not self.up:
            return
        self.up = False
        self.outages += 1
        share = self.live_replicas
        for dep in self.deployments:  # N replicas that each took the whole limit would send N times it
            dep.limiter.share(share)
        log.warning(
            "state store unreachable; serving on local state until it is back",
            store=repr(self.primary),
            error=str(exc),
            replicas=share,
            limits=f"1/{share} of each rpm/tpm here" if share > 1 else "whole",
        )
        if not self._closed and (self._reconnect is None or self._reconnect.done()):
            self._reconnect = asyncio.get_running_loop().create_task(self._reconnect_loop())

    async def _reconnect_loop(self) -> None:
        # Real time, not the injectable clock: this paces network retries, it is not a policy.
        delay = self.reconnect_min
        while not self._closed:
            await asyncio.sleep(delay)
            try:
                await self.primary.ping()
            except Exception:
                delay = min(delay * 2, self.reconnect_max)
                continue
            self.up = True
            log.info("state store reachable again; shared state resumed", store=repr(self.primary))
            for dep in self.deployments:
                dep.limiter.share(1)
                dep.resync()
            await self.beat()
            return

    # --- replicas ------------------------------------------------------------------------------

    def start(self) -> None:
        """Start the heartbeat (needs a running loop; done at the first call if not before)."""
        if self._beat is None and not self._closed and hasattr(self.primary, "heartbeat"):
            self._beat = asyncio.get_running_loop().create_task(self._beat_loop())

    async def beat(self) -> None:
        """One heartbeat now: say this replica is alive and learn how many are."""
        heartbeat = getattr(self.primary, "heartbeat", None)
        if heartbeat is None or not self.up:
            return
        try:
            self.live_replicas = max(1, await heartbeat(self.owner, LIVE_TTL_S))
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed(exc)

    async def _beat_loop(self) -> None:
        # Real time, as the reconnect loop: it paces network calls, it is not a policy.
        while not self._closed:
            await self.beat()
            await asyncio.sleep(HEARTBEAT_S)

    async def call(self, fn: Callable[P, Awaitable[T]], *args: P.args, **kwargs: P.kwargs) -> T | None:
        """``await fn(*args)`` on the primary if it is up; None if it is down or fails now."""
        if self._beat is None:
            self.start()
        if not self.up:
            return None
        try:
            return await fn(*args, **kwargs)
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            self.failed(exc)
            return None

    # --- queued writes ---------------------------------------------------------------------------

    def submit(self, fn: Callable[..., Awaitable[Any]], *args: Any) -> None:
        """Queue ``fn(*args)`` for the primary; dropped (counted) while it is down."""
        if not self.up or self._closed or len(self._pending) >= MAX_PENDING:
            self.dropped += 1
            return
        self._pending.append((fn, args))
        if self._writer is None:
            self._wake, self._idle = asyncio.Event(), asyncio.Event()
            self._writer = asyncio.get_running_loop().create_task(self._write_loop())
        assert self._wake is not None and self._idle is not None
        self._idle.clear()
        self._wake.set()

    async def _write_loop(self) -> None:
        assert self._wake is not None and self._idle is not None
        pending = self._pending
        while not self._closed:
            while pending and not self._closed:
                fn, args = pending.popleft()
                if not self.up:
                    self.dropped += 1
                    continue
                try:
                    await fn(*args)
                except Exception as exc:
                    self.failed(exc)
            self._idle.set()
            self._wake.clear()
            if not self._closed:
                await self._wake.wait()

    async def flush(self) -> None:
        """Wait until every queued write was sent (or dropped)."""
        if self._idle is not None:
            await self._idle.wait()

    def snapshot(self) -> dict[str, Any]:
        return {
            "backend": self.name,
            "up": self.up,
            "errors": self.errors,
            "outages": self.outages,
            "dropped_writes": self.dropped,
            "pending_writes": len(self._pending),
            "live_replicas": self.live_replicas,
        }

    # --- StateStore: the primary, else the in-memory fallback -----------------------------------

    async def _either(self, name: str, *args: Any) -> Any:
        if self.up:
            try:
                return await getattr(self.primary, name)(*args)
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.failed(exc)
        return await getattr(self.fallback, name)(*args)

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
        result: Admission = await self._either("admit", key, limits, breaker, tokens, now, probe_ttl, owner)
        return result

    async def lease(self, key: str, limits: BucketSpec, requests: int, tokens: int, now: float) -> Lease:
        result: Lease = await self._either("lease", key, limits, requests, tokens, now)
        return result

    async def acquire(self, key: str, limits: BucketSpec, tokens: int, now: float) -> float:
        return float(await self._either("acquire", key, limits, tokens, now))

    async def refund(self, key: str, limits: BucketSpec, tokens: int, requests: int, now: float) -> None:
        await self._either("refund", key, limits, tokens, requests, now)

    async def observe_headroom(
        self, key: str, limits: BucketSpec, snapshot: RateLimitSnapshot, now: float
    ) -> None:
        await self._either("observe_headroom", key, limits, snapshot, now)

    async def record_failure(self, key: str, breaker: BreakerSpec, now: float) -> float | None:
        result: float | None = await self._either("record_failure", key, breaker, now)
        return result

    async def trip(self, key: str, until: float, breaker: BreakerSpec, now: float) -> float:
        return float(await self._either("trip", key, until, breaker, now))

    async def read_breaker(self, key: str, now: float) -> BreakerView:
        result: BreakerView = await self._either("read_breaker", key, now)
        return result

    async def try_probe(self, key: str, owner: str, ttl: float) -> bool:
        return bool(await self._either("try_probe", key, owner, ttl))

    async def release_probe(self, key: str, owner: str) -> None:
        await self._either("release_probe", key, owner)

    async def record_success(self, key: str, now: float) -> None:
        await self._either("record_success", key, now)

    async def add_spend(self, key: str, amount: float, period_start: int) -> float:
        return float(await self._either("add_spend", key, amount, period_start))

    async def get_spend(self, key: str, period_start: int) -> float:
        return float(await self._either("get_spend", key, period_start))

    async def ping(self) -> None:
        await self.primary.ping()

    async def aclose(self) -> None:
        self._closed = True
        if self._wake is not None:
            self._wake.set()  # the writer ends at its next turn (a client may swallow a cancel)
        leave = getattr(self.primary, "leave", None)
        if self.up and leave is not None and self._beat is not None:
            try:
                await leave(self.owner)  # the others count this replica out at once
            except Exception:
                pass
        for task in (self._writer, self._reconnect, self._beat):
            if task is not None and not task.done():
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        await self.primary.aclose()

    def __repr__(self) -> str:
        return f"ResilientStore({self.primary!r}, up={self.up})"
