"""The router under test, in one of two modes, and the listener that watches it.

- :class:`LibraryTarget`: a :class:`router.Router` in this process, called directly.
- :class:`SidecarTarget`: the sidecar's aiohttp app (``turnout serve``'s app factory) on a free
  loopback port, driven over HTTP as an OpenAI-compatible client would.

Both build the router with a :class:`DrillListener`, so the drill has every audit record,
attempt and breaker change with its time, whichever way the traffic goes in. A target's
``send`` fills in a :class:`~chaos.drill.record.RequestRecord`: the outcome, the text, the
deployment that answered, the time to first token and the router's request id.
"""

from __future__ import annotations

import contextvars
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any, Self

from chaos.drill.record import AttemptEvent, BreakerEvent, RequestRecord
from chaos.drill.spec import TrafficSpec
from chaos.drill.tap import tag_prompt
from chaos.drill.traffic import Planned
from router.hooks import BaseListener
from router.types import AttemptRecord, AuditRecord

_SLOT: contextvars.ContextVar[list[AuditRecord | None]] = contextvars.ContextVar("turnout_drill_slot")


class DrillListener(BaseListener):
    """Keeps every audit record, attempt end and breaker change, with drill-relative times."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.clock = clock
        self.t0 = clock()
        self.audits: list[AuditRecord] = []
        self.attempts: list[AttemptEvent] = []
        self.breakers: list[BreakerEvent] = []

    def start(self, t0: float) -> None:
        self.t0 = t0
        self.audits.clear()
        self.attempts.clear()
        self.breakers.clear()

    def on_attempt(self, route: str, record: AttemptRecord) -> None:
        self.attempts.append(AttemptEvent(self.clock() - self.t0, route, record.model, record.outcome))

    def on_request(self, record: AuditRecord) -> None:
        self.audits.append(record)
        slot = _SLOT.get(None)
        if slot is not None:  # the last one: a pattern publishes its summary after its calls' records
            slot[0] = record

    def on_breaker_change(self, model: str, old: str, new: str, replica: int = 0) -> None:
        self.breakers.append(BreakerEvent(self.clock() - self.t0, model, old, new, replica))

    def replica(self, index: int) -> BaseListener:
        """A listener for replica ``index`` of several: the same journal, breakers tagged."""
        return _Replica(self, index)


class _Replica(BaseListener):
    def __init__(self, drill: DrillListener, index: int) -> None:
        self.drill, self.index = drill, index

    def on_attempt(self, route: str, record: AttemptRecord) -> None:
        self.drill.on_attempt(route, record)

    def on_request(self, record: AuditRecord) -> None:
        self.drill.on_request(record)

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        self.drill.on_breaker_change(model, old, new, self.index)


class Target:
    """Start, send, stop. ``audit_for`` finds the audit record of a sent request."""

    mode = "?"

    def __init__(
        self, config: Any, sidecar: dict[str, Any], traffic: TrafficSpec, seed: int, replicas: int = 1
    ) -> None:
        self.replicas = replicas  # routers sharing the configured state store, traffic spread over them
        self.config = config
        self.sidecar = sidecar
        self.traffic = traffic
        self.seed = seed
        self.listener = DrillListener()
        self.t0 = time.monotonic()
        self._by_request: dict[int, AuditRecord] = {}

    def _prompt(self, p: Planned) -> str:
        return tag_prompt(self.traffic.prompts[p.prompt], p.id)

    def audit_for(self, rec: RequestRecord) -> AuditRecord | None:
        found = self._by_request.get(rec.id)
        if found is None and rec.request_id:
            found = next((a for a in self.listener.audits if a.request_id == rec.request_id), None)
        return found

    async def start(self) -> Self:
        raise NotImplementedError

    async def close(self) -> None:
        raise NotImplementedError

    async def send(self, p: Planned, rec: RequestRecord) -> None:
        raise NotImplementedError

    async def __aenter__(self) -> Self:
        return await self.start()

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()

    def _since(self) -> float:
        return time.monotonic() - self.t0


class LibraryTarget(Target):
    mode = "library"

    async def start(self) -> Self:
        from router import Router

        self.routers = [
            Router(self.config, listeners=[self.listener.replica(i)], rng_seed=self.seed + i)
            for i in range(self.replicas)
        ]
        return self

    async def close(self) -> None:
        for router in self.routers:
            await router.aclose()

    async def send(self, p: Planned, rec: RequestRecord) -> None:
        from router import ChatRequest, Message, RouterError, StreamEnd, StreamStart, TextDelta

        req = ChatRequest(
            model=p.route,
            messages=[Message("user", self._prompt(p))],
            max_tokens=self.traffic.max_tokens,
            stream=p.stream,
        )
        slot: list[AuditRecord | None] = [None]
        token = _SLOT.set(slot)
        try:
            router = self.routers[p.id % self.replicas]  # round robin, as a load balancer would
            if not p.stream:
                resp = await router.complete(req)
                rec.outcome, rec.text, rec.winner, rec.request_id = (
                    "success",
                    resp.content,
                    resp.model,
                    resp.request_id,
                )
            else:
                parts: list[str] = []
                end: Any = None
                async for ev in router.stream(req):
                    if isinstance(ev, TextDelta):
                        if rec.ttft is None:
                            rec.ttft = self._since() - rec.start
                        parts.append(ev.text)
                    elif isinstance(ev, StreamStart):
                        rec.winner, rec.request_id = ev.model, ev.request_id
                    elif isinstance(ev, StreamEnd):
                        end = ev.response
                rec.text = "".join(parts)
                # A stream that stops without StreamEnd and without an error would be reported to
                # the caller as a normal end: that is the truncated success the drill looks for.
                rec.outcome = "success" if end is not None else "truncated"
                if end is not None and end.content != rec.text:
                    rec.complete = False
        except RouterError as exc:
            rec.outcome = "error"
            rec.error_kind = str(getattr(exc, "cause_kind", None) or exc.kind)
            rec.message = str(exc)
        except Exception as exc:
            rec.outcome, rec.message = "crash", f"{type(exc).__name__}: {exc}"
        finally:
            _SLOT.reset(token)
        if slot[0] is not None:
            self._by_request[rec.id] = slot[0]


class SidecarTarget(Target):
    mode = "sidecar"

    async def start(self) -> Self:
        import aiohttp

        from router import Router
        from router.sidecar import Built, create_app
        from router.sidecar.server import SidecarServer
        from router.sidecar.settings import parse_settings

        settings = parse_settings(self.sidecar, source="router.config")
        listener, config, seed = self.listener, self.config, self.seed

        def factory(i: int) -> Callable[[], Built]:
            replica = listener.replica(i) if self.replicas > 1 else listener
            return lambda: Built(router=Router(config, rng_seed=seed + i), listeners=(replica,))

        # Served as `turnout serve` serves it: the front door, aiohttp behind it. Several replicas
        # share one port (SO_REUSEPORT, as `turnout serve --workers`): the kernel spreads connections.
        reuse = self.replicas > 1
        self._servers = [
            await SidecarServer(create_app(settings, factory(0)), reuse_port=reuse).start_server()
        ]
        port = self._servers[0].port
        for i in range(1, self.replicas):
            server = SidecarServer(create_app(settings, factory(i)), port=port, reuse_port=True)
            self._servers.append(await server.start_server())
        self.url = f"http://127.0.0.1:{port}/v1/chat/completions"
        limit = max(self.traffic.workers, 64)
        # Several replicas: a connection per request, so the kernel spreads requests, not just
        # the few kept-alive connections, over them.
        self._session = aiohttp.ClientSession(
            connector=aiohttp.TCPConnector(limit=limit, force_close=self.replicas > 1),
            timeout=aiohttp.ClientTimeout(total=None),
        )
        return self

    async def close(self) -> None:
        await self._session.close()
        for server in self._servers:
            await server.close()

    async def send(self, p: Planned, rec: RequestRecord) -> None:
        import aiohttp

        body = {
            "model": p.route,
            "messages": [{"role": "user", "content": self._prompt(p)}],
            "stream": p.stream,
        }
        if self.traffic.max_tokens is not None:
            body["max_tokens"] = self.traffic.max_tokens
        try:
            async with self._session.post(self.url, json=body) as resp:
                rec.request_id = resp.headers.get("x-request-id")
                rec.winner = resp.headers.get("x-turnout-model")
                if resp.status != 200:
                    rec.outcome, rec.error_kind, rec.message = "error", *_error_of(await resp.read())
                elif not p.stream:
                    data = json.loads(await resp.read())
                    rec.text = data["choices"][0]["message"]["content"] or ""
                    rec.outcome = "success"
                else:
                    await self._read_stream(resp, rec)
        except (aiohttp.ClientError, ValueError, KeyError, IndexError, TypeError) as exc:
            rec.outcome, rec.message = "crash", f"{type(exc).__name__}: {exc}"
        audit = self.audit_for(rec)
        if audit is not None:
            self._by_request[rec.id] = audit

    async def _read_stream(self, resp: Any, rec: RequestRecord) -> None:
        parts: list[str] = []
        done = False
        async for raw in resp.content:
            line = raw.decode().strip()
            if not line.startswith("data:"):
                continue
            data = line[5:].strip()
            if data == "[DONE]":
                done = True
                break
            chunk = json.loads(data)
            if "error" in chunk:
                rec.text = "".join(parts)
                rec.outcome, rec.error_kind, rec.message = "error", *_error_of(data.encode())
                return
            for choice in chunk.get("choices") or []:
                text = (choice.get("delta") or {}).get("content")
                if text:
                    if rec.ttft is None:
                        rec.ttft = self._since() - rec.start
                    parts.append(text)
        rec.text = "".join(parts)
        rec.outcome = "success" if done else "truncated"


class AnthropicTarget(SidecarTarget):
    """The sidecar driven by the official anthropic SDK on ``/v1/messages``, as an application
    written for Claude would, with the SDK's retries off (the router's are under test).

    A streamed answer counts as a success only once ``message_stop`` arrived; an ``error`` event
    is an error with the text so far; a stream that just ends is truncated."""

    async def start(self) -> Self:
        import anthropic

        await super().start()
        base = self.url.removesuffix("/v1/chat/completions")
        # The SDK's own HTTP client (its pool holds up to 1000 connections).
        self._client = anthropic.AsyncAnthropic(
            base_url=base, api_key="drill", max_retries=0, timeout=self.traffic.timeout
        )
        return self

    async def close(self) -> None:
        await self._client.close()
        await super().close()

    async def send(self, p: Planned, rec: RequestRecord) -> None:
        import anthropic

        kw: dict[str, Any] = {
            "model": p.route,
            "max_tokens": self.traffic.max_tokens or 1024,
            "messages": [{"role": "user", "content": self._prompt(p)}],
        }
        try:
            if p.stream:
                await self._stream(kw, rec)
            else:
                raw = await self._client.messages.with_raw_response.create(**kw)
                self._note_headers(raw.headers, rec)
                msg = await raw.parse()
                rec.text = "".join(b.text for b in msg.content if b.type == "text")
                rec.outcome = "success"
        except anthropic.APIStatusError as exc:
            self._note_headers(exc.response.headers, rec)
            rec.outcome, rec.error_kind, rec.message = "error", *_anthropic_error(exc.body)
        except anthropic.APIError as exc:  # connection failures, timeouts
            rec.outcome, rec.message = "crash", f"{type(exc).__name__}: {exc}"
        audit = self.audit_for(rec)
        if audit is not None:
            self._by_request[rec.id] = audit

    def _note_headers(self, headers: Any, rec: RequestRecord) -> None:
        rec.request_id = headers.get("x-request-id")
        rec.winner = headers.get("x-turnout-model")

    async def _stream(self, kw: dict[str, Any], rec: RequestRecord) -> None:
        import anthropic

        parts: list[str] = []
        done = False
        try:
            async with self._client.messages.stream(**kw) as stream:
                self._note_headers(stream.response.headers, rec)
                async for ev in stream:
                    if ev.type == "content_block_delta" and ev.delta.type == "text_delta":
                        if rec.ttft is None:
                            rec.ttft = self._since() - rec.start
                        parts.append(ev.delta.text)
                    elif ev.type == "message_stop":
                        done = True
        except anthropic.APIStatusError as exc:
            if exc.status_code != 200:
                raise  # refused before the stream began: an ordinary error
            rec.text = "".join(parts)  # an in-band error event after output began
            rec.outcome, rec.error_kind, rec.message = "error", *_anthropic_error(exc.body)
            return
        rec.text = "".join(parts)
        rec.outcome = "success" if done else "truncated"


def _anthropic_error(body: object) -> tuple[str | None, str]:
    """(error type, message) from an Anthropic-shaped error body."""
    if isinstance(body, dict) and isinstance(body.get("error"), dict):
        return body["error"].get("type"), str(body["error"].get("message"))
    return None, str(body)[:200]


def _error_of(body: bytes) -> tuple[str | None, str]:
    """(error kind, message) from an OpenAI-shaped error body."""
    try:
        err = json.loads(body)["error"]
        return (err.get("code") or err.get("type")), str(err.get("message"))
    except (ValueError, KeyError, TypeError):
        return None, body[:200].decode(errors="replace")
