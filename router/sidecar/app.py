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
from collections.abc import AsyncIterator, Callable, Mapping
from typing import Any

from aiohttp import web

from router.errors import RouterError
from router.sidecar import admin, handlers
from router.sidecar.alerts import AlertWatcher
from router.sidecar.errors import Answer, json_answer
from router.sidecar.front import FAST_PATHS, Dispatch
from router.sidecar.handlers import Exchange, FrontEnd
from router.sidecar.lifecycle import RouterHolder
from router.sidecar.metrics import Metrics
from router.sidecar.parsing import WireError
from router.sidecar.settings import ServerSettings, SidecarSettings
from router.sidecar.state import STATE, RouterFactory, State, attach_listeners
from turnout.logs import get_logger

log = get_logger("turnout.sidecar")

# The front door's dispatch for the hot endpoints (router.sidecar.server.SidecarServer).
DISPATCH: web.AppKey[Dispatch] = web.AppKey("dispatch")


def error_answer(
    state: State, exc: Exception, method: str, path: str, front: FrontEnd = handlers.CHAT
) -> Answer:
    """Every failure as a JSON error in ``front``'s shape (OpenAI's unless the path is another
    front end's); never a bare 500 page or a traceback."""
    json_answer = front.error
    if isinstance(exc, WireError):
        state.metrics.rejections.labels("bad_request").inc()
        return json_answer(400, exc.message, "invalid_request", param=exc.param)
    if isinstance(exc, RouterError):
        answer = front.router_error(exc, state.scrub)
        if answer[0] == 404:
            state.metrics.rejections.labels("unknown_route").inc()
        return answer
    if isinstance(exc, web.HTTPRequestEntityTooLarge):
        state.metrics.rejections.labels("body_too_large").inc()
        limit = state.settings.server.max_body_bytes
        return json_answer(413, f"Request body too large: the limit is {limit} bytes.", "body_too_large")
    if isinstance(exc, web.HTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status, "http_error")
        return json_answer(exc.status, f"{exc.reason}: {method} {path}", code)
    log.exception("unhandled error serving %s %s", method, path, exc_info=exc)
    return json_answer(500, "Internal error in the sidecar.", "internal_error")


def _respond(answer: Answer) -> web.Response:
    status, headers, body = answer
    return web.Response(status=status, headers=headers, body=body)


def errors_middleware(state: State) -> Any:
    """Failures in aiohttp's handlers as :func:`error_answer`s."""

    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        try:
            return await handler(request)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            if isinstance(exc, web.HTTPException) and exc.status < 400:
                raise  # a redirect is an answer, not a failure
            front = _FRONT_BY_PATH.get(request.path, handlers.CHAT)
            return _respond(error_answer(state, exc, request.method, request.path, front))

    return middleware


def _key_ok(presented: str, keys: list[bytes]) -> bool:
    """Constant-time comparison against every key (no early exit on a match).

    Both servers decode header values as UTF-8 with ``surrogateescape``, so encoding back the
    same way gives the bytes the client sent, whatever they are (``\xff\xfe`` included)."""
    candidate = presented.encode("utf-8", "surrogateescape")
    ok = False
    for key in keys:
        ok |= hmac.compare_digest(candidate, key)
    return ok


_GUARDED = ("/v1/", "/admin/")
_FRONT_BY_PATH = {path: handlers.HOT[kind][1] for path, kind in handlers.PATHS.items()}


