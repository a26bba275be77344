"""Subprocess helpers for the load-test runs: turnout services and Locust, each stopped for sure.

Locust (gevent) runs only in subprocesses, so the pytest process never imports it. Services get
free ports, and readiness is polled on their health endpoints with a bounded timeout.
"""

from __future__ import annotations

import os
import re
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
LOCUSTFILE = ROOT / "loadtests" / "locustfile.py"
SHAPED_LOCUSTFILE = ROOT / "loadtests" / "shaped.py"
START_TIMEOUT = 30.0


def free_port() -> int:
    """A port that was free a moment ago (bound to port 0, then released)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def subprocess_env() -> dict[str, str]:
    """This environment without load-test settings, importing this checkout's packages."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("TURNOUT_LOAD_", "TURNOUT_SLO_", "LOCUST_"))
    }
    env["PYTHONUNBUFFERED"] = "1"
    # Import the packages from this checkout as regular packages, whatever state the editable
    # install of the environment is in (one made before a package had its __init__.py maps it
    # as a namespace package, whose __init__ never runs).
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")]))
    return env


@dataclass
class Service:
    name: str
    proc: subprocess.Popen[bytes]
    log: Path
    url: str = ""

    def output(self) -> str:
        return self.log.read_text(encoding="utf-8", errors="replace")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=10)


def _healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False


def start_service(
    name: str,
    argv: Sequence[str],
    workdir: Path,
    *,
    health: Callable[[str], str],
    url: str | None = None,
    url_pattern: str | None = None,
) -> Service:
    """Start ``python -m turnout ARGV``; wait until it prints ``url_pattern`` (or use ``url``) and
    ``health(url)`` answers 200. Fails the test with the service's output if it does not."""
    log = workdir / f"{name}.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "turnout", *argv],
            stdout=out,
            stderr=subprocess.STDOUT,
            cwd=workdir,
            env=subprocess_env(),
        )
    service = Service(name, proc, log, url or "")
    deadline = time.monotonic() + START_TIMEOUT
    try:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                pytest.fail(f"{name} exited with {proc.returncode} before it was ready:\n{service.output()}")
            if not service.url and url_pattern:
                match = re.search(url_pattern, service.output())
                if match:
                    service.url = match.group(1)
            if service.url and _healthy(health(service.url)):
                return service
            time.sleep(0.1)
        pytest.fail(f"{name} was not ready within {START_TIMEOUT:.0f} s:\n{service.output()}")
    except BaseException:
        service.stop()
        raise


def start_mock(workdir: Path, config_yaml: str | None, *extra: str) -> Service:
    """``turnout mock`` on a free port (with ``config_yaml`` as its --config, if given)."""
    argv = ["mock", "--port", "0", *extra]
    if config_yaml is not None:
        config = workdir / "mock.yaml"
        config.write_text(config_yaml, encoding="utf-8")
        argv += ["--config", str(config)]
    return start_service(
        "mock",
        argv,
        workdir,
        url_pattern=r"openai\s+(http://\S+/openai/v1)",
        health=lambda url: url.rsplit("/openai/v1", 1)[0] + "/_mock/health",
    )


# The mock sleeps 10 ms before the first token of every answer: a p99 under 1 ms is impossible
# on any machine, which makes "must fail" latency gates independent of the machine's speed.
MOCK_CONFIG = """\
latency:
  openai: {ttft: 0.01, tokens_per_second: 2000}
"""


def locust_command(*args: str, locustfile: Path = LOCUSTFILE) -> list[str]:
    return [sys.executable, "-m", "locust", "-f", str(locustfile), "--loglevel", "INFO", *args]


def run_locust(
    *args: str, cwd: Path, timeout: float = 60.0, locustfile: Path = LOCUSTFILE
) -> subprocess.CompletedProcess[str]:
    """One headless Locust run to completion (killed if it overruns ``timeout``)."""
    return subprocess.run(
        locust_command(*args, locustfile=locustfile),
        cwd=cwd,
        env=subprocess_env(),
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def spawn_locust(*args: str, cwd: Path, log: Path) -> subprocess.Popen[bytes]:
    with log.open("wb") as out:
        return subprocess.Popen(
            locust_command(*args), cwd=cwd, env=subprocess_env(), stdout=out, stderr=subprocess.STDOUT
        )
