"""Configuration of the patterns: the ``rules``, ``prompts``, ``budgets`` and ``patterns`` sections,
and a route's ``cache`` and ``prompt`` fields. :mod:`router.config` embeds these models, so they
are validated (``extra="forbid"``) and reported like the rest of the file: file, field path, reason.

::

    rules:                        # a model name that picks a route by rules on the request
      smart:
        rules:
          - {name: long-input, when: {input_tokens_over: 8000}, route: long-context}
          - {name: code, when: {has_code: true}, route: coder}
          - {name: vip, when: {metadata: {tier: vip}}, route: premium}
        default: chat
    prompts:                      # versioned prompt templates, one phrasing per deployment
      summarize:
        default: {version: v1, system: "Summarize the text.", template: "{input}"}
        models: {claude: {version: v3, template: "<text>{input}</text> Summarize it."}}
    budgets:
      summaries-daily: {route: summarization, limit_usd: 5, period: day, action: downgrade,
                        downgrade: [mistral-small]}
    patterns:                     # a cascade, ensemble or pipeline exposed as a model name
      careful: {cascade: {tiers: [gpt-mini, claude], checks: [{json: true}]}}
      vote: {ensemble: {members: [gpt, claude, mistral], quorum: 2}}
      research: {pipeline: {stages: [{name: plan, route: fast, template: "Split: {input}"}]}}
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from router.patterns.template import fields as template_fields

__all__ = [
    "BudgetConfig",
    "CacheConfig",
    "CascadeConfig",
    "CheckConfig",
    "EnsembleConfig",
    "JudgeConfig",
    "PatternConfig",
    "PipelineConfig",
    "PromptConfig",
    "PromptVariantConfig",
    "RuleConfig",
    "RuleSetConfig",
    "RuleWhen",
    "StageConfig",
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


def _exactly_one(model: BaseModel, fields: tuple[str, ...], what: str) -> None:
    given = [f for f in fields if getattr(model, f) not in (None, False)]
    if len(given) != 1:
        raise ValueError(f"{what} must set exactly one of {', '.join(fields)} (got {given or 'none'})")


# --- task routing --------------------------------------------------------------------------------


class RuleWhen(_Model):
    """Conditions that must all hold. ``metadata`` keys also arrive as sidecar headers
    ``X-Turnout-Meta-<key>``; ``function`` is ``module:callable`` taking the request, returning bool."""

    task: list[str] | None = None  # metadata "task" is one of these
    input_tokens_over: int | None = Field(default=None, ge=0)
    has_code: bool | None = None  # a fenced code block in the messages
    turns_over: int | None = Field(default=None, ge=0)  # user turns in the conversation
    metadata: dict[str, str] | None = None
    function: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")

    @model_validator(mode="before")
    @classmethod
    def _task_list(cls, data: Any) -> Any:
        if isinstance(data, dict) and isinstance(data.get("task"), str):
            return {**data, "task": [data["task"]]}
        return data

    @model_validator(mode="after")
    def _not_empty(self) -> RuleWhen:
        if not self.model_fields_set:
            raise ValueError("a rule needs at least one condition")
        return self


class RuleConfig(_Model):
    name: str = Field(min_length=1)
    when: RuleWhen
    route: str


class RuleSetConfig(_Model):
    """First rule that fires picks the route; ``default`` when none does."""

    rules: list[RuleConfig] = Field(min_length=1)
    default: str


# --- prompt variants -----------------------------------------------------------------------------


class PromptVariantConfig(_Model):
    """``template`` becomes the last user message; ``{input}`` is the caller's last user message,
    ``{metadata.KEY}`` a metadata field. ``system`` (optional) replaces the system prompt."""

    version: str = Field(min_length=1)
    template: str = "{input}"
    system: str | None = None


class PromptConfig(_Model):
    default: PromptVariantConfig
    models: dict[str, PromptVariantConfig] = Field(default_factory=dict)  # by deployment name


# --- budgets -------------------------------------------------------------------------------------


class BudgetConfig(_Model):
    """A spending limit on a route, on requests whose metadata ``task`` is ``task``, or on the
    requests a caller sends with the API key ``api_key`` (the sidecar's bearer token)."""

    route: str | None = None
    task: str | None = None
    api_key: str | None = Field(default=None, min_length=1)
    limit_usd: float = Field(gt=0)
    period: Literal["hour", "day", "month"] = "day"
    action: Literal["downgrade", "refuse"] = "refuse"
    downgrade: list[str] = Field(default_factory=list)  # the cheaper chain used once the limit is hit

    @model_validator(mode="after")
    def _consistent(self) -> BudgetConfig:
        _exactly_one(self, ("route", "task", "api_key"), "a budget")
        if self.action == "downgrade" and not self.downgrade:
            raise ValueError("action downgrade needs a `downgrade` list of cheaper models")
        if self.action == "refuse" and self.downgrade:
            raise ValueError("a `downgrade` list needs action: downgrade")
        return self


# --- prompt caching ------------------------------------------------------------------------------


class CacheConfig(_Model):
    """Per route: cache markers on long shared prefixes, and stickiness to the cache's provider."""

    sticky: bool = False  # keep a conversation on the deployment that holds its cache, while healthy
    markers: Literal["auto", "off"] = "off"  # mark long prefixes for providers that need it (Anthropic)
    min_prefix_tokens: int = Field(default=1024, ge=0)  # shorter prefixes are not worth marking
    conversation_key: str = "conversation"  # the metadata field naming the conversation


# --- cascade, ensemble, pipeline -----------------------------------------------------------------


class JudgeConfig(_Model):
    route: str
    min_score: float = Field(default=7.0, ge=0, le=10)  # the judge scores 0-10


class CheckConfig(_Model):
    """One confidence check of a cascade tier; set exactly one field."""

    json_valid: bool = Field(default=False, alias="json")
    pydantic: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")  # module:Model
    min_length: int | None = Field(default=None, ge=0)
    max_length: int | None = Field(default=None, ge=0)
    confidence: float | None = Field(default=None, ge=0, le=1)  # self-reported, at least this
    judge: JudgeConfig | None = None
    function: str | None = Field(default=None, pattern=r"^[\w.]+:[\w.]+$")  # (request, response) -> score
    threshold: float = 0.5  # a `function` score below this escalates

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)

    @model_validator(mode="after")
    def _one(self) -> CheckConfig:
        fields = ("json_valid", "pydantic", "min_length", "max_length", "confidence", "judge", "function")
        given = [f for f in fields if getattr(self, f) not in (None, False)]
        if len(given) != 1:
            raise ValueError(
                "a check must set exactly one of json, pydantic, min_length, max_length, confidence, "
                f"judge, function (got {len(given)})"
            )
        return self


