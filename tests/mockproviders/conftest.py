"""Fixtures for the mock's tests: the plugin's fixtures, and ``sdk``, the three official SDK
clients pointed at the mock through each front end (socket, in-process interception, httpx2 transport)."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import httpx2
import pytest
import pytest_asyncio
from mock_sdk_client import SDK

from mockproviders import pytest_plugin as _plugin
from mockproviders.core import MockCore
from mockproviders.inprocess import MockTransport, mock_providers
from mockproviders.server import MockServer, create_app

# The plugin's fixtures (a non-root conftest may not set pytest_plugins).
mock_config = _plugin.mock_config
mock_seed = _plugin.mock_seed
mock_clock = _plugin.mock_clock
mock_core = _plugin.mock_core
mock_server = _plugin.mock_server
mock_transport = _plugin.mock_transport

MODES = ("server", "intercept", "transport")


@pytest_asyncio.fixture(params=MODES)
async def sdk(request: pytest.FixtureRequest, mock_core: MockCore) -> AsyncIterator[SDK]:
    mode = request.param
    async with contextlib.AsyncExitStack() as stack:
        if mode == "server":
            server = await stack.enter_async_context(MockServer(app=create_app(core=mock_core)))
            urls = server.base_urls
            http = await stack.enter_async_context(httpx2.AsyncClient())
        elif mode == "intercept":
            stack.enter_context(mock_providers(mock_core))
            urls = {
                "openai": "https://api.openai.com/v1",
                "anthropic": "https://api.anthropic.com",
                "mistral": "https://api.mistral.ai",
            }
            http = await stack.enter_async_context(httpx2.AsyncClient())
        else:
            urls = {
                p: f"http://mock/{p}" + ("/v1" if p == "openai" else "")
                for p in ("openai", "anthropic", "mistral")
            }
            http = await stack.enter_async_context(httpx2.AsyncClient(transport=MockTransport(mock_core)))
        sdk = SDK(mode, mock_core, http, urls)
        try:
            yield sdk
        finally:
            await sdk.aclose()
