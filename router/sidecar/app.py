"""The sidecar's aiohttp application: OpenAI-compatible endpoints in front of a router.

``create_app(settings, factory)`` builds the app; ``factory()`` is called inside the running loop
to build the router (at start-up and on every reload) and returns a :class:`Built`. Endpoints:

- ``POST /v1/chat/completions`` (streaming and not), ``POST /v1/embeddings``, ``GET /v1/models``
- ``GET /healthz``, ``GET /readyz``, ``GET /metrics``
- ``GET /admin/state`` (breakers, cooldowns, limiter levels, alerts), ``POST /admin/reload``
"""

from __future__ import annotations

import asyncio
import hmac
import logging
from collections.abc import AsyncIterator, Callable
from typing import Any

from aiohttp import web

from router.errors import RouterError
from router.sidecar import handlers
from router.sidecar.alerts import AlertWatcher
from router.sidecar.errors import error_body, router_error_response
from router.sidecar.lifecycle import RouterHolder
from router.sidecar.metrics import Metrics
from router.sidecar.settings import SidecarSettings
from router.sidecar.state import STATE, RouterFactory, State, attach_listeners
from router.sidecar.wire import WireError

log = logging.getLogger("turnout.sidecar")


def json_error(
    status: int, message: str, *, code: str | None = None, param: str | None = None, headers: Any = None
) -> web.Response:
    return web.json_response(
        error_body(message, status=status, code=code, param=param), status=status, headers=headers
    )


def errors_middleware(state: State) -> Any:
    """Every failure as an OpenAI-shaped JSON error; never a bare 500 page or a traceback."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except WireError as exc:
            state.metrics.rejections.labels("bad_request").inc()
            return json_error(400, exc.message, code="invalid_request", param=exc.param)
        except RouterError as exc:
            status, body, headers = router_error_response(exc, state.scrub)
            if status == 404:
                state.metrics.rejections.labels("unknown_route").inc()
            return web.json_response(body, status=status, headers=headers)
        except web.HTTPRequestEntityTooLarge:
            state.metrics.rejections.labels("body_too_large").inc()
            limit = state.settings.server.max_body_bytes
            return json_error(
                413, f"Request body too large: the limit is {limit} bytes.", code="body_too_large"
            )
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
            return json_error(exc.status, f"{exc.reason}: {request.method} {request.path}", code=code)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception:
            log.exception("unhandled error serving %s %s", request.method, request.path)
            return json_error(500, "Internal error in the sidecar.", code="internal_error")

    return middleware


def _key_ok(presented: str, keys: list[bytes]) -> bool:
    """Constant-time comparison against every key (no early exit on a match)."""
    candidate = presented.encode()
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(candidate, key)
    return ok


_GUARDED = ("/v1/", "/admin/")


def guard_middleware(state: State) -> Any:
    """Client API keys, body size and concurrency limits for /v1 and /admin."""
    server = state.settings.server
    keys = [k.encode() for k in server.api_keys]
    limit = server.max_concurrency
    max_body = server.max_body_bytes
    rejections = state.metrics.rejections
    # Read at scrape time rather than moved twice per request: the same count, no lock taken.
    state.metrics.inflight.set_function(lambda: state.active)

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if not request.path.startswith(_GUARDED):
            return await handler(request)
        if keys:
            auth = request.headers.get("Authorization", "")
            token = auth[7:] if auth[:7].lower() == "bearer " else ""
            if not _key_ok(token, keys):
                rejections.labels("auth").inc()
                return json_error(
                    401, "Incorrect API key provided for the turnout sidecar.", code="invalid_api_key"
                )
        length = request.content_length
        if length is not None and length > max_body:
            rejections.labels("body_too_large").inc()
            return json_error(
                413,
                f"Request body too large: {length} bytes, the limit is {max_body} bytes.",
                code="body_too_large",
            )
        if state.active >= limit:
            rejections.labels("concurrency").inc()
            return json_error(
                503,
                f"The sidecar is at its concurrency limit ({limit}); retry shortly.",
                code="overloaded",
                headers={"Retry-After": "1"},
            )
        state.active += 1
        try:
            return await handler(request)
        finally:
            state.active -= 1

    return middleware


def create_app(
    settings: SidecarSettings,
    factory: RouterFactory,
    *,
    metrics: Metrics | None = None,
    watcher: AlertWatcher | None = None,
) -> web.Application:
    """The sidecar app. ``factory`` builds the router inside the running loop."""
    holder_ref: list[RouterHolder] = []

    def snapshot() -> Any:
        return holder_ref[0].current.router.snapshot() if holder_ref else None

    metrics = metrics or Metrics(snapshot)
    if watcher is None and (settings.alerts.webhook or settings.alerts.rules):
        watcher = AlertWatcher(settings.alerts)
    state = State(settings=settings, factory=factory, metrics=metrics, watcher=watcher)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[errors_middleware(state), guard_middleware(state)],
    )
    app[STATE] = state

    async def router_ctx(app: web.Application) -> AsyncIterator[None]:
        built = factory()
        holder = RouterHolder(built.router, built.secrets)
        attach_listeners(state, built)
        state.holder = holder
        holder_ref.append(holder)
        state.add_secrets(built.secrets)
        state.ready = True
        yield
        state.ready = False
        await holder.aclose()

    app.cleanup_ctx.append(router_ctx)
    if watcher is not None:
        app.cleanup_ctx.append(_watcher_ctx(watcher))
    handlers.add_routes(app)
    return app


def _watcher_ctx(watcher: AlertWatcher) -> Callable[[web.Application], AsyncIterator[None]]:
    async def ctx(app: web.Application) -> AsyncIterator[None]:
        import aiohttp

        async with aiohttp.ClientSession() as session:
            task = asyncio.create_task(watcher.run(session))
            yield
            task.cancel()
            try:
                await task
            except asyncio.CancelledError:
                pass

    return ctx
