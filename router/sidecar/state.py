"""State shared by the sidecar's app and handlers, behind one typed app key."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from router.sidecar.alerts import AlertWatcher
from router.sidecar.errors import Scrubber
from router.sidecar.lifecycle import RouterHolder, RouterLike
from router.sidecar.metrics import Metrics
from router.sidecar.settings import ServerSettings, SidecarSettings
from turnout.logs import get_logger

log = get_logger("turnout.sidecar")


@dataclass(slots=True)
class Built:
    """What a router factory returns: the router and the secret strings its configuration holds."""

    router: RouterLike
    secrets: frozenset[str] = frozenset()
    listeners: tuple[Any, ...] = ()  # extra per-router listeners (the audit logger)
    settings: SidecarSettings | None = None  # the file's sidecar sections, when read from one


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
    # Told the new ``server:`` settings when a reload changes them (the guard, the front door).
    on_server_settings: list[Callable[[ServerSettings], None]] = field(default_factory=list)

    def add_secrets(self, more: frozenset[str]) -> None:
        self.secrets |= more | set(self.settings.server.api_keys) | _webhook(self.settings)
        self.scrub = Scrubber(self.secrets)


STATE: web.AppKey[State] = web.AppKey("turnout_state", State)


def _webhook(settings: SidecarSettings) -> set[str]:
    return {settings.alerts.webhook} if settings.alerts.webhook else set()


def attach_listeners(state: State, built: Built) -> None:
    router = built.router
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
        refused = _restart_needed(state.settings, built.settings)
        if refused:
            await built.router.aclose()
            state.metrics.reloads.labels("error").inc()
            message = (
                f"not reloaded: {', '.join(refused)} changed, which takes a restart; nothing was applied"
            )
            log.warning("reload refused: %s", message)
            return False, message
        attach_listeners(state, built)
        changed = _apply_server(state, built.settings)
        gen = state.holder.swap(built.router, built.secrets, state.settings.server.drain_timeout)
        state.add_secrets(built.secrets)
        state.metrics.reloads.labels("ok").inc()
        applied = f"; server settings applied: {', '.join(changed)}" if changed else ""
        log.info("configuration generation %d loaded%s", gen.number, applied)
        return True, f"configuration generation {gen.number} loaded{applied}"


# What a reload can apply to a running sidecar; any other change in the sidecar's sections (the
# listening address, the body limit aiohttp's server was built with, audit, alerts) needs a restart.
_LIVE = frozenset(
    {
        "api_keys",
        "admin_keys",
        "max_concurrency",
        "drain_timeout",
        "head_timeout",
        "body_timeout",
        "max_connections",
    }
)


def _changed(old: Any, new: Any, prefix: str) -> list[str]:
    a, b = old.model_dump(), new.model_dump()
    return [f"{prefix}.{name}" for name in a if a[name] != b[name]]


def _restart_needed(current: SidecarSettings, loaded: SidecarSettings | None) -> list[str]:
    if loaded is None:
        return []
    names = [n for n in _changed(current.server, loaded.server, "server") if n[len("server.") :] not in _LIVE]
    return (
        names
        + _changed(current.audit, loaded.audit, "audit")
        + _changed(current.alerts, loaded.alerts, "alerts")
    )


def _apply_server(state: State, loaded: SidecarSettings | None) -> list[str]:
    if loaded is None or loaded.server == state.settings.server:
        return []
    changed = _changed(state.settings.server, loaded.server, "server")
    state.settings = loaded
    for apply in state.on_server_settings:
        apply(loaded.server)
    return changed
