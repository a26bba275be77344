"""Drill files: the faults, the router, the traffic and the steady-state hypothesis to check.

::

    name: provider-outage
    description: OpenAI goes down; the breaker opens, the fallbacks serve, traffic comes back.
    seed: 1
    quick: true                          # part of the quick CI suite (turnout drill --quick)
    chaos:                               # a path (relative to this file), library:NAME, or inline
      use: library:provider-outage
      time_scale: 0.1                    # the 10-70 s outage becomes 1-7 s
    router:
      mode: library                      # or sidecar
      config: router/default.yaml        # a path, or the configuration inline
      overrides: {defaults: {breaker: {failures: 3, window: 5s, cooldown: 1s}}}
    traffic: {duration: 9s, concurrency: 4, stream_share: 0.5, routes: {chat: 1}}
                                         # client: anthropic  (the anthropic SDK, sidecar mode)
    hypothesis:
      phases:                            # default: before, during and after the fault windows
        recovered: {start: faults.end + 2s}
      checks:
        - {check: success_rate, min: 0.99, phases: [before, during, after]}
        - {check: breaker_opened, model: gpt-4o-mini, within: 2s}

In router configurations, ``${MOCK_URL}`` stands for the mock server's address
(``http://127.0.0.1:PORT``), filled in when the drill starts; other ``${VAR}`` and
``${VAR:-default}`` come from the environment. A file that does not validate is rejected whole
with a :class:`DrillError` naming the file, each bad field's dotted path and the reason.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from chaos.drill.checks import AnyCheck
from chaos.drill.timeref import TimeRef, TimeRefField, Windows, scale_scenario
from chaos.scenario import Scenario, ScenarioError, library, load_scenario, parse_scenario
from turnout.durations import Duration
from turnout.problems import describe
from turnout.yamlfile import YAMLFileError, read_yaml, substitute_env

PLACEHOLDER_URL = "http://127.0.0.1:9"  # validates a config before the mock's port is known
DEFAULT_PROMPTS = (
    "Summarize the history of the railway turnout in two sentences.",
    "Classify this ticket: 'my train was late again'.",
    "Write a haiku about a signal box.",
    "Explain a circuit breaker to a station master.",
)


class DrillError(ValueError):
    """A drill file that cannot be read or does not validate; the message says where and why."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ChaosRef(_Strict):
    """``chaos: {use: library:NAME | path, time_scale: 0.1, mock: {...}}``."""

    use: str = Field(min_length=1)
    time_scale: float = Field(default=1.0, gt=0)
    mock: dict[str, Any] | None = None  # replaces the scenario's mock: section


class SharedStateSpec(_Strict):
    """``shared_state: {restart_at: 3s, down_for: 1s}``: the replicas share a redis-server the
    drill starts on a free port (the router config's ``state:`` is set to it); optionally it is
    killed at ``restart_at`` (seconds from the start) and started again, empty, ``down_for`` later."""

    restart_at: Duration | None = None
    down_for: Duration = Field(default=0.5, gt=0)


class RouterSpec(_Strict):
    mode: Literal["library", "sidecar"] = "library"
    config: str | dict[str, Any]
    overrides: dict[str, Any] = Field(default_factory=dict)  # merged into the config, key by key
    replicas: int = Field(default=1, ge=1, le=8)  # routers (sidecars on one port) taking the traffic
    shared_state: SharedStateSpec | None = None


class TrafficSpec(_Strict):
    """How much traffic, how fast, and what it asks for; every choice is drawn from the seed."""

    requests: int | None = Field(default=None, ge=1)
    duration: Duration | None = None
    concurrency: int | None = Field(default=None, ge=1, le=1024)  # closed loop
    rate: float | None = Field(default=None, gt=0)  # requests per second, open loop
    arrivals: Literal["uniform", "poisson"] = "uniform"  # spacing of an open loop's requests
    stream_share: float = Field(default=0.0, ge=0.0, le=1.0)
    routes: dict[str, float] = Field(min_length=1)  # route -> weight
    prompts: list[str] = Field(default_factory=lambda: list(DEFAULT_PROMPTS), min_length=1)
    max_tokens: int | None = Field(default=48, ge=1)
    timeout: Duration = Field(default=30.0, gt=0)  # the drill's own cap on one request
    # Who sends it: "http" (OpenAI chat bodies over aiohttp, or router calls in library mode) or
    # "anthropic" (the official anthropic SDK on the sidecar's /v1/messages; sidecar mode only).
    client: Literal["http", "anthropic"] = "http"

    @model_validator(mode="after")
    def _shape(self) -> TrafficSpec:
        if (self.requests is None) == (self.duration is None):
            raise ValueError("give exactly one of requests or duration")
        if self.concurrency is not None and self.rate is not None:
            raise ValueError("give concurrency (closed loop) or rate (open loop), not both")
        if self.duration is not None and self.duration <= 0:
            raise ValueError("duration must be more than 0 s")
        if any(w < 0 for w in self.routes.values()) or sum(self.routes.values()) <= 0:
            raise ValueError("route weights must be >= 0 with at least one above 0")
        return self

    @property
    def workers(self) -> int:
        return self.concurrency if self.concurrency is not None else 4


