"""Health state shared by the workers of one host, without Redis (``turnout serve --workers N``).

The supervisor of ``turnout serve --workers N`` hosts one :class:`~router.state.memory.MemoryStore`
(the reference implementation the Redis store is tested against) behind :class:`HostStateServer`,
a Unix socket in a private temporary directory (mode 0700). Each worker reaches it through a
:class:`HostStore`, which the router wraps in :class:`~router.state.resilient.ResilientStore` as
it does Redis: ejections, holds, budgets and the rpm/tpm buckets are the host's, not each
worker's, and a supervisor that stops answering degrades the worker to local state (each worker
then enforces its share of the limits, 1/N of the live workers) instead of failing requests.

Wire: each frame is a 4-byte big-endian length and a JSON array, decoded by the bounded
:func:`turnout.safejson.loads`. A request is ``[id, op, *args]``; the reply ``[id, result]`` or
``[id, null, error]``. One connection per worker carries every call: requests made in the same
turn of the worker's event loop leave in one write (pipelined, as concurrent admissions are), and
replies come back in order.
"""

from __future__ import annotations

import asyncio
import json
import os
import struct
from typing import Any

from router.clock import SYSTEM_CLOCK, Clock
from router.headers import RateLimitSnapshot
from router.state.base import Admission, BreakerSpec, BreakerView, BucketSpec, Lease, StateStoreError
from router.state.memory import MemoryStore
from turnout.safejson import JSONError, loads

__all__ = ["HostStateServer", "HostStore"]

MAX_FRAME = 64 * 1024  # a request is a few hundred bytes; anything longer is nonsense
_LEN = struct.Struct(">I")


def _frame(obj: Any) -> bytes:
    body = json.dumps(obj, separators=(",", ":")).encode()
    return _LEN.pack(len(body)) + body


async def _read_frame(reader: asyncio.StreamReader) -> Any:
    size = _LEN.unpack(await reader.readexactly(4))[0]
    if size > MAX_FRAME:
        raise JSONError(f"frame of {size} bytes is over {MAX_FRAME}")
    return loads(await reader.readexactly(size), max_bytes=MAX_FRAME)


def _limits(v: list[Any]) -> BucketSpec:
    return BucketSpec(rpm=v[0], tpm=v[1])


def _breaker(v: list[Any]) -> BreakerSpec:
    return BreakerSpec(int(v[0]), float(v[1]), float(v[2]), float(v[3]), float(v[4]))


def _snap(v: list[Any]) -> RateLimitSnapshot:
    return RateLimitSnapshot(*v)


