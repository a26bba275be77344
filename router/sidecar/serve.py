"""``turnout serve``: load, validate, serve; reload on SIGHUP; drain on SIGTERM/SIGINT."""

from __future__ import annotations

import argparse
import asyncio
import gc
import os
import signal
import socket
import sys
from collections.abc import Callable
from typing import IO, Any

from router.config import ConfigError
from router.sidecar.app import create_app
from router.sidecar.config import Loaded, load, summary
from router.sidecar.errors import Scrubber
from router.sidecar.server import SidecarServer
from router.sidecar.state import STATE, Built, reload
from router.sidecar.workers import (
    STATE_ENV,
    WORKER_ENV,
    Supervisor,
    WorkerLink,
    WorkerRole,
    host_shared,
    reuse_port_available,
    split_between_workers,
    worker_argv,
    worker_count,
)
from turnout.logs import configure as configure_logging
from turnout.logs import get_logger

log = get_logger("turnout.sidecar")


class AuditSink:
    """Where audit lines go: a file (appended, one line at a time) or stdout, secrets scrubbed."""

    def __init__(self, path: str, secrets: frozenset[str]) -> None:
        if path == "stdout":
            self._file: IO[str] = sys.stdout
        else:  # kept open for the life of the server, closed at shutdown
            self._file = open(path, "a", buffering=1, encoding="utf-8")  # noqa: SIM115
        self._scrub = Scrubber(secrets)

    def __call__(self, line: str) -> None:
        self._file.write(self._scrub(line) + "\n")

    def close(self) -> None:
        if self._file is not sys.stdout:
            self._file.close()
        else:
            self._file.flush()


def audit_listener(loaded: Loaded) -> tuple[Any, AuditSink] | None:
    """The router's JSON-lines audit writer for the ``audit`` section, or None when it is off."""
    audit = loaded.settings.audit
    if audit.path is None:
        return None
    from router.audit import AuditLogger

    sink = AuditSink(audit.path, loaded.secrets)
    return AuditLogger(sink, redact=audit.redact), sink


def make_factory(path: str, audit: Any | None, workers: int = 1, state_socket: str | None = None) -> Any:
    """A router factory that reads the file anew on each call (start-up and every reload); one of
    ``workers`` processes without a shared store builds its share of the limits."""
    from router import Router

    def factory() -> Built:
        loaded = load(path)
        return Built(
            router=Router(split_between_workers(host_shared(loaded.router, state_socket), workers)),
            secrets=loaded.secrets,
            listeners=(audit,) if audit is not None else (),
            settings=loaded.settings,
        )

    return factory


