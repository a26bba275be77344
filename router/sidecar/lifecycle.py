"""The router's lifetime inside the sidecar: atomic swaps on reload, draining before close.

Each request takes a reference to the current :class:`Generation` and gives it back when it is
done (streams included). A reload installs a new generation at once; the old one is closed only
after its last request has finished, or after the drain timeout, whichever comes first.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Protocol

from router.outcome import Outcome, StreamOutcome
from router.types import ChatRequest, ChatResponse, EmbeddingRequest, EmbeddingResponse
from turnout.logs import get_logger

log = get_logger("turnout.sidecar")


class RouterLike(Protocol):
    """What the sidecar needs of :class:`router.Router` (tests use a small fake)."""

    async def complete_outcome(self, request: ChatRequest) -> Outcome[ChatResponse]: ...

    def stream_outcome(self, request: ChatRequest) -> StreamOutcome: ...

    async def embed_outcome(self, request: EmbeddingRequest) -> Outcome[EmbeddingResponse]: ...

    def route_names(self) -> list[str]: ...

    def snapshot(self) -> Mapping[str, Any]: ...

    def add_listener(self, listener: Any) -> None: ...

    async def aclose(self) -> None: ...


@dataclass(slots=True, eq=False)
class Generation:
    """One loaded configuration's router and the requests still using it."""

    router: RouterLike
    number: int
    secrets: frozenset[str] = frozenset()
    inflight: int = 0
    retired: bool = False
    drained: asyncio.Event = field(default_factory=asyncio.Event)


class RouterHolder:
    """Holds the current generation; swaps and drains."""

    def __init__(self, router: RouterLike, secrets: frozenset[str] = frozenset()) -> None:
        self.current = Generation(router, 1, secrets)
        self._closing: set[asyncio.Task[None]] = set()

    def acquire(self) -> Generation:
        gen = self.current
        gen.inflight += 1
        return gen

    @staticmethod
    def release(gen: Generation) -> None:
        gen.inflight -= 1
        if gen.retired and gen.inflight == 0:
            gen.drained.set()

    def swap(self, router: RouterLike, secrets: frozenset[str], drain_timeout: float) -> Generation:
        """Install a new router now; close the old one once its requests are done."""
        old = self.current
        self.current = Generation(router, old.number + 1, secrets)
        old.retired = True
        if old.inflight == 0:
            old.drained.set()
        task = asyncio.create_task(self._retire(old, drain_timeout))
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)
        return self.current

    async def _retire(self, gen: Generation, drain_timeout: float) -> None:
        try:
            await asyncio.wait_for(gen.drained.wait(), drain_timeout)
        except TimeoutError:
            log.warning(
                "generation %d: %d requests still running after %.1fs",
                gen.number,
                gen.inflight,
                drain_timeout,
            )
        finally:  # also when the sidecar shuts down first: the old router is closed either way
            try:
                await gen.router.aclose()
            except Exception:
                log.exception("closing the previous router failed")

    def inflight(self) -> int:
        return self.current.inflight

    async def wait_idle(self, timeout: float) -> bool:
        """Wait until no request is running on any generation; False if the timeout passed.

        Earlier generations still draining after a reload count too (their retirement tasks end
        when they are drained)."""
        gen = self.current
        gen.retired = True  # no new generation follows: the drained event now means "idle"
        if gen.inflight == 0:
            gen.drained.set()
        try:
            async with asyncio.timeout(timeout):
                await gen.drained.wait()
                if self._closing:
                    await asyncio.wait(list(self._closing))
            return True
        except TimeoutError:
            return False

    async def aclose(self) -> None:
        for task in list(self._closing):
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        await self.current.router.aclose()
