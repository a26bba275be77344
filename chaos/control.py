"""The run-time control API under ``/_chaos/``, in the spirit of toxiproxy's REST API.

=======  =============================  ==============================================================
method   path                           what
=======  =============================  ==============================================================
GET      /_chaos/                       seed, elapsed time, rules, whether fault headers are on
GET      /_chaos/faults                 the fault catalogue: each fault's family and params schema
GET      /_chaos/rules                  the rules, in order
POST     /_chaos/rules                  add a rule (JSON body); 409 if the name is taken
DELETE   /_chaos/rules                  remove every rule
GET      /_chaos/rules/{name}           one rule
PUT      /_chaos/rules/{name}           replace (or add) that rule; its counters restart
DELETE   /_chaos/rules/{name}           remove it
POST     /_chaos/reset                  journal, counters, limits, numbering and time zero afresh
GET      /_chaos/scenario               the scenario last loaded (null if none)
PUT      /_chaos/scenario               load a scenario (YAML or JSON body); POST does the same
GET      /_chaos/journal                the journal; ``?since=N`` from request index N on
GET      /_chaos/counters               per rule: matched and injected
=======  =============================  ==============================================================

Errors are ``{"error": "message"}`` with 400 (invalid input), 404 (no such rule) or 409.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

from aiohttp import web
from pydantic import ValidationError

from chaos.engine import ChaosEngine
from chaos.faults import REGISTRY
from chaos.rules import Rule
from chaos.scenario import Scenario, ScenarioError, parse_scenario_text
from turnout import safejson

PREFIX = "/_chaos"
ScenarioHook = Callable[[Scenario], Awaitable[None] | None]


def _error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def _invalid(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors():
        path = ".".join(str(p) for p in err["loc"]) or "(top level)"
        parts.append(f"{path}: {str(err['msg']).removeprefix('Value error, ')}")
    return "invalid rule: " + "; ".join(parts)


class ControlAPI:
    """Handlers bound to one engine; ``on_scenario`` lets the host (the mock) apply ``mock:``."""

    def __init__(self, engine: ChaosEngine, on_scenario: ScenarioHook | None = None) -> None:
        self.engine = engine
        self.on_scenario = on_scenario

    def routes(self) -> list[web.RouteDef]:
        return [
            web.get(f"{PREFIX}/", self.summary),
            web.get(f"{PREFIX}", self.summary),
            web.get(f"{PREFIX}/faults", self.faults),
            web.get(f"{PREFIX}/rules", self.list_rules),
            web.post(f"{PREFIX}/rules", self.add_rule),
            web.delete(f"{PREFIX}/rules", self.clear_rules),
            web.get(f"{PREFIX}/rules/{{name}}", self.get_rule),
            web.put(f"{PREFIX}/rules/{{name}}", self.put_rule),
            web.delete(f"{PREFIX}/rules/{{name}}", self.delete_rule),
            web.post(f"{PREFIX}/reset", self.reset),
            web.get(f"{PREFIX}/scenario", self.get_scenario),
            web.put(f"{PREFIX}/scenario", self.load_scenario),
            web.post(f"{PREFIX}/scenario", self.load_scenario),
            web.get(f"{PREFIX}/journal", self.journal),
            web.get(f"{PREFIX}/counters", self.counters),
        ]

    async def summary(self, request: web.Request) -> web.Response:
        e = self.engine
        return web.json_response(
            {
                "seed": e.seed,
                "elapsed": e.elapsed(),
                "header_faults": e.header_faults,
                "rules": [r.to_dict() for r in e.rules],
                "limits": [lim.model_dump(mode="json", exclude_defaults=True) for lim in e.limits.limits],
            }
        )

    async def faults(self, request: web.Request) -> web.Response:
        return web.json_response(REGISTRY.describe())

    async def list_rules(self, request: web.Request) -> web.Response:
        return web.json_response([r.to_dict() for r in self.engine.rules])

    async def _rule_from(self, request: web.Request, name: str | None = None) -> Rule | web.Response:
        try:
            data = safejson.loads(await request.read())
        except safejson.JSONError as exc:
            return _error(400, str(exc))
        if not isinstance(data, dict):
            return _error(400, "the body must be a JSON object (a rule)")
        if name is not None and data.setdefault("name", name) != name:
            return _error(400, f"the body names rule {data['name']!r} but the path names {name!r}")
        try:
            return Rule.model_validate(data)
        except ValidationError as exc:
            return _error(400, _invalid(exc))

    async def add_rule(self, request: web.Request) -> web.Response:
        rule = await self._rule_from(request)
        if isinstance(rule, web.Response):
            return rule
        try:
            self.engine.add_rule(rule)
        except ValueError as exc:
            return _error(409, str(exc))
        return web.json_response(rule.to_dict(), status=201)

    async def clear_rules(self, request: web.Request) -> web.Response:
        self.engine.clear_rules()
        return web.Response(status=204)

    async def get_rule(self, request: web.Request) -> web.Response:
        try:
            return web.json_response(self.engine.get_rule(request.match_info["name"]).to_dict())
        except KeyError as exc:
            return _error(404, str(exc.args[0]))

    async def put_rule(self, request: web.Request) -> web.Response:
        rule = await self._rule_from(request, request.match_info["name"])
        if isinstance(rule, web.Response):
            return rule
        replaced = self.engine.replace_rule(rule)
        return web.json_response(rule.to_dict(), status=200 if replaced else 201)

    async def delete_rule(self, request: web.Request) -> web.Response:
        try:
            self.engine.remove_rule(request.match_info["name"])
        except KeyError as exc:
            return _error(404, str(exc.args[0]))
        return web.Response(status=204)

    async def reset(self, request: web.Request) -> web.Response:
        self.engine.reset()
        return web.Response(status=204)

    async def get_scenario(self, request: web.Request) -> web.Response:
        s = self.engine.scenario
        return web.json_response(None if s is None else s.to_dict())

    async def load_scenario(self, request: web.Request) -> web.Response:
        text = await request.text()
        try:
            scenario = parse_scenario_text(text, "request body")
        except ScenarioError as exc:
            return _error(400, str(exc))
        if self.on_scenario is not None:
            result = self.on_scenario(scenario)
            if result is not None:
                await result
        self.engine.load(scenario)
        return web.json_response(scenario.to_dict())

    async def journal(self, request: web.Request) -> web.Response:
        raw = request.query.get("since", "0")
        if not (raw.isascii() and raw.isdigit() and len(raw) <= 18):  # "²".isdigit() is true
            return _error(400, "since must be a non-negative integer request index")
        since = int(raw)
        entries: list[dict[str, Any]] = [e for e in self.engine.journal if e["index"] >= since]
        return web.json_response(entries)

    async def counters(self, request: web.Request) -> web.Response:
        return web.json_response(self.engine.counters())


def add_control_routes(
    app: web.Application, engine: ChaosEngine, on_scenario: ScenarioHook | None = None
) -> None:
    """Add the ``/_chaos/`` routes for ``engine`` to ``app`` (before any catch-all route)."""
    app.router.add_routes(ControlAPI(engine, on_scenario).routes())
