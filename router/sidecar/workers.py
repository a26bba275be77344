"""``turnout serve --workers N``: N sidecar processes on one port, and the supervisor that keeps them.

One Python process serves on one core. With ``--workers N`` (``auto``: one per core) the command
becomes a supervisor that starts N workers, each a complete ``turnout serve`` on the same address:

- **One port.** Where the OS has ``SO_REUSEPORT`` (Linux, the BSDs, macOS) every worker binds its
  own listening socket on the port and the kernel spreads new connections between them; the
  supervisor holds a bound socket (never listening, so it gets no connections) to fix the port when
  ``--port 0`` asked for any. Elsewhere the supervisor listens and the workers inherit that socket.
- **Restarts.** A worker that exits while the supervisor is not stopping is started again (after
  0.1 s, doubling up to 5 s while new workers keep dying within 5 s of their start).
- **Reload and drain reach every worker.** SIGHUP to the supervisor is sent on to each worker.
  ``POST /admin/reload`` is answered by the worker that received it; when its reload succeeds it
  tells the supervisor (a socket pair per worker), which sends SIGHUP to the others. SIGTERM/SIGINT
  drain every worker (each with the configured ``drain_timeout``) and the supervisor exits when all
  have stopped. A worker whose supervisor disappears (its end of the pair closes) drains and stops.
- **Metrics as one sidecar.** Counters, histograms and the in-flight gauge are aggregated across
  workers with prometheus-client's multiprocess mode (``PROMETHEUS_MULTIPROC_DIR``, a directory
  the supervisor creates and removes): any worker's ``/metrics`` shows the host's totals, no
  ``worker`` label. A worker hands its updates to the shared files every second, so another
  worker's scrape is at most that late. Gauges read from a router at scrape time (breaker state,
  limiter headroom, state store up) are the answering worker's.
- **Shared state.** With ``state: {backend: redis}`` workers share breakers, limits and budgets
  through Redis as separate sidecars do. With the in-memory default the supervisor hosts the
  state (:mod:`router.state.host`: a Unix socket in a private temporary directory) and the
  workers share ejections, holds, budgets and the rpm/tpm buckets through it, degrade-safe: while
  it does not answer, each worker uses local state with its share (1/N) of the limits.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from dataclasses import dataclass, field
from typing import Any

from turnout.logs import get_logger

log = get_logger("turnout.sidecar")

WORKER_ENV = "TURNOUT_WORKER"  # "<index>/<count>/<control fd>[/<listening fd>]", set for a worker
STATE_ENV = "TURNOUT_STATE_SOCKET"  # the supervisor's host state socket, when it hosts the state
RESTART_MIN, RESTART_MAX, STABLE_S = 0.1, 5.0, 5.0


def worker_count(value: str) -> int:
    """``--workers``: a positive number, or ``auto`` for the cores this process may use."""
    if value == "auto":
        try:
            return max(1, len(os.sched_getaffinity(0)))
        except AttributeError:  # not on Linux
            return max(1, os.cpu_count() or 1)
    try:
        n = int(value)
    except ValueError:
        raise ValueError(f"--workers must be a positive number or 'auto', not {value!r}") from None
    if n < 1:
        raise ValueError(f"--workers must be at least 1, not {n}")
    return n


def reuse_port_available() -> bool:
    return hasattr(socket, "SO_REUSEPORT") and sys.platform != "win32"


@dataclass(frozen=True, slots=True)
class WorkerRole:
    """What a worker process learns from its environment."""

    index: int
    count: int
    control_fd: int
    listen_fd: int | None = None
    state_socket: str | None = None  # the supervisor's host state (router.state.host), if any

    @classmethod
    def from_env(cls) -> WorkerRole | None:
        raw = os.environ.get(WORKER_ENV)
        if not raw:
            return None
        parts = [int(p) for p in raw.split("/")]
        state = os.environ.get(STATE_ENV) or None
        return cls(parts[0], parts[1], parts[2], parts[3] if len(parts) > 3 else None, state)


class WorkerLink:
    """A worker's end of its socket pair: says "ready" and "reloaded", notices the supervisor go."""

    def __init__(self, role: WorkerRole) -> None:
        self.role = role
        self.sock = socket.socket(fileno=role.control_fd)
        self.sock.setblocking(False)

    def send(self, word: str) -> None:
        try:
            self.sock.send(word.encode() + b"\n")
        except OSError:  # the supervisor is gone: the watch below stops us
            pass

    def watch(self, on_gone: Any) -> None:
        """Call ``on_gone`` once when the supervisor's end closes (it died or exited)."""
        loop = asyncio.get_running_loop()

        def readable() -> None:
            try:
                data = self.sock.recv(64)
            except BlockingIOError:
                return
            except OSError:
                data = b""
            if not data:
                loop.remove_reader(self.sock.fileno())
                on_gone()

        loop.add_reader(self.sock.fileno(), readable)


