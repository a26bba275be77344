"""The store a router's ``state:`` section asks for."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from router.clock import Clock
from router.state.base import StateStore
from router.state.memory import MemoryStore

if TYPE_CHECKING:
    from router.config import StateConfig
    from router.state.resilient import ResilientStore

__all__ = ["build_store", "store_snapshot"]


def build_store(cfg: StateConfig, clock: Clock) -> tuple[StateStore, ResilientStore | None]:
    """``(store, shared)``: memory gives ``(MemoryStore, None)`` (deployments stay local);
    redis (or host, the supervisor of ``--workers N``) gives the same :class:`ResilientStore` twice
    (deployments share through it)."""
    if cfg.backend == "memory":
        return MemoryStore(clock), None
    from router.state.resilient import ResilientStore

    if cfg.backend == "host":  # the workers of one host, through their supervisor (router.state.host)
        from router.state.host import HostStore

        host = ResilientStore(
            HostStore(cfg.url.removeprefix("unix://"), timeout=cfg.timeout), clock=clock, lease_s=cfg.lease
        )
        return host, host
    from router.state.redis import RedisStore

    shared = ResilientStore(
        RedisStore(cfg.url, prefix=cfg.prefix, timeout=cfg.timeout), clock=clock, lease_s=cfg.lease
    )
    return shared, shared


def store_snapshot(store: StateStore) -> dict[str, Any]:
    """JSON-able health of a store, for ``Router.snapshot()`` and the sidecar's metrics."""
    snap = getattr(store, "snapshot", None)
    if snap is not None:
        result: dict[str, Any] = snap()
        return result
    return {"backend": store.name, "up": True, "errors": 0}
