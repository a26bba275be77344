"""Logging, one approach for every package: structlog loggers, standard-library records, and one
place that decides how lines look.

Every module logs through :func:`get_logger` (a structlog ``BoundLogger``) with printf-style
messages, ``log.info("worker %d of %d serving on %s:%d", i, n, host, port)``, and keywords where
a value deserves a field of its own (``log.warning("...", store=name)``). The pipeline:

1. the level is checked first (:func:`structlog.stdlib.filter_by_level`), so a call whose level
   is off costs a method call and formats nothing;
2. the message is formatted with its arguments;
3. the event goes to the standard library's logger of the same name, keywords as the record's
   ``extra``: a program that configured :mod:`logging` itself (Locust, a user's application, pytest's
   ``caplog``) sees turnout's records in its own handlers, with the same text as before.

That routing is structlog's configuration; it is installed when this module is first imported,
and only if nobody configured structlog yet (a program with its own structlog set-up keeps it).

:func:`configure` is the one place output is formatted (``turnout serve --log-level --log-format``):
one stderr handler on the root logger whose :class:`structlog.stdlib.ProcessorFormatter` renders
turnout's events and every other library's records alike (aiohttp, uvloop, asyncio) as
``console`` lines (``2026-12-04T19:00:00.123Z INFO turnout.sidecar: message key=value``) or
``json`` objects, one a line.

Tests assert on events with :func:`structlog.testing.capture_logs`.

This module imports nothing from turnout's packages, so each of them can use it.
"""

from __future__ import annotations

import logging
import sys
from typing import Any, Literal, TextIO

import structlog

__all__ = ["FORMATS", "LEVELS", "configure", "get_logger"]

FORMATS = ("console", "json")
LEVELS = ("debug", "info", "warning", "error")
LogFormat = Literal["console", "json"]


def get_logger(name: str) -> Any:
    """The structlog logger ``name`` (``turnout.router``, ``turnout.sidecar``, ``loadtests``, ...)."""
    return structlog.stdlib.get_logger(name)


def _route_to_stdlib() -> None:
    structlog.configure(
        processors=[
            structlog.stdlib.filter_by_level,
            structlog.stdlib.PositionalArgumentsFormatter(),
            structlog.stdlib.render_to_log_kwargs,
        ],
        logger_factory=structlog.stdlib.LoggerFactory(),
        wrapper_class=structlog.stdlib.BoundLogger,
        # Not cached: structlog.testing.capture_logs swaps the processors, and a cached logger
        # would keep the old ones. Loggers are only built when something is logged.
        cache_logger_on_first_use=False,
    )


def _console(_logger: Any, _name: str, event: dict[str, Any]) -> str:
    """``timestamp LEVEL logger: message key=value ...``, then the traceback if there is one."""
    stamp = event.pop("timestamp", "")
    level = str(event.pop("level", "")).upper()
    name = event.pop("logger", "")
    message = event.pop("event", "")
    trace = event.pop("exception", None)
    line = f"{stamp} {level} {name}: {message}"
    if event:
        line += " " + " ".join(f"{k}={v}" for k, v in event.items())
    return f"{line}\n{trace}" if trace else line


def configure(level: str = "info", fmt: LogFormat = "console", stream: TextIO | None = None) -> None:
    """Send every record (turnout's and other libraries') at ``level`` or above to ``stream``
    (standard error) in one form: ``console`` lines or ``json`` objects. Replaces the root
    logger's handlers; raises ``ValueError`` for an unknown level or form."""
    if fmt not in FORMATS:
        raise ValueError(f"log format {fmt!r}: choose one of {', '.join(FORMATS)}")
    if level.lower() not in LEVELS:
        raise ValueError(f"log level {level!r}: choose one of {', '.join(LEVELS)}")
    renderer: Any = structlog.processors.JSONRenderer() if fmt == "json" else _console
    formatter = structlog.stdlib.ProcessorFormatter(
        # turnout's events arrive as records too (see the module's docstring): one chain for all
        foreign_pre_chain=[
            structlog.stdlib.add_log_level,
            structlog.stdlib.add_logger_name,
            structlog.stdlib.ExtraAdder(),
            structlog.processors.TimeStamper(fmt="iso", utc=True),
        ],
        processors=[
            structlog.stdlib.ProcessorFormatter.remove_processors_meta,
            structlog.processors.format_exc_info,
            renderer,
        ],
    )
    handler = logging.StreamHandler(stream if stream is not None else sys.stderr)
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())
    _route_to_stdlib()


if not structlog.is_configured():
    _route_to_stdlib()