@dataclass(slots=True)
class _Worker:
    index: int
    proc: asyncio.subprocess.Process | None = None
    control: socket.socket | None = None
    started: float = 0.0
    delay: float = RESTART_MIN
    ready: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    """Starts, restarts, signals and stops the workers (see the module docstring)."""

    def __init__(
        self,
        argv: list[str],
        host: str,
        port: int,
        count: int,
        drain_timeout: float,
        host_state: bool = False,
    ) -> None:
        self.argv = argv  # the worker's command line, without --host/--port/--workers
        self.host = host
        self.port = port
        self.count = count
        self.drain_timeout = drain_timeout
        self.workers = [_Worker(i) for i in range(count)]
        self.stopping = False
        self.restarts = 0
        self._listen: socket.socket | None = None
        self._metrics_dir = ""
        self.host_state = host_state  # host the workers' shared state (no Redis configured)
        self._state_server: Any = None
        self._state_dir = ""
        self._tasks: set[asyncio.Task[None]] = set()

    def bind(self) -> None:
        """Fix the port (and, without SO_REUSEPORT, listen on it for every worker)."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if reuse_port_available():
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.bind((self.host, self.port))
        if not reuse_port_available():
            sock.listen(1024)
            sock.set_inheritable(True)
        self.port = sock.getsockname()[1]
        self._listen = sock

    def _spawn_env(self, w: _Worker, control_fd: int) -> dict[str, str]:
        role = f"{w.index}/{self.count}/{control_fd}"
        if not reuse_port_available():
            assert self._listen is not None
            role += f"/{self._listen.fileno()}"
        env = {**os.environ, WORKER_ENV: role, "PROMETHEUS_MULTIPROC_DIR": self._metrics_dir}
        if self._state_server is not None:
            env[STATE_ENV] = self._state_server.path
        return env

    async def _start(self, w: _Worker) -> None:
        mine, theirs = socket.socketpair()
        theirs.set_inheritable(True)
        fds = [theirs.fileno()]
        if not reuse_port_available():
            assert self._listen is not None
            fds.append(self._listen.fileno())
        argv = [*self.argv, "--host", self.host, "--port", str(self.port)]
        w.ready.clear()
        w.proc = await asyncio.create_subprocess_exec(
            *argv, env=self._spawn_env(w, theirs.fileno()), pass_fds=fds
        )
        theirs.close()
        mine.setblocking(False)
        w.control = mine
        w.started = time.monotonic()
        asyncio.get_running_loop().add_reader(mine.fileno(), self._on_message, w)
        self._spawn(self._watch(w, w.proc))

    def _spawn(self, coro: Any) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def _on_message(self, w: _Worker) -> None:
        sock = w.control
        if sock is None:
            return
        try:
            data = sock.recv(4096)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        if not data:  # the worker is gone; its exit is handled by _watch
            self._close_control(w)
            return
        for word in data.decode(errors="replace").split():
            if word == "ready":
                w.ready.set()
            elif word == "reloaded":  # POST /admin/reload on that worker: the others follow
                log.info("worker %d reloaded through /admin/reload; reloading the others", w.index)
                self.signal_all(signal.SIGHUP, but=w)

    def _close_control(self, w: _Worker) -> None:
        if w.control is not None:
            asyncio.get_running_loop().remove_reader(w.control.fileno())
            w.control.close()
            w.control = None

    async def _watch(self, w: _Worker, proc: asyncio.subprocess.Process) -> None:
        code = await proc.wait()
        self._close_control(w)
        _mark_dead(proc.pid, self._metrics_dir)
        w.ready.set()  # nobody waits forever on a worker that died starting
        if self.stopping:
            return
        lived = time.monotonic() - w.started
        w.delay = RESTART_MIN if lived >= STABLE_S else min(w.delay * 2, RESTART_MAX)
        log.warning(
            "worker %d (pid %d) exited with %s; restarting in %.1fs", w.index, proc.pid, code, w.delay
        )
        await asyncio.sleep(w.delay)
        if not self.stopping:
            self.restarts += 1
            await self._start(w)

    def signal_all(self, sig: signal.Signals, but: _Worker | None = None) -> None:
        for w in self.workers:
            if w is not but and w.proc is not None and w.proc.returncode is None:
                try:
                    w.proc.send_signal(sig)
                except ProcessLookupError:
                    pass

    async def run(self) -> int:
        loop = asyncio.get_running_loop()
        self._metrics_dir = tempfile.mkdtemp(prefix="turnout-metrics-")
        stop = asyncio.Event()
        try:
            if self.host_state:
                from router.state.host import HostStateServer

                self._state_dir = tempfile.mkdtemp(prefix="turnout-state-")  # mode 0700
                self._state_server = HostStateServer(os.path.join(self._state_dir, "state.sock"))
                await self._state_server.start()
            for w in self.workers:
                await self._start(w)
            await asyncio.gather(*(w.ready.wait() for w in self.workers))
            if all(w.proc is not None and w.proc.returncode is None for w in self.workers):
                mode = "SO_REUSEPORT" if reuse_port_available() else "one shared socket"
                print(
                    f"turnout serve: listening on http://{self.host}:{self.port}/v1"
                    f" ({self.count} workers, {mode})",
                    flush=True,
                )
            loop.add_signal_handler(signal.SIGHUP, self.signal_all, signal.SIGHUP)
            loop.add_signal_handler(signal.SIGTERM, stop.set)
            loop.add_signal_handler(signal.SIGINT, stop.set)
            await stop.wait()
        finally:
            self.stopping = True
            for sig in (signal.SIGHUP, signal.SIGTERM, signal.SIGINT):
                loop.remove_signal_handler(sig)
            await self._stop_all()
            if self._listen is not None:
                self._listen.close()
            shutil.rmtree(self._metrics_dir, ignore_errors=True)
            if self._state_server is not None:
                await self._state_server.close()
            if self._state_dir:
                shutil.rmtree(self._state_dir, ignore_errors=True)
        print("turnout serve: stopped", flush=True)
        return 0

    async def _stop_all(self) -> None:
        self.signal_all(signal.SIGTERM)
        procs = [w.proc for w in self.workers if w.proc is not None]
        try:
            async with asyncio.timeout(self.drain_timeout + 5.0):
                await asyncio.gather(*(p.wait() for p in procs))
        except TimeoutError:
            log.error("workers still running %.1fs after SIGTERM; killing them", self.drain_timeout + 5.0)
            self.signal_all(signal.SIGKILL)
            await asyncio.gather(*(p.wait() for p in procs))
        for task in list(self._tasks):
            task.cancel()
        for w in self.workers:
            self._close_control(w)


def _mark_dead(pid: int, path: str) -> None:
    """Drop a dead worker's live gauges from the shared metrics (its counters stay counted)."""
    try:
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid, path)
    except Exception:  # a missing file is fine: the worker never wrote a gauge
        pass


