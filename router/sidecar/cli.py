"""Run the router as an OpenAI-compatible sidecar: ``turnout serve --config router.yaml``.

Point any OpenAI client at ``http://HOST:PORT/v1``; the request's ``model`` names a route.
``--check`` validates the file and prints a summary without serving (exit 2 if it is invalid).
SIGHUP (or ``POST /admin/reload``) reloads the file; SIGTERM/SIGINT drain and stop.
``--workers N`` (or ``auto``) serves with N processes on the one port (router/sidecar/workers.py).
``--loop`` picks the event loop: uvloop when it is installed (``auto``, the default), else asyncio's.
"""

from __future__ import annotations

import argparse


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--config", "-c", required=True, metavar="FILE", help="the router's YAML configuration"
    )
    parser.add_argument("--host", default=None, help="address to bind (default: the file's, else 127.0.0.1)")
    parser.add_argument(
        "--port", type=int, default=None, help="port (default: the file's, else 8200; 0 = any)"
    )
    parser.add_argument(
        "--check",
        action="store_true",
        help="validate the configuration, print a summary, exit (unset ${VAR}s are listed, not "
        "fatal, so a file can be checked without its secrets)",
    )
    parser.add_argument(
        "--loop",
        default="auto",
        choices=["auto", "asyncio", "uvloop"],
        help="event loop (default auto: uvloop when it is installed, else asyncio's)",
    )
    parser.add_argument(
        "--workers",
        default="1",
        metavar="N",
        help="processes serving the port (default 1; auto = one per core): restarted if they die,"
        " reloaded and drained together, one /metrics",
    )
    parser.add_argument(
        "--log-level",
        default="info",
        choices=["debug", "info", "warning", "error"],
        help="log lines of this level and above go to stderr (default: info)",
    )
    parser.add_argument(
        "--log-format",
        default="console",
        choices=["console", "json"],
        help="stderr lines as text or as one JSON object each, for turnout's events and aiohttp's"
        " alike (default: console)",
    )


def run(args: argparse.Namespace) -> int:
    from router.sidecar.serve import main

    return main(args)
