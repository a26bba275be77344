"""Fixtures for the load-test runs (helpers live in ``loadtest_procs``)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from loadtest_procs import MOCK_CONFIG, Service, start_mock


@pytest.fixture
def services() -> Iterator[list[Service]]:
    """Services started by a test; all stopped when it ends, whatever happened."""
    started: list[Service] = []
    yield started
    for service in reversed(started):
        service.stop()


@pytest.fixture(scope="session")
def mock_openai(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """One mock for the runs that only need a healthy OpenAI endpoint; yields its base URL."""
    service = start_mock(tmp_path_factory.mktemp("mock"), MOCK_CONFIG)
    try:
        yield service.url
    finally:
        service.stop()
