"""Every pattern example runs offline and exits 0 (their main(), in this event loop)."""

from __future__ import annotations

import importlib

import pytest


@pytest.mark.parametrize("name", ["research_pipeline", "routing", "cascade", "ensemble"])
async def test_example_runs(name: str, capsys: pytest.CaptureFixture[str]) -> None:
    module = importlib.import_module(f"examples.patterns.{name}")
    assert await module.main() == 0
    out = capsys.readouterr().out
    assert out.strip()
    if name == "research_pipeline":
        assert "pipeline: stage research: mid failed (server) → fallback fast" in out
    if name == "cascade":
        assert "escalated: invalid JSON at line 1 col 23" in out