class PhaseSpec(_Strict):
    start: TimeRefField = TimeRef(None, "start", 0.0)
    end: TimeRefField | None = None  # None: the drill's end


class Hypothesis(_Strict):
    phases: dict[str, PhaseSpec] = Field(default_factory=dict)
    checks: list[AnyCheck] = Field(min_length=1)

    @model_validator(mode="after")
    def _known_phases(self) -> Hypothesis:
        known = set(self.phases) | {"before", "during", "after", "all"}
        for i, check in enumerate(self.checks):
            for phase in check.phases:
                if phase not in known:
                    raise ValueError(
                        f"checks.{i} ({check.label()}) names unknown phase {phase!r}; "
                        f"known: {', '.join(sorted(known))}"
                    )
        return self


class DrillSpec(_Strict):
    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")
    description: str | None = None
    seed: int | None = None  # default: the chaos scenario's seed
    quick: bool = False
    chaos: str | ChaosRef | dict[str, Any]
    router: RouterSpec
    traffic: TrafficSpec
    hypothesis: Hypothesis

    @model_validator(mode="after")
    def _client_needs_sidecar(self) -> DrillSpec:
        if self.traffic.client == "anthropic" and self.router.mode != "sidecar":
            raise ValueError("traffic.client 'anthropic' talks to the sidecar: set router.mode: sidecar")
        return self


@dataclass(slots=True)
class LoadedDrill:
    """A validated drill with its chaos scenario and router configuration resolved."""

    spec: DrillSpec
    source: str
    scenario: Scenario  # windows already scaled
    router_data: dict[str, Any]  # the router config as data, ${MOCK_URL} not yet filled

    @property
    def name(self) -> str:
        return self.spec.name

    @property
    def seed(self) -> int:
        return self.spec.seed if self.spec.seed is not None else self.scenario.seed

    def windows(self) -> Windows:
        return Windows.of(self.scenario)

    def router_config_data(self, mock_url: str) -> dict[str, Any]:
        """The router configuration with ``${MOCK_URL}`` (and ``${ENV}``) filled in."""
        try:
            data: dict[str, Any] = substitute_env(
                self.router_data, source=self.source, path="router.config", fixed={"MOCK_URL": mock_url}
            )
        except YAMLFileError as exc:
            raise DrillError(str(exc)) from None
        return data


# --- loading -------------------------------------------------------------------------------------


def _describe(err: Any) -> str:
    return describe(err, DrillSpec)


def _fail(source: str, problems: list[str]) -> DrillError:
    count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
    return DrillError(f"{source}: invalid drill, {count}: " + "; ".join(problems) + ".")


def _merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for k, v in extra.items():
        out[k] = (
            _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else copy.deepcopy(v)
        )
    return out


def _read_yaml(path: Path, what: str, source: str) -> Any:
    try:
        return read_yaml(path, what=f"the {what}")
    except YAMLFileError as exc:
        raise DrillError(str(exc) if str(path) == source else f"{source}: {exc}") from None


def _scenario(spec: DrillSpec, base: Path, source: str) -> Scenario:
    ref = spec.chaos
    try:
        if isinstance(ref, dict):
            return parse_scenario(ref, f"{source}: chaos")
        use = ref if isinstance(ref, str) else ref.use
        if use.startswith("library:"):
            shipped = library()
            name = use.removeprefix("library:")
            if name not in shipped:
                raise DrillError(
                    f"{source}: chaos: no shipped scenario named {name!r}; known: {', '.join(shipped)}"
                )
            scenario = load_scenario(shipped[name])
        else:
            scenario = load_scenario(base / use)
        if isinstance(ref, ChaosRef):
            if ref.mock is not None:
                data = scenario.to_dict() | {"mock": ref.mock}
                scenario = parse_scenario(data, f"{source}: chaos.mock")
            scenario = scale_scenario(scenario, ref.time_scale)
        return scenario
    except ScenarioError as exc:
        raise DrillError(str(exc)) from None