class CascadeConfig(_Model):
    tiers: list[str] = Field(min_length=2)  # cheap to capable
    checks: list[CheckConfig] = Field(min_length=1)


class EnsembleConfig(_Model):
    members: list[str] = Field(min_length=2)
    mode: Literal["vote", "judge"] = "vote"
    quorum: int | None = Field(default=None, ge=1)  # answers needed; default: a majority of members
    labels: list[str] | None = None  # vote: the allowed labels (answers are normalized to them)
    judge: str | None = None  # judge mode: the route that picks the best answer

    @model_validator(mode="after")
    def _consistent(self) -> EnsembleConfig:
        if self.quorum is not None and self.quorum > len(self.members):
            raise ValueError(f"quorum {self.quorum} is more than the {len(self.members)} members")
        if self.mode == "judge" and self.judge is None:
            raise ValueError("mode judge needs a `judge` route")
        return self


class StageConfig(_Model):
    """A pipeline stage: one call, a fan-out over another stage's lines (``foreach``), or a group
    of stages run in parallel (``parallel``). Templates see ``{input}``, ``{stages.NAME}`` and,
    under ``foreach``, ``{item}``."""

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_-]+$")
    route: str | None = None
    template: str = "{input}"
    system: str | None = None
    fallback: list[str] = Field(default_factory=list)  # tried in order when `route` fails
    max_tokens: int | None = Field(default=None, gt=0)
    foreach: str | None = None  # an earlier stage whose output lines fan out, one call each
    max_items: int = Field(default=8, ge=1)
    parallel: list[StageConfig] | None = None

    @model_validator(mode="after")
    def _shape(self) -> StageConfig:
        if self.parallel is not None:
            if self.route is not None or self.foreach is not None:
                raise ValueError("a parallel stage holds stages; it takes no route or foreach itself")
            if not self.parallel:
                raise ValueError("parallel needs at least one stage")
        elif self.route is None:
            raise ValueError("a stage needs a route (or a parallel list of stages)")
        return self


