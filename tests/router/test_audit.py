"""Audit records: one JSON line per request through structlog, redaction, the in-memory ring, stats."""

from __future__ import annotations

import io
import json

from router_fakes import FakeAdapter, Step, config, err

from router import Router
from router import errors as E
from router.audit import AuditLog, AuditLogger
from router.clock import FakeClock
from router.hooks import RouterStats
from router.types import ChatRequest, Message


async def test_one_json_line_per_request_with_every_attempt() -> None:
    clock = FakeClock()
    fake = FakeAdapter(clock)
    fake.script("a", Step(error=err(E.ContextLengthExceeded, status=400)))
    out = io.StringIO()
    lines: list[str] = []
    stats = RouterStats()
    ring = AuditLog(maxlen=2)
    router = Router(
        config(),
        clock=clock,
        adapters={"p": fake},
        listeners=[AuditLogger(out), AuditLogger(lines.append, redact=True), ring, stats],
    )
    await router.complete(ChatRequest("r", [Message("user", "secret prompt")]))
    await router.complete(ChatRequest("r", [Message("user", "again")]))
    await router.complete(ChatRequest("r", [Message("user", "and again")]))
    records = [json.loads(line) for line in out.getvalue().splitlines()]
    assert len(records) == 3 and len(lines) == 3 and len(ring.records()) == 2
    first = records[0]
    assert first["event"] == "router.request" and first["route"] == "r" and first["winner"] == "b"
    assert [a["outcome"] for a in first["attempts"]] == ["error", "success"]
    assert (
        first["attempts"][0]["error_kind"] == "context_length" and first["attempts"][0]["usage"] is not None
    )
    assert first["usage"]["input_tokens"] == 10 and first["cost_usd"] > 0
    assert json.loads(lines[0])["attempts"][0]["message"].startswith("<redacted")
    snap = stats.snapshot()
    assert snap["winners"] == {"r/b": 1, "r/a": 2} and snap["fallbacks"] == {"r": 1}
    assert snap["errors"] == {"a/context_length": 1}
    assert "secret prompt" not in out.getvalue()