def _router_data(spec: DrillSpec, base: Path, source: str) -> dict[str, Any]:
    cfg = spec.router.config
    if isinstance(cfg, str):
        data = _read_yaml(base / cfg, "router configuration", source)
        if not isinstance(data, dict):
            raise DrillError(f"{base / cfg}: a router configuration must be a mapping")
    else:
        data = cfg
    return _merge(data, spec.router.overrides)


def _cross_check(drill: LoadedDrill) -> list[str]:
    """Validate the router config (with a placeholder URL) and the names the drill uses in it."""
    from router.config import ConfigError, parse_config
    from router.sidecar.settings import SettingsError, parse_settings, split_sections

    problems: list[str] = []
    sidecar, rest = split_sections(drill.router_config_data(PLACEHOLDER_URL))
    try:
        cfg = parse_config(rest, source="router.config")
    except ConfigError as exc:
        return [line.strip() for line in str(exc).splitlines()]
    if drill.spec.router.mode == "sidecar":
        try:
            parse_settings(sidecar, source="router.config")
        except SettingsError as exc:
            problems.extend(line.strip() for line in str(exc).splitlines())
    targets = set(cfg.routes) | set(cfg.models) | set(cfg.patterns) | set(cfg.rules)
    for route in drill.spec.traffic.routes:
        if route not in targets:
            problems.append(
                f"traffic.routes.{route}: not a route, pattern, rule set or model of the router configuration"
            )
    windows = drill.windows()
    for i, check in enumerate(drill.spec.hypothesis.checks):
        for route in check.routes or []:
            if route not in drill.spec.traffic.routes:
                problems.append(f"hypothesis.checks.{i}.routes: {route!r} is not one of traffic.routes")
        model = getattr(check, "model", None)
        if model is not None and model not in cfg.models:
            problems.append(
                f"hypothesis.checks.{i}.model: {model!r} is not a model of the router configuration"
            )
        after = getattr(check, "after", None)
        refs = [after] if isinstance(after, TimeRef) else []
        problems.extend(_ref_problems(f"hypothesis.checks.{i}.after", refs, windows))
    for name, phase in drill.spec.hypothesis.phases.items():
        refs = [r for r in (phase.start, phase.end) if r is not None]
        problems.extend(_ref_problems(f"hypothesis.phases.{name}", refs, windows))
    return problems


def _ref_problems(where: str, refs: list[TimeRef], windows: Windows) -> list[str]:
    out = []
    for ref in refs:
        if ref.anchor == "faults" and windows.overall[0] is None:
            out.append(f"{where}: {ref}: the chaos scenario has no windowed rule, so no fault window")
            continue
        rule = ref.rule_name()
        if rule is not None and rule not in windows.rules:
            known = ", ".join(windows.rules) or "none"
            out.append(f"{where}: {ref} names no windowed chaos rule (windowed rules: {known})")
    return out


def parse_drill(data: Any, source: str = "<drill>", base: Path | None = None) -> LoadedDrill:
    """Validate already-parsed drill data; paths in it are relative to ``base``."""
    if not isinstance(data, dict):
        raise DrillError(f"{source}: a drill must be a mapping at the top level, not {type(data).__name__}")
    try:
        spec = DrillSpec.model_validate(data)
    except ValidationError as exc:
        raise _fail(source, [_describe(e) for e in exc.errors()]) from None
    where = base if base is not None else Path.cwd()
    drill = LoadedDrill(spec, source, _scenario(spec, where, source), _router_data(spec, where, source))
    problems = _cross_check(drill)
    if problems:
        raise _fail(source, problems)
    return drill


def load_drill(path: str | Path) -> LoadedDrill:
    """Read and validate a drill file; a :class:`DrillError` says what is wrong and where."""
    p = Path(path)
    data = _read_yaml(p, "drill file", str(p))
    if data is None:
        raise DrillError(f"{p}: the drill file is empty")
    return parse_drill(data, str(p), p.parent)


DRILLS = Path(__file__).resolve().parent.parent / "drills"
"""The folder of drills shipped with turnout."""


def shipped() -> dict[str, Path]:
    """The shipped drills by name (file stem)."""
    return {p.stem: p for p in sorted(DRILLS.glob("*.yaml"))}
