"""The sidecar's endpoints besides the hot ones: the model list, health and readiness, metrics,
the admin state and reload; and the aiohttp route table that serves them with the hot ones."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from router.sidecar.handlers import PATHS
from router.sidecar.lifecycle import RouterLike
from router.sidecar.state import STATE, State, reload

_JSON = "application/json"


def _state(request: web.Request) -> State:
    return request.app[STATE]


async def models(request: web.Request) -> web.Response:
    state = _state(request)
    assert state.holder is not None
    data = [
        {"id": name, "object": "model", "created": state.started, "owned_by": "turnout"}
        for name in state.holder.current.router.route_names()
    ]
    return web.json_response({"object": "list", "data": data})


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


def serviceable_routes(router: RouterLike) -> list[str]:
    """Routes (and single deployments) with at least one deployment whose breaker is not open."""
    snap = router.snapshot()
    deployments = snap.get("deployments", {})

    def usable(name: str) -> bool:
        breaker = deployments.get(name, {}).get("breaker", {})
        return breaker.get("state") != "open" or (breaker.get("retry_in_s") or 0) <= 0

    chains = {name: route.get("chain", []) for name, route in snap.get("routes", {}).items()}
    return [name for name in router.route_names() if any(usable(m) for m in chains.get(name, [name]))]


async def readyz(request: web.Request) -> web.Response:
    state = _state(request)
    if not state.ready or state.holder is None:
        return web.json_response({"status": "not ready", "reason": "no configuration loaded"}, status=503)
    routes = serviceable_routes(state.holder.current.router)
    if not routes:
        return web.json_response({"status": "not ready", "reason": "no route is serviceable"}, status=503)
    return web.json_response({"status": "ready", "routes": routes, "generation": state.holder.current.number})


async def metrics(request: web.Request) -> web.Response:
    state = _state(request)
    body = generate_latest(state.metrics.scrape)
    return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


async def admin_state(request: web.Request) -> web.Response:
    state = _state(request)
    assert state.holder is not None
    gen = state.holder.current
    firing = [a.payload() for a in state.watcher.firing()] if state.watcher else []
    body = {
        "generation": gen.number,
        "inflight": state.active,
        "routes": gen.router.route_names(),
        "router": gen.router.snapshot(),
        "alerts": firing,
    }
    return web.Response(text=state.scrub(json.dumps(body, default=str)), content_type=_JSON)


async def admin_reload(request: web.Request) -> web.Response:
    ok, message = await reload(request.app)
    if not ok:
        return web.json_response(
            {
                "error": {
                    "message": message,
                    "type": "invalid_request_error",
                    "param": None,
                    "code": "invalid_config",
                }
            },
            status=400,
        )
    hook = _state(request).on_admin_reload
    if hook is not None:
        hook()
    return web.json_response({"status": "reloaded", "message": message})


def add_routes(app: web.Application, hot: Callable[[str], Any]) -> None:
    """aiohttp's routes; ``hot(kind)`` wraps a hot endpoint as an aiohttp handler."""
    for path, kind in PATHS.items():
        app.router.add_post(path, hot(kind))
    app.router.add_get("/v1/models", models)
    app.router.add_get("/healthz", healthz)
    app.router.add_get("/readyz", readyz)
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/admin/state", admin_state)
    app.router.add_post("/admin/reload", admin_reload)