async def serve(loaded: Loaded, host: str, port: int, role: WorkerRole | None = None) -> int:
    settings = loaded.settings
    audit = audit_listener(loaded)
    count = role.count if role is not None else 1
    state_socket = role.state_socket if role is not None else None
    app = create_app(settings, make_factory(loaded.source, audit[0] if audit else None, count, state_socket))
    sock = None
    if role is not None and role.listen_fd is not None:  # the supervisor's listening socket
        sock = socket.socket(fileno=role.listen_fd)
    reuse = role is not None and sock is None and reuse_port_available()
    server = await SidecarServer(app, host, port, reuse_port=reuse, sock=sock).start_server()
    # Everything built so far (modules, pydantic models, price tables, the router) lives as long as
    # the process: frozen out of the collector's view, a full collection no longer walks it. One
    # took ~70 ms here, a pause that lands on whichever requests are in flight.
    gc.collect()
    gc.freeze()
    loop = asyncio.get_running_loop()
    stop = asyncio.Event()
    reloads: set[asyncio.Task[None]] = set()
    if role is None:
        print(
            f"turnout serve: listening on http://{host}:{server.port}/v1 (config {loaded.source})", flush=True
        )
    else:  # the supervisor prints the address once all workers are up
        link = WorkerLink(role)
        link.watch(stop.set)  # the supervisor is gone: drain and stop
        app[STATE].on_admin_reload = lambda: link.send("reloaded")
        flusher = loop.create_task(_flush_metrics(app))
        reloads.add(flusher)
        link.send("ready")
        log.info("worker %d of %d serving on %s:%d", role.index, role.count, host, server.port)
    log.info("event loop: %s.%s", type(loop).__module__, type(loop).__qualname__)

    async def do_reload() -> None:
        ok, message = await reload(app)
        (log.info if ok else log.error)("reload: %s", message)

    def on_hup() -> None:
        task = loop.create_task(do_reload())
        reloads.add(task)
        task.add_done_callback(reloads.discard)

    loop.add_signal_handler(signal.SIGHUP, on_hup)
    loop.add_signal_handler(signal.SIGTERM, stop.set)
    loop.add_signal_handler(signal.SIGINT, stop.set)
    try:
        await stop.wait()
    finally:
        for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        for task in reloads:
            task.cancel()
        state = app[STATE]
        state.ready = False  # /readyz says no while we drain
        log.info("draining %d request(s), up to %.1fs", state.active, settings.server.drain_timeout)
        server.stop_accepting()  # no new connections; idle kept-alive ones close
        deadline = loop.time() + settings.server.drain_timeout  # one budget for the whole drain
        if state.holder is not None:
            await state.holder.wait_idle(settings.server.drain_timeout)
        await server.close(max(0.0, deadline - loop.time()))
        if audit is not None:
            audit[1].close()
    if role is None:  # a worker's supervisor says it once for all
        print("turnout serve: stopped", flush=True)
    return 0


async def _flush_metrics(app: Any, every: float = 1.0) -> None:
    """A worker's metric updates go to the shared files each second, for its peers' scrapes."""
    metrics = app[STATE].metrics
    while True:
        await asyncio.sleep(every)
        metrics.flush()


def loop_factory(choice: str) -> Callable[[], asyncio.AbstractEventLoop] | None:
    """The event loop to serve on: uvloop when asked for or, with ``auto``, when it is installed
    (it cuts the loop's and the sockets' share of each request's CPU); None: asyncio's own."""
    if choice == "asyncio":
        return None
    try:
        import uvloop
    except ImportError:
        if choice == "uvloop":
            raise
        return None
    factory: Callable[[], asyncio.AbstractEventLoop] = uvloop.new_event_loop
    return factory


def main(args: argparse.Namespace) -> int:
    configure_logging(args.log_level, getattr(args, "log_format", "console"))
    try:
        loaded = load(args.config, allow_unset=args.check)
    except ConfigError as exc:
        print(f"turnout serve: invalid configuration\n{exc}", file=sys.stderr)
        return 2
    if args.check:
        print(summary(loaded))
        return 0
    host = args.host or loaded.settings.server.host
    port = loaded.settings.server.port if args.port is None else args.port
    role = WorkerRole.from_env()
    os.environ.pop(WORKER_ENV, None)  # not inherited by anything this process starts
    os.environ.pop(STATE_ENV, None)
    try:
        workers = worker_count(str(getattr(args, "workers", "1")))
    except ValueError as exc:
        print(f"turnout serve: {exc}", file=sys.stderr)
        return 2
    if role is None and workers > 1:
        supervisor = Supervisor(
            worker_argv(args),
            host,
            port,
            workers,
            loaded.settings.server.drain_timeout,
            host_state=loaded.router.state.backend == "memory",
        )
        try:
            supervisor.bind()
        except OSError as exc:
            print(f"turnout serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
            return 1
        return asyncio.run(supervisor.run())
    try:
        factory = loop_factory(getattr(args, "loop", "auto"))
    except ImportError:
        print("turnout serve: --loop uvloop, but uvloop is not installed", file=sys.stderr)
        return 2
    try:
        # asyncio.run() takes no loop factory before 3.12; a Runner does the same work.
        with asyncio.Runner(loop_factory=factory) as runner:
            return runner.run(serve(loaded, host, port, role))
    except OSError as exc:
        print(f"turnout serve: cannot listen on {host}:{port}: {exc.strerror or exc}", file=sys.stderr)
        return 1
