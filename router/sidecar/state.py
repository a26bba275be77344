"""State shared by the sidecar's app and handlers, behind one typed app key."""

from __future__ import annotations

import asyncio
import contextvars
import logging
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router.sidecar.alerts import AlertWatcher
from router.sidecar.errors import Scrubber
from router.sidecar.lifecycle import RouterHolder, RouterLike
from router.sidecar.metrics import Metrics
from router.sidecar.settings import SidecarSettings
from router.types import AttemptRecord, AuditRecord

log = logging.getLogger("turnout.sidecar")


@dataclass(slots=True)
class Built:
    """What a router factory returns: the router and the secret strings its configuration holds."""

    router: RouterLike
    secrets: frozenset[str] = frozenset()
    listeners: tuple[Any, ...] = ()  # extra per-router listeners (the audit logger)


RouterFactory = Callable[[], Built]


@dataclass(slots=True)
class State:
    """Everything the handlers share, behind one typed app key."""

    settings: SidecarSettings
    factory: RouterFactory
    metrics: Metrics
    watcher: AlertWatcher | None
    holder: RouterHolder | None = None
    scrub: Scrubber = field(default_factory=Scrubber)
    active: int = 0  # requests inside /v1 right now (the concurrency limit)
    started: int = field(default_factory=lambda: int(time.time()))
    ready: bool = False
    reload_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    secrets: set[str] = field(default_factory=set)  # of every generation, so old ones stay scrubbed
    # Called after POST /admin/reload succeeded (a worker tells its supervisor: the others follow).
    on_admin_reload: Callable[[], None] | None = None

    def add_secrets(self, more: frozenset[str]) -> None:
        self.secrets |= more | set(self.settings.server.api_keys) | _webhook(self.settings)
        self.scrub = Scrubber(self.secrets)


STATE: web.AppKey[State] = web.AppKey("turnout_state", State)

# The audit record of the request being served, found by the listener below. A one-slot list is set
# per request: child tasks the router may start copy the context, but share the list.
CURRENT_RECORD: contextvars.ContextVar[list[AuditRecord | None]] = contextvars.ContextVar("turnout_record")


class _RecordCatcher:
    """Router listener that hands each request's audit record to its handler."""

    def on_attempt(self, route: str, attempt: AttemptRecord) -> None:
        pass

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        pass

    def on_request(self, record: AuditRecord) -> None:
        slot = CURRENT_RECORD.get(None)
        if slot is not None and slot[0] is None:
            slot[0] = record


def _webhook(settings: SidecarSettings) -> set[str]:
    return {settings.alerts.webhook} if settings.alerts.webhook else set()


def attach_listeners(state: State, built: Built) -> None:
    router = built.router
    router.add_listener(_RecordCatcher())
    router.add_listener(state.metrics)
    if state.watcher is not None:
        router.add_listener(state.watcher)
    for listener in built.listeners:
        router.add_listener(listener)


async def reload(app: web.Application) -> tuple[bool, str]:
    """Build a new router from the configuration and swap it in; (ok, message)."""
    state = app[STATE]
    assert state.holder is not None
    async with state.reload_lock:
        try:
            built = state.factory()
        except Exception as exc:  # an invalid file keeps the running configuration
            state.metrics.reloads.labels("error").inc()
            return False, state.scrub(str(exc))
        attach_listeners(state, built)
        gen = state.holder.swap(built.router, built.secrets, state.settings.server.drain_timeout)
        state.add_secrets(built.secrets)
        state.metrics.reloads.labels("ok").inc()
        return True, f"configuration generation {gen.number} loaded"
