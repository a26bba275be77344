"""Pytest fixtures for the mock providers, loaded automatically once turnout is installed (the
``pytest11`` entry point ``mockproviders.pytest_plugin``; ``-p no:mockproviders.pytest_plugin``
turns it off, and a ``pytest_plugins = ["mockproviders.pytest_plugin"]`` line is harmless).

Fixtures (override ``mock_config`` or ``mock_seed`` to change what the mock says):

- ``mock_providers``: the real API hosts of OpenAI, Anthropic and Mistral answered in process, so
  the official SDK clients (sync and async, made in the test or before it) reach the mock with no
  ``base_url``, ``http_client`` or aliasing; other hosts, and a test's own respx mocks of them, are
  untouched. Plain ``httpx2``/``httpx`` clients to those hosts are answered too.
- ``mock_journal``: the journal of every request the mock saw, to assert on;
- ``mock_chaos``: the chaos engine of the ``turnout_chaos`` marker (None without one)::

      @pytest.mark.turnout_chaos("rate-limit-storm")            # a shipped scenario, or a YAML path
      @pytest.mark.turnout_chaos(rules=[{"name": "busy", "fault": "rate_limit", "when": {"first": 1}}])

- ``mock_core``: the :class:`~mockproviders.core.MockCore` behind them, on a
  :class:`~mockproviders.clock.FakeClock` (``mock_clock``: latency is simulated, never slept);
- ``mock_server``: that core on a free loopback port, for clients that are not httpx-based
  (aiohttp, ``requests``, other processes): ``mock_server.base_urls["openai"]``; in sync and
  anyio tests it runs on a thread of its own, in pytest-asyncio tests on the test's loop;
- ``mock_transport``: an httpx2 transport on that core, for ``http_client=httpx2.Client(transport=...)``.

This module is imported by every pytest run where turnout is installed, so it imports nothing
heavy (and never ``httpx``) until a fixture is used.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any, NoReturn

import pytest

if TYPE_CHECKING:
    from chaos.engine import ChaosEngine
    from mockproviders.clock import FakeClock
    from mockproviders.config import MockConfig
    from mockproviders.core import MockCore
    from mockproviders.inprocess import InProcessMock, MockTransport
    from mockproviders.journal import Journal
    from mockproviders.server import MockServer

CHAOS_MARKER = "turnout_chaos"


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        f"{CHAOS_MARKER}(scenario=None, *, rules=None, seed=None): apply a chaos scenario (a shipped "
        "one by name, or a YAML file) and/or fault rules to the mock providers for this test",
    )


@pytest.fixture
def mock_config() -> MockConfig | None:
    """The mock's configuration; None for the defaults (or the chaos scenario's ``mock:``)."""
    return None


@pytest.fixture
def mock_seed() -> int:
    return 0


@pytest.fixture
def mock_clock() -> FakeClock:
    from mockproviders.clock import FakeClock

    return FakeClock()


@pytest.fixture
def mock_chaos(request: pytest.FixtureRequest, mock_clock: FakeClock) -> ChaosEngine | None:
    """The chaos engine the ``turnout_chaos`` marker asks for, on the mock's clock; else None."""
    marker = request.node.get_closest_marker(CHAOS_MARKER)
    if marker is None:
        return None
    from chaos.engine import ChaosEngine

    scenario = _marker_scenario(marker.args, dict(marker.kwargs), request.node.nodeid)
    return ChaosEngine.from_scenario(scenario, clock=mock_clock)


