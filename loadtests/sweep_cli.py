"""``turnout sweep``: a capacity sweep with Locust (``locust -f loadtests/sweep.py --headless …``).

Raises the offered load (open-loop arrivals) step by step, judges each step against the SLO,
bisects near the knee and writes ``sweep.json``, ``sweep.md`` and ``sweep.html``. Every option
after ``turnout sweep`` goes to Locust and the sweep (``--host``, ``--model``, ``--slo-*``,
``--start``, ``--step``, ``--max``, ``--require``, ``--out``, …; ``turnout sweep --help-sweep``
lists them). ``--workers N`` runs the sweep distributed: a Locust master and N local workers
(workers on other machines: run the master with ``locust -f loadtests/sweep.py --master`` and
``--worker`` elsewhere, see ``loadtests/README.md``). Exit status: 0 done (and the knee is at or
above ``--require``), 1 the knee is below ``--require``, 2 bad options or a failed sweep.
"""

from __future__ import annotations

import argparse
import os
import shlex
import subprocess
import sys
import time
from pathlib import Path

SWEEP_FILE = Path(__file__).with_name("sweep.py")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--workers", type=int, default=0, help="run distributed: a master and N local workers"
    )
    parser.add_argument("--help-sweep", action="store_true", help="list every sweep and load option")
    parser.set_defaults(passthrough=[])  # every other option goes to Locust and the sweep


def locust_command(args: list[str], *, master: bool = False, workers: int = 0, port: int = 5557) -> list[str]:
    cmd = [sys.executable, "-m", "locust", "-f", str(SWEEP_FILE)]
    if master:
        cmd += ["--master", "--master-bind-host", "127.0.0.1", "--master-bind-port", str(port)]
        cmd += ["--expect-workers", str(workers)]
    return [*cmd, "--headless", *args]


def worker_command(port: int) -> list[str]:
    return [
        sys.executable,
        "-m",
        "locust",
        "-f",
        str(SWEEP_FILE),
        "--worker",
        "--master-host",
        "127.0.0.1",
        "--master-port",
        str(port),
    ]


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def run(args: argparse.Namespace) -> int:
    if args.help_sweep:
        return subprocess.call([sys.executable, "-m", "locust", "-f", str(SWEEP_FILE), "--help"])
    rest = [a for a in args.passthrough if a != "--"]
    # the reports quote the command the user typed, not the Locust command line it became
    os.environ["TURNOUT_SWEEP_COMMAND"] = shlex.join(["turnout", "sweep", *sys.argv[2:]])
    if args.workers < 0:
        print("turnout sweep: --workers must be 0 or more", file=sys.stderr)
        return 2
    if not args.workers:
        return subprocess.call(locust_command(rest))
    port = _free_port()
    master = subprocess.Popen(locust_command(rest, master=True, workers=args.workers, port=port))
    time.sleep(1.0)
    workers = [subprocess.Popen(worker_command(port), env=os.environ.copy()) for _ in range(args.workers)]
    try:
        return master.wait()
    finally:
        for w in workers:
            try:
                w.wait(timeout=15)
            except subprocess.TimeoutExpired:
                w.terminate()
                w.wait(timeout=10)
