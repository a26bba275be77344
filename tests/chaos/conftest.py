"""Fixtures for the chaos tests; the helpers they share live in ``chaos_helpers``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest
from chaos_helpers import ChaosMockServer, MockFactory

from chaos import ChaosEngine, Rule
from mockproviders.clock import FakeClock


@pytest.fixture
def chaos_mock() -> MockFactory:
    """``async with chaos_mock(rule(...), ...) as server`` — a mock on port 0 with those rules;
    ``server.engine`` is the engine. A FakeClock by default, so faults never sleep for real."""

    @asynccontextmanager
    async def factory(*rules: Rule, clock: Any = None, **engine_kw: Any) -> AsyncIterator[ChaosMockServer]:
        engine = ChaosEngine(rules, clock=clock if clock is not None else FakeClock(), **engine_kw)
        async with ChaosMockServer(engine) as server:
            try:
                yield server
            finally:
                for client in server.clients:
                    await client.close()

    return factory