def _marker_scenario(args: tuple[Any, ...], kwargs: dict[str, Any], where: str) -> Any:
    from pathlib import Path

    from chaos.scenario import ScenarioError, library, load_scenario, parse_scenario

    def fail(msg: str) -> NoReturn:
        pytest.fail(f"{where}: @pytest.mark.{CHAOS_MARKER}: {msg}", pytrace=False)

    rules = kwargs.pop("rules", None)
    seed = kwargs.pop("seed", None)
    if kwargs:
        fail(f"unknown argument(s) {', '.join(sorted(kwargs))}; expected scenario, rules=, seed=")
    if len(args) > 1:
        fail("takes one scenario (a shipped name or a YAML path); put several faults in rules=[...]")
    data: dict[str, Any] = {}
    if args:
        name = args[0]
        shipped = library()
        path = shipped.get(str(name)) or Path(name)
        if not path.is_file():
            fail(f"no scenario {name!r}: not a file, nor one of the shipped {', '.join(shipped)}")
        try:
            data = load_scenario(path).to_dict()
        except ScenarioError as exc:
            fail(str(exc))
    if rules is not None:
        if not isinstance(rules, list):
            fail(f"rules= must be a list of rule mappings, not {type(rules).__name__}")
        for i, rule in enumerate(rules):
            if isinstance(rule, dict):
                rule.setdefault("name", f"rule-{i}")
        data["rules"] = [*data.get("rules", []), *rules]
    if seed is not None:
        data["seed"] = seed
    if not args and rules is None:
        fail("give a scenario name or path, or rules=[...]")
    try:
        return parse_scenario(data, source=f"@pytest.mark.{CHAOS_MARKER}")
    except ScenarioError as exc:
        fail(str(exc))


@pytest.fixture
def mock_core(
    mock_config: MockConfig | None, mock_seed: int, mock_clock: FakeClock, mock_chaos: ChaosEngine | None
) -> MockCore:
    from mockproviders.core import MockCore

    scenario = mock_chaos.scenario if mock_chaos is not None else None
    config = mock_config if mock_config is not None or scenario is None else scenario.mock
    core = MockCore(config, seed=mock_seed, clock=mock_clock)
    if mock_chaos is not None:
        from chaos.mock import attach_to_core

        attach_to_core(core, mock_chaos)
    return core


@pytest.fixture
def mock_journal(mock_core: MockCore) -> Journal:
    """Every request the mock received, in order (``mock_journal.filter(provider="openai")``)."""
    return mock_core.journal


@pytest.fixture
def mock_transport(mock_core: MockCore) -> Iterator[MockTransport]:
    from mockproviders.inprocess import MockTransport

    transport = MockTransport(mock_core)
    yield transport
    transport.close()


# Base-URL overrides the SDKs read from the environment when a client is made: unset for the test,
# so a developer's shell pointing at a real gateway cannot send a test's traffic there.
SDK_BASE_URL_VARIABLES = ("OPENAI_BASE_URL", "ANTHROPIC_BASE_URL")


@pytest.fixture
def mock_providers(mock_core: MockCore, monkeypatch: pytest.MonkeyPatch) -> Iterator[InProcessMock]:
    from mockproviders.inprocess import mock_providers as intercept

    for name in SDK_BASE_URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    with intercept(mock_core) as mock:
        yield mock


@pytest.fixture
def mock_server(request: pytest.FixtureRequest, mock_core: MockCore) -> Iterator[MockServer]:
    """The core on a free loopback port. An asyncio test (pytest-asyncio) gets it on its own loop;
    any other test (sync, anyio) gets it on a loop in a thread of its own, so it answers while
    the test blocks."""
    import inspect

    if (
        _HAS_PYTEST_ASYNCIO
        and request.config.pluginmanager.has_plugin("asyncio")
        and request.node.get_closest_marker("asyncio") is not None
        and request.node.get_closest_marker("anyio") is None  # anyio runs such a test on its own loop
        and inspect.iscoroutinefunction(getattr(request.node, "obj", None))
    ):
        yield request.getfixturevalue("_mock_server_on_the_test_loop")
        return
    from mockproviders.server import MockServer, create_app
    from mockproviders.threaded import ThreadedMockServer

    with ThreadedMockServer(MockServer(app=create_app(core=mock_core))) as server:
        yield server


try:
    import pytest_asyncio
except ImportError:  # pragma: no cover - depends on the user's environment
    _HAS_PYTEST_ASYNCIO = False
else:
    _HAS_PYTEST_ASYNCIO = True

    @pytest_asyncio.fixture
    async def _mock_server_on_the_test_loop(mock_core: MockCore) -> AsyncIterator[MockServer]:
        from mockproviders.server import MockServer, create_app

        async with MockServer(app=create_app(core=mock_core)) as server:
            yield server