class HostStateServer:
    """The supervisor's end: a :class:`MemoryStore` served on a Unix socket, plus worker heartbeats."""

    def __init__(self, path: str, clock: Clock = SYSTEM_CLOCK) -> None:
        self.path = path
        self.clock = clock
        self.store = MemoryStore(clock)
        self._live: dict[str, float] = {}  # worker owner: heartbeat expires at (wall)
        self._server: asyncio.base_events.Server | None = None

    async def start(self) -> None:
        self._server = await asyncio.start_unix_server(self._serve, path=self.path)
        os.chmod(self.path, 0o600)

    async def close(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        try:
            while True:
                req = await _read_frame(reader)
                try:
                    writer.write(_frame([req[0], await self._call(req[1], req[2:])]))
                except Exception as exc:  # bad arguments: an answer, not a dead connection
                    writer.write(_frame([req[0], None, f"{type(exc).__name__}: {exc}"]))
                await writer.drain()  # returns at once unless the worker stopped reading
        except (asyncio.IncompleteReadError, ConnectionError, JSONError, IndexError, KeyError, TypeError):
            pass  # the worker went away, or sent nonsense: drop the connection, it reconnects
        finally:
            writer.close()

    async def _call(self, op: str, a: list[Any]) -> Any:
        s = self.store
        if op == "admit":
            key, lim, br, tok = a[0], _limits(a[1]), _breaker(a[2]), int(a[3])
            adm = await s.admit(key, lim, br, tok, float(a[4]), float(a[5]), a[6])
            return [adm.verdict, adm.wait, adm.until, adm.probe]
        if op == "lease":
            ls = await s.lease(a[0], _limits(a[1]), int(a[2]), int(a[3]), float(a[4]))
            return [ls.verdict, ls.requests, ls.tokens, ls.until]
        if op == "acquire":
            return await s.acquire(a[0], _limits(a[1]), int(a[2]), float(a[3]))
        if op == "refund":
            return await s.refund(a[0], _limits(a[1]), int(a[2]), int(a[3]), float(a[4]))
        if op == "observe_headroom":
            return await s.observe_headroom(a[0], _limits(a[1]), _snap(a[2]), float(a[3]))
        if op == "record_failure":
            return await s.record_failure(a[0], _breaker(a[1]), float(a[2]))
        if op == "trip":
            return await s.trip(a[0], float(a[1]), _breaker(a[2]), float(a[3]))
        if op == "read_breaker":
            view = await s.read_breaker(a[0], float(a[1]))
            return [view.state, view.until]
        if op == "try_probe":
            return await s.try_probe(a[0], a[1], float(a[2]))
        if op == "release_probe":
            return await s.release_probe(a[0], a[1])
        if op == "record_success":
            return await s.record_success(a[0], float(a[1]))
        if op == "add_spend":
            return await s.add_spend(a[0], float(a[1]), int(a[2]))
        if op == "get_spend":
            return await s.get_spend(a[0], int(a[1]))
        if op == "heartbeat":
            now = self.clock.wall()
            self._live[a[0]] = now + float(a[1])
            self._live = {k: t for k, t in self._live.items() if t > now}
            return len(self._live)
        if op == "leave":
            self._live.pop(a[0], None)
            return None
        if op == "ping":
            return None
        raise ValueError(f"unknown op {op!r}")


class HostStore:
    """A worker's :class:`~router.state.base.StateStore` client for the supervisor's
    :class:`HostStateServer`: one connection, pipelined; any failure is a :class:`StateStoreError`."""

    name = "host"

    def __init__(self, path: str, *, timeout: float = 0.05) -> None:
        self.path = path
        self.timeout = timeout
        self._writer: asyncio.StreamWriter | None = None
        self._reader_task: asyncio.Task[None] | None = None
        self._connecting: asyncio.Future[None] | None = None
        self._waiting: dict[int, asyncio.Future[Any]] = {}
        self._next = 0
        self._out: list[bytes] = []

    async def _connect(self) -> None:
        if self._connecting is not None:
            await asyncio.shield(self._connecting)
            return
        self._connecting = asyncio.get_running_loop().create_future()
        try:
            reader, writer = await asyncio.open_unix_connection(self.path)
            self._writer = writer
            self._reader_task = asyncio.get_running_loop().create_task(self._read(reader))
            self._connecting.set_result(None)
        except OSError as exc:
            self._connecting.set_exception(StateStoreError(f"host state socket: {exc}"))
            self._connecting.exception()  # retrieved: the next call tries again
            raise StateStoreError(f"host state socket {self.path}: {exc}") from exc
        finally:
            self._connecting = None

    async def _read(self, reader: asyncio.StreamReader) -> None:
        try:
            while True:
                reply = await _read_frame(reader)
                fut = self._waiting.pop(reply[0], None)
                if fut is not None and not fut.done():
                    if len(reply) > 2:
                        fut.set_exception(StateStoreError(f"host state: {reply[2]}"))
                    else:
                        fut.set_result(reply[1])
        except (asyncio.IncompleteReadError, ConnectionError, JSONError, IndexError, TypeError, KeyError):
            pass
        finally:
            self._lost()

    def _lost(self) -> None:
        if self._writer is not None:
            self._writer.close()
        self._writer = None
        waiting, self._waiting = self._waiting, {}
        for fut in waiting.values():
            if not fut.done():
                fut.set_exception(StateStoreError("host state socket closed"))

    def _flush(self) -> None:
        out, self._out = self._out, []
        if self._writer is not None and out:
            self._writer.write(b"".join(out))

    async def _req(self, op: str, *args: Any) -> Any:
        if self._writer is None:
            await self._connect()
        self._next += 1
        rid = self._next
        fut: asyncio.Future[Any] = asyncio.get_running_loop().create_future()
        self._waiting[rid] = fut
        if not self._out:  # the first request of this loop turn: send all of them at its end
            asyncio.get_running_loop().call_soon(self._flush)
        self._out.append(_frame([rid, op, *args]))
        try:
            async with asyncio.timeout(self.timeout):
                return await fut
        except TimeoutError:
            self._waiting.pop(rid, None)
            raise StateStoreError(f"host state: {op} timed out after {self.timeout}s") from None

    # --- the StateStore primitives ---------------------------------------------------------------

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
        br = [breaker.failures, breaker.window, breaker.cooldown, breaker.max_cooldown, breaker.backoff]
        v = await self._req("admit", key, [limits.rpm, limits.tpm], br, tokens, now, probe_ttl, owner)
        return Admission(v[0], wait=v[1], until=v[2], probe=v[3])

    async def lease(self, key: str, limits: BucketSpec, requests: int, tokens: int, now: float) -> Lease:
        v = await self._req("lease", key, [limits.rpm, limits.tpm], requests, tokens, now)
        return Lease(v[0], requests=v[1], tokens=v[2], until=v[3])

    async def acquire(self, key: str, limits: BucketSpec, tokens: int, now: float) -> float:
        return float(await self._req("acquire", key, [limits.rpm, limits.tpm], tokens, now))

    async def refund(self, key: str, limits: BucketSpec, tokens: int, requests: int, now: float) -> None:
        await self._req("refund", key, [limits.rpm, limits.tpm], tokens, requests, now)

    async def observe_headroom(
        self, key: str, limits: BucketSpec, snapshot: RateLimitSnapshot, now: float
    ) -> None:
        snap = [
            snapshot.remaining_requests,
            snapshot.remaining_tokens,
            snapshot.limit_requests,
            snapshot.limit_tokens,
            snapshot.reset_requests_s,
            snapshot.reset_tokens_s,
        ]
        await self._req("observe_headroom", key, [limits.rpm, limits.tpm], snap, now)

    @staticmethod
    def _br(b: BreakerSpec) -> list[float]:
        return [b.failures, b.window, b.cooldown, b.max_cooldown, b.backoff]

    async def record_failure(self, key: str, breaker: BreakerSpec, now: float) -> float | None:
        v = await self._req("record_failure", key, self._br(breaker), now)
        return None if v is None else float(v)

    async def trip(self, key: str, until: float, breaker: BreakerSpec, now: float) -> float:
        return float(await self._req("trip", key, until, self._br(breaker), now))

    async def read_breaker(self, key: str, now: float) -> BreakerView:
        v = await self._req("read_breaker", key, now)
        return BreakerView(v[0], v[1])

    async def try_probe(self, key: str, owner: str, ttl: float) -> bool:
        return bool(await self._req("try_probe", key, owner, ttl))

    async def release_probe(self, key: str, owner: str) -> None:
        await self._req("release_probe", key, owner)

    async def record_success(self, key: str, now: float) -> None:
        await self._req("record_success", key, now)

    async def add_spend(self, key: str, amount: float, period_start: int) -> float:
        return float(await self._req("add_spend", key, amount, period_start))

    async def get_spend(self, key: str, period_start: int) -> float:
        return float(await self._req("get_spend", key, period_start))

    async def heartbeat(self, owner: str, ttl: float) -> int:
        """Say this worker is alive for ``ttl`` s; the number of workers alive (for degraded shares)."""
        return int(await self._req("heartbeat", owner, ttl))

    async def leave(self, owner: str) -> None:
        await self._req("leave", owner)

    async def ping(self) -> None:
        await self._req("ping")

    async def aclose(self) -> None:
        if self._reader_task is not None:
            self._reader_task.cancel()
            self._reader_task = None
        self._lost()

    def __repr__(self) -> str:
        return f"HostStore({self.path!r})"
