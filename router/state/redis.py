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
from router.state.base import Admission, BreakerSpec, BreakerView, BucketSpec, StateStoreError

__all__ = ["RedisStore"]

T = TypeVar("T")
MAX_BATCH = 128  # admissions in one batch script: Redis runs a script alone, keep each one short
SPEND_TTL_S = 40 * 86400  # longer than a month: a monthly budget's counter outlives its period

# The token bucket, as router.ratelimit.RateLimiter and router.state.memory: shared by scripts.
# KEYS[1] bucket; ARGV[1] now, ARGV[2] rpm (0: none), ARGV[3] tpm (0: none), ARGV[4] tokens.
_BUCKET = """
local EPS = 1e-9
local function fmt(x) return string.format('%.6f', x) end
local function load_bucket(key, now, rpm, tpm)
  local v = redis.call('HMGET', key, 'r', 't', 'l', 'b')
  local r, t, l, b = tonumber(v[1]), tonumber(v[2]), tonumber(v[3]), tonumber(v[4]) or 0
  if r == nil then r, t, l = rpm, tpm, now end
  local dt = now - l
  if dt > 0 then
    l = now
    if rpm > 0 then r = math.min(rpm, r + dt * rpm / 60) end
    if tpm > 0 then t = math.min(tpm, t + dt * tpm / 60) end
  end
  return r, t, l, b
end
local function save_bucket(key, now, r, t, l, b)
  redis.call('HSET', key, 'r', fmt(r), 't', fmt(t), 'l', fmt(l), 'b', fmt(b))
  redis.call('PEXPIRE', key, math.ceil(math.max(120, b - now + 1) * 1000))
end
local function acquire(key, now, rpm, tpm, tokens)
  if rpm <= 0 and tpm <= 0 and redis.call('HEXISTS', key, 'b') == 0 then return 0 end
  local r, t, l, b = load_bucket(key, now, rpm, tpm)
  local wait = 0
  if b > 0 then
    wait = b - now
    if wait <= EPS then b, wait = 0, 0 end
  end
  if rpm > 0 then
    local short = 1 - r
    if short > EPS then wait = math.max(wait, short / (rpm / 60)) end
  end
  if tpm > 0 and tokens > 0 then
    local short = math.min(tokens, tpm) - t
    if short > EPS then wait = math.max(wait, short / (tpm / 60)) end
  end
  if wait <= 0 then
    if rpm > 0 then r = r - 1 end
    if tpm > 0 then t = t - tokens end
  end
  if rpm > 0 or tpm > 0 or b > 0 then save_bucket(key, now, r, t, l, b) end
  return wait
end
"""

# One admission: the breaker (open? half-open: the probe lease), then the buckets.
# kb, kbr, kp: bucket, breaker, probe keys; ttl in ms. Returns the reply of one admission.
_ADMIT_ONE = (
    _BUCKET
    + """
local function admit(kb, kbr, kp, now, rpm, tpm, tokens, ttl, owner)
  local u = tonumber(redis.call('HGET', kbr, 'u'))
  local probe = 0
  if u then
    if now < u then return {'open', fmt(u)} end
    if not redis.call('SET', kp, owner, 'NX', 'PX', ttl) then
      return {'probing', fmt(now + math.max(redis.call('PTTL', kp), 0) / 1000)}
    end
    probe = 1
  end
  local wait = acquire(kb, now, rpm, tpm, tokens)
  if wait > 0 then
    if probe == 1 then redis.call('DEL', kp) end
    return {'wait', fmt(wait)}
  end
  return {'ok', '0', probe}
end
"""
)

# KEYS: bucket, breaker, probe. ARGV: now, rpm, tpm, tokens, probe ttl (ms), owner.
_ADMIT = (
    _ADMIT_ONE
    + """
return admit(KEYS[1], KEYS[2], KEYS[3], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]),
             tonumber(ARGV[4]), ARGV[5], ARGV[6])
"""
)

# Several admissions of one deployment, in arrival order, as one script: each is decided exactly
# as _ADMIT would one at a time (the same function), so the limits stay exact.
# KEYS: bucket, breaker, probe. ARGV: n, rpm, tpm, probe ttl, owner (the same for the batch),
# then n times: now, tokens.
_ADMIT_MANY = (
    _ADMIT_ONE
    + """
local rpm, tpm, ttl, owner = tonumber(ARGV[2]), tonumber(ARGV[3]), ARGV[4], ARGV[5]
local out = {}
for i = 0, tonumber(ARGV[1]) - 1 do
  local a = 6 + i * 2
  local now, tokens = tonumber(ARGV[a]), tonumber(ARGV[a + 1])
  out[i + 1] = admit(KEYS[1], KEYS[2], KEYS[3], now, rpm, tpm, tokens, ttl, owner)
end
return out
"""
)

# KEYS: bucket. ARGV: now, rpm, tpm, tokens.
_ACQUIRE = (
    _BUCKET
    + """
return fmt(acquire(KEYS[1], tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3]), tonumber(ARGV[4])))
"""
)

