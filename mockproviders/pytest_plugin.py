"""Pytest fixtures for the mock providers. Enable in a conftest.py::

    pytest_plugins = ["mockproviders.pytest_plugin"]

Fixtures (override ``mock_config`` or ``mock_seed`` to change what the mock says):

- ``mock_core``: a :class:`~mockproviders.core.MockCore` on a :class:`~mockproviders.clock.FakeClock`
  (latency is simulated, never slept);
- ``mock_server``: that core served by aiohttp on a free loopback port
  (``mock_server.base_urls["openai"]``);
- ``mock_transport``: an httpx2 transport on that core, for ``http_client=httpx2.AsyncClient(transport=...)``;
- ``mock_providers``: respx interception of the real API hosts, so SDK clients made normally reach
  the core. It calls ``httpx2.alias_httpx()``, which must run before anything imports ``httpx``.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import pytest
import pytest_asyncio

from mockproviders.clock import FakeClock
from mockproviders.config import MockConfig
from mockproviders.core import MockCore
from mockproviders.inprocess import InProcessMock, MockTransport
from mockproviders.inprocess import mock_providers as _mock_providers
from mockproviders.server import MockServer, create_app


@pytest.fixture
def mock_config() -> MockConfig | None:
    """The mock's configuration; None for the defaults."""
    return None


@pytest.fixture
def mock_seed() -> int:
    return 0


@pytest.fixture
def mock_clock() -> FakeClock:
    return FakeClock()


@pytest.fixture
def mock_core(mock_config: MockConfig | None, mock_seed: int, mock_clock: FakeClock) -> MockCore:
    return MockCore(mock_config, seed=mock_seed, clock=mock_clock)


@pytest_asyncio.fixture
async def mock_server(mock_core: MockCore) -> AsyncIterator[MockServer]:
    async with MockServer(app=create_app(core=mock_core)) as server:
        yield server


@pytest.fixture
def mock_transport(mock_core: MockCore) -> Iterator[MockTransport]:
    transport = MockTransport(mock_core)
    yield transport
    transport.close()


@pytest.fixture
def mock_providers(mock_core: MockCore) -> Iterator[InProcessMock]:
    with _mock_providers(mock_core) as mock:
        yield mock
