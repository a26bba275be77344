"""Mock OpenAI, Anthropic and Mistral APIs that their official SDKs cannot tell from the real ones.

Public API (imported lazily, so ``turnout --help`` stays fast)::

    MockCore(config=None, *, seed=None, clock=None, interceptors=())   # the request-handling core
    create_app(config=None, *, seed=None, interceptors=(), clock=None, core=None)  # aiohttp app
    MockServer(config=None, *, seed=None, ..., host="127.0.0.1", port=0)           # app on a socket
    MockTransport(core) / mock_providers(core=None, ...)   # in process: a transport / the real hosts
    MockConfig, load_config(path), parse_config(data)      # the YAML configuration
    error_response(provider, status, kind=None, message=None, ...)  # provider error shapes
    Journal, JournalEntry, FakeClock, SystemClock

Pytest fixtures (``mock_providers``, ``mock_journal``, ``mock_chaos``, ``mock_server``, ...) load
automatically once turnout is installed: see :mod:`mockproviders.pytest_plugin`.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from mockproviders.types import (
    AbortConnection,
    AnswerPatch,
    Clock,
    Interceptor,
    MockRequest,
    MockResponse,
    StreamEvent,
)

if TYPE_CHECKING:
    from mockproviders.clock import FakeClock, SystemClock
    from mockproviders.config import ConfigError, MockConfig, load_config, parse_config
    from mockproviders.core import MockCore
    from mockproviders.errors import error_response, stream_error_event
    from mockproviders.inprocess import MockTransport, mock_providers
    from mockproviders.journal import Journal, JournalEntry
    from mockproviders.server import MockServer, create_app

_LAZY = {
    "FakeClock": "mockproviders.clock",
    "SystemClock": "mockproviders.clock",
    "ConfigError": "mockproviders.config",
    "MockConfig": "mockproviders.config",
    "load_config": "mockproviders.config",
    "parse_config": "mockproviders.config",
    "MockCore": "mockproviders.core",
    "error_response": "mockproviders.errors",
    "stream_error_event": "mockproviders.errors",
    "MockTransport": "mockproviders.inprocess",
    "mock_providers": "mockproviders.inprocess",
    "Journal": "mockproviders.journal",
    "JournalEntry": "mockproviders.journal",
    "MockServer": "mockproviders.server",
    "create_app": "mockproviders.server",
}

__all__ = [
    "AbortConnection",
    "AnswerPatch",
    "Clock",
    "ConfigError",
    "FakeClock",
    "Interceptor",
    "Journal",
    "JournalEntry",
    "MockConfig",
    "MockCore",
    "MockRequest",
    "MockResponse",
    "MockServer",
    "MockTransport",
    "StreamEvent",
    "SystemClock",
    "create_app",
    "error_response",
    "load_config",
    "mock_providers",
    "parse_config",
    "stream_error_event",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'mockproviders' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