# KEYS: bucket. ARGV: now, rpm, tpm, tokens, requests.
_REFUND = (
    _BUCKET
    + """
local now, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local tokens, requests = tonumber(ARGV[4]), tonumber(ARGV[5])
if rpm <= 0 and tpm <= 0 then return 0 end
local r, t, l, b = load_bucket(KEYS[1], now, rpm, tpm)
if tpm > 0 and tokens ~= 0 then t = math.min(tpm, t + tokens) end
if rpm > 0 and requests ~= 0 then r = math.min(rpm, r + requests) end
save_bucket(KEYS[1], now, r, t, l, b)
return 1
"""
)

# KEYS: bucket. ARGV: now, rpm, tpm, remaining requests, remaining tokens, reset requests s,
# reset tokens s ('' for unknown).
_OBSERVE = (
    _BUCKET
    + """
local now, rpm, tpm = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local rr, rt = tonumber(ARGV[4]), tonumber(ARGV[5])
local sr, st = tonumber(ARGV[6]), tonumber(ARGV[7])
local r, t, l, b = load_bucket(KEYS[1], now, rpm, tpm)
if rr then
  if rpm > 0 and rr < r then r = rr end
  if rr <= 0 and sr and sr > 0 then b = math.max(b, now + sr) end
end
if rt then
  if tpm > 0 and rt < t then t = rt end
  if rt <= 0 and st and st > 0 then b = math.max(b, now + st) end
end
save_bucket(KEYS[1], now, r, t, l, b)
return 1
"""
)

_BREAKER = """
local function fmt(x) return string.format('%.6f', x) end
local function open(now, till, cooldown, max_cd)
  local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
  if u == nil or till > u then u = till end
  redis.call('HSET', KEYS[1], 'u', fmt(u), 'c', fmt(cooldown))
  redis.call('PEXPIRE', KEYS[1], math.ceil((u - now + max_cd + 1) * 1000))
  redis.call('DEL', KEYS[2], KEYS[3])
  return fmt(u)
end
"""

# KEYS: breaker, fails, probe. ARGV: now, threshold, window, cooldown, backoff, max cooldown.
_FAILURE = (
    _BREAKER
    + """
local now, n, window = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
local base, backoff, max_cd = tonumber(ARGV[4]), tonumber(ARGV[5]), tonumber(ARGV[6])
local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
if u then
  if now < u then return false end
  local c = tonumber(redis.call('HGET', KEYS[1], 'c')) or base
  c = math.min(c * backoff, max_cd)
  return open(now, now + c, c, max_cd)
end
redis.call('LPUSH', KEYS[2], fmt(now))
redis.call('LTRIM', KEYS[2], 0, n - 1)
redis.call('PEXPIRE', KEYS[2], math.ceil(window * 1000))
if redis.call('LLEN', KEYS[2]) >= n and tonumber(redis.call('LINDEX', KEYS[2], -1)) > now - window then
  return open(now, now + base, base, max_cd)
end
return false
"""
)

# KEYS: breaker, fails, probe. ARGV: now, until, cooldown, max cooldown.
_TRIP = (
    _BREAKER
    + """
local now, till = tonumber(ARGV[1]), tonumber(ARGV[2])
local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
if till <= now or (u and u >= till) then return fmt(u or till) end
if u and now < u then
  redis.call('HSET', KEYS[1], 'u', fmt(till))
  redis.call('PEXPIRE', KEYS[1], math.ceil((till - now + tonumber(ARGV[4]) + 1) * 1000))
  return fmt(till)
end
local c = tonumber(redis.call('HGET', KEYS[1], 'c')) or tonumber(ARGV[3])
return open(now, till, c, tonumber(ARGV[4]))
"""
)

# KEYS: breaker, fails, probe. ARGV: now.
_SUCCESS = """
local u = tonumber(redis.call('HGET', KEYS[1], 'u'))
if u and tonumber(ARGV[1]) >= u then redis.call('DEL', KEYS[1], KEYS[2], KEYS[3]) return 1 end
return 0
"""

# KEYS: probe. ARGV: owner.
_RELEASE = """
if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
return 0
"""

# KEYS: replicas. ARGV: owner, ttl ms. The server's clock, so replicas on other hosts agree.
_HEARTBEAT = """
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local ttl = tonumber(ARGV[2])
redis.call('ZADD', KEYS[1], now, ARGV[1])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - ttl)
redis.call('PEXPIRE', KEYS[1], ttl * 2)
return redis.call('ZCARD', KEYS[1])
"""

# KEYS: spend. ARGV: amount, ttl s.
_SPEND = """
local total = redis.call('INCRBYFLOAT', KEYS[1], ARGV[1])
redis.call('EXPIRE', KEYS[1], ARGV[2])
return total
"""


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
        self._admit = reg(_ADMIT)
        self._acquire = reg(_ACQUIRE)
        self._refund = reg(_REFUND)
        self._observe = reg(_OBSERVE)
        self._failure = reg(_FAILURE)
        self._trip = reg(_TRIP)
        self._success = reg(_SUCCESS)
        self._release = reg(_RELEASE)
        self._spend = reg(_SPEND)
        self._admit_many = reg(_ADMIT_MANY)
        self._heartbeat = reg(_HEARTBEAT)
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