def worker_argv(args: Any) -> list[str]:
    """The command line that starts one worker with the supervisor's own options."""
    argv = [sys.executable, "-m", "turnout", "serve", "--config", args.config]
    argv += ["--loop", getattr(args, "loop", "auto"), "--log-level", args.log_level]
    argv += ["--log-format", getattr(args, "log_format", "console")]
    return argv


def host_shared(cfg: Any, state_socket: str | None) -> Any:
    """A worker's configuration when its supervisor hosts the state: ``state: memory`` becomes
    the supervisor's socket (``backend: host``); Redis, or no socket, stays as configured."""
    if state_socket is None or cfg.state.backend != "memory":
        return cfg
    state = cfg.state.model_copy(update={"backend": "host", "url": f"unix://{state_socket}"})
    return cfg.model_copy(update={"state": state})


def split_between_workers(cfg: Any, count: int) -> Any:
    """A worker's share of a :class:`~router.config.RouterConfig` when workers share no store:
    each deployment's rpm/tpm and each budget's limit divided by ``count`` (at least 1 request or
    token a minute), so the host's workers together stay within them. With a shared store (Redis)
    the configuration is unchanged: the store enforces the whole limit once for all."""
    if count <= 1 or cfg.state.backend != "memory":
        return cfg

    def part(n: int | None) -> int | None:
        return None if n is None else max(1, n // count)

    models = {
        name: d.model_copy(update={"rpm": part(d.rpm), "tpm": part(d.tpm)}) for name, d in cfg.models.items()
    }
    budgets = {
        name: b.model_copy(update={"limit_usd": b.limit_usd / count}) for name, b in cfg.budgets.items()
    }
    return cfg.model_copy(update={"models": models, "budgets": budgets})
