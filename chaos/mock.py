"""Putting the chaos engine into the mock server: one interceptor plus the ``/_chaos/`` routes.

    engine = ChaosEngine.from_scenario(load_scenario("chaos/scenarios/brownout.yaml"))
    app = create_mock_app(engine=engine)          # a mock aiohttp app with faults and control API
    async with MockServer(app=app) as server: ...

or, for a mock app or core you already have, :func:`attach`. The engine goes first in the
core's interceptor chain, so a fault decides before anything else sees the request; the same
core serves the in-process transport, so faults work there too (transport faults as the
in-process front end renders them).
"""

from __future__ import annotations

from aiohttp import web

from chaos.control import add_control_routes
from chaos.engine import ChaosEngine
from chaos.scenario import Scenario
from mockproviders.core import MockCore
from mockproviders.server import CORE_KEY, create_app
from mockproviders.types import Clock


def attach_to_core(core: MockCore, engine: ChaosEngine) -> ChaosEngine:
    """Install ``engine`` as the first interceptor of ``core`` (once)."""
    if engine not in core.interceptors:
        core.interceptors = (engine, *core.interceptors)
    return engine


def attach(app: web.Application, engine: ChaosEngine | None = None) -> ChaosEngine:
    """Install an engine (a fresh one sharing the core's clock if None) into a mock app made by
    ``mockproviders.server.create_app``, and mount its control API. Call before the app starts."""
    core = app[CORE_KEY]
    if engine is None:
        engine = ChaosEngine(clock=core.clock)
    attach_to_core(core, engine)

    async def apply_mock_section(scenario: Scenario) -> None:
        if scenario.mock is None:
            return
        configure = getattr(core, "configure", None)
        if configure is None:
            raise web.HTTPConflict(
                text='{"error": "this mock cannot change its mock: section at run time; '
                'start it with turnout mock --scenario FILE"}',
                content_type="application/json",
            )
        configure(scenario.mock)

    add_control_routes(app, engine, on_scenario=apply_mock_section)
    return engine


def create_mock_app(
    scenario: Scenario | None = None,
    *,
    engine: ChaosEngine | None = None,
    clock: Clock | None = None,
    header_faults: bool = False,
) -> web.Application:
    """A mock aiohttp app with the chaos engine installed: the scenario's ``mock:`` section
    configures the mock, its rules, limits and seed the engine."""
    if engine is None:
        engine = ChaosEngine(clock=clock, header_faults=header_faults)
        if scenario is not None:
            engine.load(scenario)
    config = scenario.mock if scenario is not None else None
    seed = scenario.seed if scenario is not None else None
    app = create_app(config, seed=seed, clock=engine.clock)
    attach(app, engine)
    return app