class PipelineConfig(_Model):
    stages: list[StageConfig] = Field(min_length=1)


class PatternConfig(_Model):
    """A named pattern: set exactly one of ``cascade``, ``ensemble``, ``pipeline``."""

    cascade: CascadeConfig | None = None
    ensemble: EnsembleConfig | None = None
    pipeline: PipelineConfig | None = None

    @model_validator(mode="after")
    def _one(self) -> PatternConfig:
        _exactly_one(self, ("cascade", "ensemble", "pipeline"), "a pattern")
        return self


# --- cross-checks --------------------------------------------------------------------------------


def _stage_checks(
    stages: list[StageConfig], path: str, callable_names: set[str], seen: list[str]
) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for i, stage in enumerate(stages):
        here = f"{path}[{i}]"
        if stage.name in seen:
            problems.append((f"{here}.name", f"stage name {stage.name!r} is used twice"))
        if stage.foreach is not None and stage.foreach not in seen:
            problems.append((f"{here}.foreach", f"{stage.foreach!r} is not an earlier stage"))
        for field, names in (("route", [stage.route] if stage.route else []), ("fallback", stage.fallback)):
            for j, name in enumerate(names):
                if name not in callable_names:
                    where = f"{here}.{field}" + (f"[{j}]" if field == "fallback" else "")
                    problems.append((where, f"unknown route or model {name!r}"))
        known = {"input", *(f"stages.{s}" for s in seen), *(("item",) if stage.foreach else ())}
        for what in ("template", "system"):
            text = getattr(stage, what)
            for name in sorted(template_fields(text or "") - known):
                problems.append(
                    (f"{here}.{what}", f"{{{name}}} has no value here (known: {', '.join(sorted(known))})")
                )
        if stage.parallel is not None:
            problems += _stage_checks(stage.parallel, f"{here}.parallel", callable_names, list(seen))
            seen.extend(s.name for s in stage.parallel)
        seen.append(stage.name)
    return problems


