"""The Redis :class:`~router.state.base.StateStore`: every update is one atomic Lua script.

Keys (``P`` is the configured prefix, ``K`` the deployment or budget; ``{K}`` is a Redis Cluster
hash tag, so all keys of one deployment live in one slot and one script may touch them):

=============================  =======  =====================================================
``P:bucket:{K}``               hash     ``r`` requests, ``t`` tokens, ``l`` last refill, ``b``
                                        blocked until; TTL 120 s (a bucket idle 60 s is full:
                                        expiring it changes nothing) or longer while blocked
``P:breaker:{K}``              hash     ``u`` open until, ``c`` current cooldown; present with
                                        ``u`` past means half-open; TTL ``u`` + max_cooldown
``P:fails:{K}``                list     the last ``failures`` failure times, newest first; TTL
                                        the window
``P:probe:{K}``                string   the half-open probe lease (owner), ``SET NX PX``
``P:spend:{K}:<period start>`` string   a budget's spend (``INCRBYFLOAT``); TTL 40 days
``P:replicas``                 zset     live replicas: owner -> last heartbeat (server ms)
=============================  =======  =====================================================

Admission, the one call on the request path, is batched per deployment: while one admission is in
flight, those that arrive meanwhile queue, and all of them go in the next round trip as one script
that decides each exactly as alone, in arrival order. At one request at a time nothing changes; at
32 concurrent requests one round trip and one redis-py command serve many admissions.

Scripts are sent with EVALSHA (redis-py's ``Script`` loads them again after a server restart
empties its script cache). Times are wall-clock epoch seconds passed by the caller, so the
scripts stay deterministic. Every call has a timeout; any failure is raised as
:class:`~router.state.base.StateStoreError`, for the caller to fall back on local state.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable
from typing import Any, TypeVar

from router.headers import RateLimitSnapshot
from router.state import _lua
from router.state.base import Admission, BreakerSpec, BreakerView, BucketSpec, Lease, StateStoreError

__all__ = ["RedisStore"]

T = TypeVar("T")
MAX_BATCH = 128  # admissions in one batch script: Redis runs a script alone, keep each one short
SPEND_TTL_S = 40 * 86400  # longer than a month: a monthly budget's counter outlives its period

_Head = tuple[str, int, int, int, str]  # key, rpm, tpm, probe ttl (ms), owner
_Rider = tuple[str, int, "asyncio.Future[Any]"]  # now, tokens, the reply's future


def _admission(reply: Any) -> Admission:
    verdict = reply[0]
    if verdict == "ok":
        return Admission("ok", probe=reply[2] == 1)
    if verdict == "wait":
        return Admission("wait", wait=float(reply[1]))
    if verdict in ("open", "probing"):
        return Admission(verdict, until=float(reply[1]))
    raise StateStoreError(f"redis admit script replied {reply!r}")


def _num(x: int | float | None) -> str:
    return "" if x is None else repr(float(x))


class RedisStore:
    """Shared state in Redis; see the module docstring for keys and scripts."""

    name = "redis"

    def __init__(
        self,
        url: str = "redis://127.0.0.1:6379/0",
        *,
        prefix: str = "turnout",
        timeout: float = 0.05,
        client: Any = None,
    ) -> None:
        if client is None:
            import redis.asyncio as aioredis
            from redis.asyncio.retry import Retry
            from redis.backoff import NoBackoff

            # No client-side retries: a failed call falls back to local state at once, and the
            # store's owner reconnects in the background.
            client = aioredis.Redis.from_url(
                url,
                socket_timeout=timeout,
                socket_connect_timeout=timeout,
                retry=Retry(NoBackoff(), 0),
                decode_responses=True,
            )
        self.url = url
        self.prefix = prefix
        self.timeout = timeout
        self._r = client
        reg = client.register_script
        self._admit = reg(_lua.ADMIT)
        self._acquire = reg(_lua.ACQUIRE)
        self._refund = reg(_lua.REFUND)
        self._observe = reg(_lua.OBSERVE)
        self._failure = reg(_lua.FAILURE)
        self._trip = reg(_lua.TRIP)
        self._success = reg(_lua.SUCCESS)
        self._release = reg(_lua.RELEASE)
        self._spend = reg(_lua.SPEND)
        self._admit_many = reg(_lua.ADMIT_MANY)
        self._heartbeat = reg(_lua.HEARTBEAT)
        self._lease = reg(_lua.LEASE)
        self._keys: dict[str, tuple[str, str, str, str]] = {}
        # Admissions waiting for the one in flight of their deployment, and the tasks sending them.
        # Keyed by the deployment and what is the same for all its admissions, so a batch sends
        # those once and each admission only its time and tokens.
        self._riders: dict[_Head, list[_Rider]] = {}
        self._batches: set[asyncio.Task[None]] = set()

    def keys(self, key: str) -> tuple[str, str, str, str]:
        """``(bucket, breaker, fails, probe)`` keys of a deployment (cached: built once each)."""
        ks = self._keys.get(key)
        if ks is None:
            p, tag = self.prefix, f"{{{key}}}"
            ks = self._keys[key] = (
                f"{p}:bucket:{tag}",
                f"{p}:breaker:{tag}",
                f"{p}:fails:{tag}",
                f"{p}:probe:{tag}",
            )
        return ks

    async def _call(self, aw: Awaitable[T]) -> T:
        try:
            async with asyncio.timeout(self.timeout):
                return await aw
        except TimeoutError:
            raise StateStoreError(f"redis at {self.url} did not answer within {self.timeout:g}s") from None
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # redis errors, OSError, bad replies: all mean "not now"
            task = asyncio.current_task()
            if task is not None and task.cancelling():  # the client turned our cancel into an error
                raise asyncio.CancelledError from exc
            raise StateStoreError(f"redis at {self.url}: {type(exc).__name__}: {exc}") from exc

    # --- buckets ---------------------------------------------------------------------------------

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
        head = (key, limits.rpm or 0, limits.tpm or 0, max(1, int(probe_ttl * 1000)), owner)
        riders = self._riders.get(head)
        if riders is not None:  # one of this deployment's admissions is in flight: ride the next batch
            fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
            riders.append((repr(now), tokens, fut))
            return _admission(await fut)
        self._riders[head] = riders = []
        try:
            bucket, br, _, probe = self.keys(key)
            _, rpm, tpm, ttl, _ = head
            reply = await self._call(
                self._admit(keys=(bucket, br, probe), args=(repr(now), rpm, tpm, tokens, ttl, owner))
            )
        finally:
            if riders:
                task = asyncio.get_running_loop().create_task(self._send_batches(head, riders))
                self._batches.add(task)
                task.add_done_callback(self._batches.discard)
            else:
                del self._riders[head]
        return _admission(reply)

    async def _send_batches(self, head: _Head, batch: list[_Rider]) -> None:
        """Send the admissions that arrived while one was in flight, as one script per round trip,
        until none arrive meanwhile (then the next admission goes alone again)."""
        key, rpm, tpm, ttl, owner = head
        bucket, br, _, probe = self.keys(key)
        while batch:
            batch, rest = batch[:MAX_BATCH], batch[MAX_BATCH:]
            self._riders[head] = nxt = rest
            flat = [x for now, tokens, _ in batch for x in (now, tokens)]
            try:
                replies = await self._call(
                    self._admit_many(keys=(bucket, br, probe), args=(len(batch), rpm, tpm, ttl, owner, *flat))
                )
                if not isinstance(replies, list) or len(replies) != len(batch):
                    raise StateStoreError(f"redis batch admit script replied {replies!r}")
            except BaseException as exc:
                error = exc if isinstance(exc, StateStoreError) else StateStoreError(f"redis admit: {exc!r}")
                for _, _, fut in batch:
                    if not fut.done():
                        fut.set_exception(error)
                if not isinstance(exc, Exception):  # cancelled (the store closes): nobody is left waiting
                    for _, _, fut in nxt:
                        if not fut.done():
                            fut.set_exception(error)
                    del self._riders[head]
                    raise
            else:
                for (_, _, fut), reply in zip(batch, replies, strict=True):
                    if not fut.done():
                        fut.set_result(reply)
            batch = nxt
        del self._riders[head]

    async def lease(self, key: str, limits: BucketSpec, requests: int, tokens: int, now: float) -> Lease:
        bucket, br, _, _ = self.keys(key)
        reply = await self._call(
            self._lease(
                keys=(bucket, br), args=(repr(now), limits.rpm or 0, limits.tpm or 0, requests, tokens)
            )
        )
        verdict = reply[0]
        if verdict == "ok":
            return Lease("ok", int(reply[1]), int(reply[2]))
        if verdict == "half":
            return Lease("half")
        if verdict in ("open", "hold"):
            return Lease(verdict, until=float(reply[1]))
        raise StateStoreError(f"redis lease script replied {reply!r}")

    async def acquire(self, key: str, limits: BucketSpec, tokens: int, now: float) -> float:
        reply = await self._call(
            self._acquire(
                keys=(self.keys(key)[0],), args=(repr(now), limits.rpm or 0, limits.tpm or 0, tokens)
            )
        )
        return float(reply)

    async def refund(self, key: str, limits: BucketSpec, tokens: int, requests: int, now: float) -> None:
        await self._call(
            self._refund(
                keys=(self.keys(key)[0],),
                args=(repr(now), limits.rpm or 0, limits.tpm or 0, tokens, requests),
            )
        )

    async def observe_headroom(
        self, key: str, limits: BucketSpec, snapshot: RateLimitSnapshot, now: float
    ) -> None:
        s = snapshot
        await self._call(
            self._observe(
                keys=(self.keys(key)[0],),
                args=(
                    repr(now),
                    limits.rpm or 0,
                    limits.tpm or 0,
                    _num(s.remaining_requests),
                    _num(s.remaining_tokens),
                    _num(s.reset_requests_s),
                    _num(s.reset_tokens_s),
                ),
            )
        )

    # --- breaker ---------------------------------------------------------------------------------

    async def record_failure(self, key: str, breaker: BreakerSpec, now: float) -> float | None:
        _, br, fails, probe = self.keys(key)
        b = breaker
        reply = await self._call(
            self._failure(
                keys=(br, fails, probe),
                args=(repr(now), b.failures, b.window, b.cooldown, b.backoff, b.max_cooldown),
            )
        )
        return None if reply is None else float(reply)

    async def trip(self, key: str, until: float, breaker: BreakerSpec, now: float) -> float:
        _, br, fails, probe = self.keys(key)
        reply = await self._call(
            self._trip(
                keys=(br, fails, probe),
                args=(repr(now), repr(until), breaker.cooldown, breaker.max_cooldown),
            )
        )
        return float(reply)

    async def read_breaker(self, key: str, now: float) -> BreakerView:
        raw = await self._call(self._r.hget(self.keys(key)[1], "u"))
        if raw is None:
            return BreakerView("closed")
        until = float(raw)
        return BreakerView("open" if now < until else "half_open", until)

    async def try_probe(self, key: str, owner: str, ttl: float) -> bool:
        ok = await self._call(self._r.set(self.keys(key)[3], owner, nx=True, px=max(1, int(ttl * 1000))))
        return bool(ok)

    async def release_probe(self, key: str, owner: str) -> None:
        await self._call(self._release(keys=(self.keys(key)[3],), args=(owner,)))

    async def record_success(self, key: str, now: float) -> None:
        _, br, fails, probe = self.keys(key)
        await self._call(self._success(keys=(br, fails, probe), args=(repr(now),)))

    # --- budgets ---------------------------------------------------------------------------------

    def _spend_key(self, key: str, period_start: int) -> str:
        return f"{self.prefix}:spend:{{{key}}}:{int(period_start)}"

    async def add_spend(self, key: str, amount: float, period_start: int) -> float:
        reply = await self._call(
            self._spend(keys=(self._spend_key(key, period_start),), args=(repr(float(amount)), SPEND_TTL_S))
        )
        return float(reply)

    async def get_spend(self, key: str, period_start: int) -> float:
        raw = await self._call(self._r.get(self._spend_key(key, period_start)))
        return 0.0 if raw is None else float(raw)

    # --- replicas --------------------------------------------------------------------------------

    async def heartbeat(self, owner: str, ttl: float) -> int:
        """Say ``owner`` is alive (for ``ttl`` seconds); the number of replicas alive now."""
        key = f"{self.prefix}:replicas"
        return int(await self._call(self._heartbeat(keys=(key,), args=(owner, max(1, int(ttl * 1000))))))

    async def leave(self, owner: str) -> None:
        """``owner`` stops: the others count it out at once."""
        await self._call(self._r.zrem(f"{self.prefix}:replicas", owner))

    async def ping(self) -> None:
        await self._call(self._r.ping())

    async def aclose(self) -> None:
        for task in list(self._batches):
            task.cancel()
        try:
            await self._r.aclose()
        except Exception:  # closing a connection to a dead server must not fail shutdown
            pass

    def __repr__(self) -> str:
        return f"RedisStore({self.url!r}, prefix={self.prefix!r})"
