"""Audit records, kept in memory and written as JSON lines through structlog.

One :class:`~router.types.AuditRecord` per request (success or not) holds the route, the
candidates, every attempt with its outcome, error kind and wait (and where the wait came from),
the winner, usage and cost. :class:`AuditLog` keeps the last N in a ring readable in-process;
:class:`AuditLogger` writes each as one JSON line. Records carry no prompt or answer text; the
only free text is the providers' error messages, which can quote the input (a content-policy
refusal, a context-length error): ``redact=True`` replaces them with their length.
"""

from __future__ import annotations

import sys
from collections import deque
from collections.abc import Callable
from typing import IO, Any

import structlog

from router.hooks import BaseListener
from router.types import AttemptRecord, AuditRecord, Usage

__all__ = ["AuditLog", "AuditLogger", "record_to_dict"]


def _usage(u: Usage | None) -> dict[str, int] | None:
    if u is None:
        return None
    return {
        "input_tokens": u.input_tokens,
        "output_tokens": u.output_tokens,
        "cached_input_tokens": u.cached_input_tokens,
        "cache_write_tokens": u.cache_write_tokens,
    }


def _attempt(a: AttemptRecord, redact: bool) -> dict[str, Any]:
    message = a.message
    if redact and message is not None:
        message = f"<redacted {len(message)} chars>"
    return {
        "model": a.model,
        "provider": a.provider,
        "outcome": a.outcome,
        "started_at": a.started_at,
        "latency_s": a.latency_s,
        "ttft_s": a.ttft_s,
        "error_kind": a.error_kind,
        "status": a.status,
        "message": message,
        "wait_s": a.wait_s,
        "wait_source": a.wait_source,
        "usage": _usage(a.usage),
        "cost_usd": a.cost_usd,
        "streamed": a.streamed,
        "continued_from": a.continued_from,
    }


def record_to_dict(r: AuditRecord, *, redact: bool = False) -> dict[str, Any]:
    """A JSON-able dict of ``r``."""
    return {
        "request_id": r.request_id,
        "route": r.route,
        "candidates": list(r.candidates),
        "started_at": r.started_at,
        "attempts": [_attempt(a, redact) for a in r.attempts],
        "winner": r.winner,
        "outcome": r.outcome,
        "error_kind": r.error_kind,
        "latency_s": r.latency_s,
        "usage": _usage(r.usage),
        "cost_usd": r.cost_usd,
        "streamed": r.streamed,
        "decisions": list(r.decisions),
        "continuation": r.continuation,
    }


class AuditLog(BaseListener):
    """The last ``maxlen`` audit records, in memory."""

    def __init__(self, maxlen: int = 1000) -> None:
        self._records: deque[AuditRecord] = deque(maxlen=maxlen)

    def on_request(self, record: AuditRecord) -> None:
        self._records.append(record)

    def records(self) -> list[AuditRecord]:
        """Oldest first."""
        return list(self._records)

    def last(self) -> AuditRecord | None:
        return self._records[-1] if self._records else None

    def clear(self) -> None:
        self._records.clear()


class _CallableFile:
    """A file-like ``write`` over a function taking one line."""

    def __init__(self, fn: Callable[[str], None]) -> None:
        self.fn = fn

    def write(self, s: str) -> int:
        self.fn(s.rstrip("\n"))
        return len(s)

    def flush(self) -> None:
        return None


class AuditLogger(BaseListener):
    """Writes every audit record as one JSON line (``event: "router.request"``) through structlog.

    ``sink`` is a text file (default: stderr) or a function that takes each line.
    """

    def __init__(self, sink: IO[str] | Callable[[str], None] | None = None, *, redact: bool = False) -> None:
        file: Any = sys.stderr if sink is None else sink
        if callable(sink) and not hasattr(sink, "write"):
            file = _CallableFile(sink)
        self.redact = redact
        self._log = structlog.wrap_logger(
            structlog.WriteLogger(file),
            processors=[structlog.processors.JSONRenderer(sort_keys=False)],
        )

    def on_request(self, record: AuditRecord) -> None:
        self._log.info("router.request", **record_to_dict(record, redact=self.redact))