def cross_check(cfg: Any) -> list[tuple[str, str]]:
    """Problems ``(field path, reason)`` in the pattern sections of a ``RouterConfig``."""
    problems: list[tuple[str, str]] = []
    models, routes = set(cfg.models), set(cfg.routes)
    callable_names = models | routes | set(cfg.patterns) | set(cfg.rules)
    for section, names in (("rules", cfg.rules), ("patterns", cfg.patterns)):
        for name in names:
            if name in models or name in routes:
                problems.append((f"{section}.{name}", f"{name!r} is already a route or model name"))
    for name in set(cfg.rules) & set(cfg.patterns):
        problems.append((f"patterns.{name}", f"{name!r} is also a rule set"))
    for rname, rs in cfg.rules.items():
        targets = [(f"rules.{rname}.rules[{i}].route", r.route) for i, r in enumerate(rs.rules)]
        targets.append((f"rules.{rname}.default", rs.default))
        problems += [(p, f"unknown route {t!r}") for p, t in targets if t not in callable_names or t == rname]
    for pname, prompt in cfg.prompts.items():
        problems += [
            (f"prompts.{pname}.models.{m}", "unknown model") for m in prompt.models if m not in models
        ]
    for pname, prompt in cfg.prompts.items():
        variants = [("default", prompt.default), *((f"models.{m}", v) for m, v in prompt.models.items())]
        for where, v in variants:
            for text in (v.template, v.system or ""):
                for name in sorted(template_fields(text)):
                    if name != "input" and not name.startswith("metadata."):
                        problems.append(
                            (f"prompts.{pname}.{where}", f"{{{name}}}: use {{input}} or {{metadata.KEY}}")
                        )
    for rname, route in cfg.routes.items():
        if route.prompt is not None and route.prompt not in cfg.prompts:
            problems.append((f"routes.{rname}.prompt", f"unknown prompt {route.prompt!r}"))
    for bname, budget in cfg.budgets.items():
        if budget.route is not None and budget.route not in routes | models:
            problems.append((f"budgets.{bname}.route", f"unknown route {budget.route!r}"))
        for i, m in enumerate(budget.downgrade):
            if m not in models:
                problems.append((f"budgets.{bname}.downgrade[{i}]", f"unknown model {m!r}"))
    for pname, pattern in cfg.patterns.items():
        base = f"patterns.{pname}"
        refs: list[tuple[str, str]] = []
        if pattern.cascade is not None:
            refs += [(f"{base}.cascade.tiers[{i}]", t) for i, t in enumerate(pattern.cascade.tiers)]
            refs += [
                (f"{base}.cascade.checks[{i}].judge.route", c.judge.route)
                for i, c in enumerate(pattern.cascade.checks)
                if c.judge is not None
            ]
        if pattern.ensemble is not None:
            e = pattern.ensemble
            refs += [(f"{base}.ensemble.members[{i}]", m) for i, m in enumerate(e.members)]
            if e.judge is not None:
                refs.append((f"{base}.ensemble.judge", e.judge))
        problems += [(p, f"unknown route or model {t!r}") for p, t in refs if t not in callable_names]
        problems += [(p, "a pattern cannot call itself") for p, t in refs if t == pname]
        if pattern.pipeline is not None:
            problems += _stage_checks(pattern.pipeline.stages, f"{base}.pipeline.stages", callable_names, [])
    problems += _cycles(cfg)
    return problems


def _stage_calls(stages: list[StageConfig]) -> list[str]:
    calls: list[str] = []
    for stage in stages:
        calls += ([stage.route] if stage.route else []) + stage.fallback
        calls += _stage_calls(stage.parallel or [])
    return calls


def _cycles(cfg: Any) -> list[tuple[str, str]]:
    """Rule sets and patterns that end up calling themselves through others (``p1 -> p2 -> p1``):
    found here, at load, rather than as a RecursionError or a 404 on the first request."""
    calls: dict[str, list[str]] = {}
    for rname, rs in cfg.rules.items():
        calls[f"rules.{rname}"] = [r.route for r in rs.rules] + [rs.default]
    for pname, pattern in cfg.patterns.items():
        callees: list[str] = []
        if pattern.cascade is not None:
            callees += pattern.cascade.tiers
            callees += [c.judge.route for c in pattern.cascade.checks if c.judge is not None]
        if pattern.ensemble is not None:
            callees += pattern.ensemble.members + ([pattern.ensemble.judge] if pattern.ensemble.judge else [])
        if pattern.pipeline is not None:
            callees += _stage_calls(pattern.pipeline.stages)
        calls[f"patterns.{pname}"] = callees
    section = {name: f"rules.{name}" for name in cfg.rules} | {
        name: f"patterns.{name}" for name in cfg.patterns
    }
    problems: list[tuple[str, str]] = []
    reported: set[frozenset[str]] = set()
    for start in calls:
        # Depth-first from each node, iteratively; a path that comes back to ``start`` is a cycle.
        stack: list[tuple[str, list[str]]] = [(start, [start])]
        seen: set[str] = set()
        while stack:
            node, path = stack.pop()
            for callee in calls.get(node, []):
                target = section.get(callee)
                if target is None:
                    continue  # a route or a model: no further calls
                if target == start and len(path) > 1:  # a direct self-call is reported above
                    loop = frozenset(path)
                    if loop not in reported:
                        reported.add(loop)
                        names = " -> ".join(n.split(".", 1)[1] for n in [*path, start])
                        problems.append((start, f"calls itself through others: {names}"))
                elif target not in seen and target != start:
                    seen.add(target)
                    stack.append((target, [*path, target]))
    return problems