class Guard:
    """Client API keys, body size and concurrency limits for /v1 and /admin, on either server."""

    def __init__(self, state: State) -> None:
        self.state = state
        self.apply(state.settings.server)
        state.on_server_settings.append(self.apply)
        self.rejections = state.metrics.rejections
        # Read at scrape time rather than moved twice per request: the same count, no lock taken.
        state.metrics.inflight.set_function(lambda: state.active)

    def apply(self, server: ServerSettings) -> None:
        """Take (new) settings: at start-up and on every reload that changes them."""
        self.keys = [k.encode() for k in server.api_keys]
        self.admin_keys = [k.encode() for k in server.admin_keys]
        self.limit = server.max_concurrency
        self.max_body = server.max_body_bytes

    def refuse(
        self,
        headers: Mapping[str, str],
        length: int | None,
        json_answer: Callable[..., Answer] = json_answer,
        admin: bool = False,
    ) -> Answer | None:
        """Why this request may not go on, as an answer (in the shape ``json_answer`` makes);
        None when it may. The client's key comes as a bearer token or, as Anthropic's SDK sends
        it, in ``x-api-key``; under /admin/, only an admin key when some are set."""
        keys = self.admin_keys if admin and self.admin_keys else self.keys
        if keys:
            auth = headers.get("Authorization", "")
            token = auth[7:] if auth[:7].lower() == "bearer " else headers.get("x-api-key", "")
            if not _key_ok(token, keys):
                self.rejections.labels("auth").inc()
                return json_answer(
                    401, "Incorrect API key provided for the turnout sidecar.", "invalid_api_key"
                )
        if length is not None and length > self.max_body:
            self.rejections.labels("body_too_large").inc()
            return json_answer(
                413,
                f"Request body too large: {length} bytes, the limit is {self.max_body} bytes.",
                "body_too_large",
            )
        if self.state.active >= self.limit:
            self.rejections.labels("concurrency").inc()
            return json_answer(
                503,
                f"The sidecar is at its concurrency limit ({self.limit}); retry shortly.",
                "overloaded",
                headers={"Retry-After": "1"},
            )
        return None


def guard_middleware(state: State, guard: Guard) -> Any:
    @web.middleware
    async def middleware(request: web.Request, handler: Any) -> web.StreamResponse:
        if request.version >= (1, 1) and "Host" not in request.headers:
            # RFC 9112 section 3.2: a server must answer 400 to an HTTP/1.1 request without Host.
            return _respond(json_answer(400, "The request has no Host header.", "invalid_request"))
        if not request.path.startswith(_GUARDED):
            return await handler(request)
        front = _FRONT_BY_PATH.get(request.path, handlers.CHAT)
        admin = request.path.startswith("/admin/")
        refused = guard.refuse(request.headers, request.content_length, front.error, admin)
        if refused is not None:
            return _respond(refused)
        state.active += 1
        try:
            return await handler(request)
        finally:
            state.active -= 1

    return middleware


def front_dispatch(state: State, guard: Guard) -> Dispatch:
    """The hot endpoints as the front door serves them: the same guard, handlers and error
    answers as on aiohttp's server, without its request and response objects."""
    hot = handlers.HOT
    paths = {kind: path.decode() for path, kind in FAST_PATHS.items()}
    answered = state.metrics.answered

    async def dispatch(kind: str, ex: Exchange) -> None:
        handler, front = hot[kind]
        refused = guard.refuse(ex.headers, len(ex.body), front.error)
        if refused is not None:
            ex.respond(*refused)
            answered(front.name, refused[0])
            return
        state.active += 1
        try:
            await handler(state, ex)
        except (asyncio.CancelledError, ConnectionResetError):
            raise
        except Exception as exc:
            if ex.started:  # mid-stream: the handler already ended the stream with an error event
                raise
            ex.respond(*error_answer(state, exc, "POST", paths[kind], front))
        finally:
            state.active -= 1
            if ex.status:
                answered(front.name, ex.status)

    return dispatch


def aiohttp_hot(state: State) -> Callable[[str], Any]:
    """A hot endpoint as an aiohttp handler (for requests the front door hands over)."""
    answered = state.metrics.answered

    def make(kind: str) -> Any:
        handler, front = handlers.HOT[kind]

        async def serve(request: web.Request) -> web.StreamResponse:
            ex = handlers.AiohttpExchange(request, await request.read())
            try:
                await handler(state, ex)
            except (asyncio.CancelledError, ConnectionResetError):
                raise
            except Exception as exc:
                if ex.started:
                    raise
                answer = error_answer(state, exc, request.method, request.path, front)
                answered(front.name, answer[0])
                return _respond(answer)
            assert ex.response is not None
            answered(front.name, ex.status)
            return ex.response

        return serve

    return make


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
    guard = Guard(state)
    app = web.Application(
        client_max_size=settings.server.max_body_bytes,
        middlewares=[errors_middleware(state), guard_middleware(state, guard)],
    )
    app[STATE] = state
    app[DISPATCH] = front_dispatch(state, guard)

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
    admin.add_routes(app, aiohttp_hot(state))
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
