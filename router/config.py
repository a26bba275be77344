"""The router's configuration: pydantic models, YAML loading with ``${ENV}`` substitution, clear errors.

::

    providers:
      openai: {kind: openai, base_url: http://127.0.0.1:8100/openai/v1, api_key: ${OPENAI_API_KEY}}
    models:
      gpt-4o-mini: {provider: openai, model: gpt-4o-mini, rpm: 500, tpm: 200000}
    routes:
      summarization:
        chain: [claude-sonnet, gpt-4o-mini]
        on_error: {context_length: [gpt-4.1], content_policy: []}
        hedge: {after: 2s}
    defaults:
      retries: 2
      timeouts: {total: 60s, connect: 3s, read: 30s, first_token: 10s, idle: 15s}
      breaker: {failures: 10, failure_rate: 0.5, min_calls: 20, window: 10s, cooldown: 2s, max_cooldown: 4s}
    state: {backend: redis, url: redis://127.0.0.1:6379/0, prefix: turnout, timeout: 50ms}

Validation is strict (``extra="forbid"``), and every error names the file, the dotted path of the
field and the reason. The models are used once, to build the engine: nothing on the request path
touches pydantic.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from router.adapters import PROVIDERS
from router.patterns.config import (
    BudgetConfig,
    CacheConfig,
    PatternConfig,
    PromptConfig,
    RuleSetConfig,
)
from router.patterns.config import cross_check as _patterns_cross_check
from turnout.durations import Duration  # seconds; accepts "60s", "200ms", 1.5
from turnout.problems import describe
from turnout.yamlfile import YAMLFileError, read_yaml, substitute_env

__all__ = [
    "BreakerConfig",
    "ConfigError",
    "Defaults",
    "DeploymentConfig",
    "HedgeConfig",
    "OnErrorConfig",
    "PricesConfig",
    "ProviderConfig",
    "RouteConfig",
    "RouterConfig",
    "StateConfig",
    "TimeoutsConfig",
    "load_config",
    "load_yaml",
    "parse_config",
]


class ConfigError(Exception):
    """A configuration that cannot be used; the message names the file, the field and the reason."""


if TYPE_CHECKING:
    ProviderKind = str
else:  # the registry's kinds, so a bad one is told the choices ("'bard' is not one of 'openai', ...")
    ProviderKind = Literal[tuple(PROVIDERS)]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class TimeoutsConfig(_Model):
    """Seconds; unset fields inherit (defaults < provider < route)."""

    total: Duration | None = None  # the whole request, retries and fallbacks included
    connect: Duration | None = None
    read: Duration | None = None  # a non-streamed answer, headers and body
    first_token: Duration | None = None  # a streamed answer's first content
    idle: Duration | None = None  # silence between streamed events once content has begun

    def over(self, base: TimeoutsConfig) -> TimeoutsConfig:
        """``base`` with this object's explicitly set fields on top."""
        return base.model_copy(update={k: getattr(self, k) for k in self.model_fields_set})


class BreakerConfig(_Model):
    """A deployment's health model (router.breaker): when it is ejected, and for how long.

    Only the provider's failures count (5xx, 529, timeouts, connection failures, malformed
    replies), never a caller's mistake. Ejected on a run of ``failures`` consecutive failures, on
    a run of 4 or more that lasted ``failing_for`` with no success, or on a failure rate of at
    least ``failure_rate`` over ``window`` once it holds ``min_calls`` calls. Out for
    ``cooldown``, then one probe; a failed probe multiplies the time by ``backoff`` up to
    ``max_cooldown``, so recovery takes at most ``max_cooldown`` plus a probe.
    """

    failures: int = Field(default=10, ge=1)  # consecutive failures that eject at once
    failing_for: Duration = 0.5  # a run of >= 4 failures with no success for this long ejects
    failure_rate: float = Field(default=0.5, gt=0, le=1)  # share of calls failed in `window`...
    # ...and of streams cut, stalled or corrupted after output began, for the stream health
    # (lower: a caller cannot be given a cut stream's rest, so streams move away sooner)
    stream_failure_rate: float = Field(default=0.1, gt=0, le=1)
    min_calls: int = Field(default=20, ge=1)  # ...once the window holds this many calls
    window: Duration = 10.0
    cooldown: Duration = 2.0  # first ejection; grows after each failed probe...
    max_cooldown: Duration = 4.0  # ...up to this (or `cooldown`, if longer): the bound on recovery
    backoff: float = Field(default=2.0, ge=1)
    hold_after_429s: int = Field(default=3, ge=1)  # 429s in a row that hold the whole deployment

    @model_validator(mode="after")
    def _cooldowns(self) -> BreakerConfig:
        if self.window <= 0:
            raise ValueError("window must be more than 0 s")
        return self


class HedgeConfig(_Model):
    after: Duration  # no first token (or no answer) by then: start the next model too


class OnErrorConfig(_Model):
    """Fallback chains chosen by error kind; they replace the rest of the route's chain."""

    context_length: list[str] | None = None  # e.g. larger-context models
    content_policy: list[str] | None = None  # unset: a refusal is final and reaches the caller


class PricesConfig(_Model):
    """USD per million tokens; overrides genai-prices for this deployment."""

    input: float = Field(ge=0)
    output: float = Field(ge=0)
    cached: float | None = Field(default=None, ge=0)  # cache reads; default: the input price
    cache_write: float | None = Field(default=None, ge=0)  # cache writes; default: the input price


class ProviderConfig(_Model):
    kind: ProviderKind
    base_url: str = Field(min_length=1)
    api_key: str | None = None
    headers: dict[str, str] = Field(default_factory=dict)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    connections: int = Field(default=256, ge=1)  # the connection pool of this provider's one session
    # The largest answer body read from this provider, decompressed; a larger one is a malformed
    # reply (the route falls back), never unbounded memory. 64 MiB by default.
    max_reply_bytes: int = Field(default=64 << 20, ge=1024)


class DeploymentConfig(_Model):
    provider: str
    model: str  # the model id sent upstream
    rpm: int | None = Field(default=None, gt=0)
    tpm: int | None = Field(default=None, gt=0)
    max_tokens: int | None = Field(default=None, gt=0)
    context_window: int | None = Field(default=None, gt=0)
    prices: PricesConfig | None = None
    # What it serves: "embeddings" for an embedding model, "chat" otherwise; unset, it is read
    # from the model id ("embed" in it: embeddings). A request it cannot serve never reaches it.
    task: Literal["chat", "embeddings"] | None = None
    dimensions: int | None = Field(default=None, gt=0)  # an embedding model's vector size
    tools: bool = True  # takes tool definitions (function calling)
    # Can it continue a cut stream from an assistant prefill (router/_continuation.py)? Unset:
    # by the provider's kind (Provider.continues: anthropic, mistral yes; openai, openai_compatible
    # no). True on an openai_compatible server that accepts vLLM's `continue_final_message`; never
    # on a kind that cannot (Provider.may_continue: openai).
    continuation: bool | None = None

    @property
    def serves(self) -> Literal["chat", "embeddings"]:
        if self.task is not None:
            return self.task
        return "embeddings" if "embed" in self.model.lower() else "chat"


class RouteConfig(_Model):
    chain: list[str] = Field(min_length=1)
    on_error: OnErrorConfig = Field(default_factory=OnErrorConfig)
    hedge: HedgeConfig | None = None
    buffer_stream: bool = False  # collect a stream whole, so a mid-stream failure can still fail over
    retries: int | None = Field(default=None, ge=0)
    timeouts: TimeoutsConfig = Field(default_factory=TimeoutsConfig)
    cache: CacheConfig | None = None  # prompt-cache markers and stickiness (router.caching)
    prompt: str | None = None  # a `prompts:` entry: per-deployment prompt variants (router.prompts)


def _default_timeouts() -> TimeoutsConfig:
    return TimeoutsConfig(total=60.0, connect=3.0, read=30.0, first_token=10.0, idle=15.0)


class Defaults(_Model):
    """Route-wide defaults.

    ``rate_limit_wait``: when every deployment of a chain is closed only for a known time (a
    local rate limit, a provider's retry-after or "0 remaining", a breaker's cooldown), the
    request waits for the one that opens soonest if that is within this many seconds in all,
    and before its deadline, then tries it; otherwise it fails at once with ``Unavailable`` and
    a ``retry_after`` saying when. ``0`` fails fast. The default, 5 s, covers what providers
    usually ask after a 429 (1-2 s; a per-minute bucket refills a request every 60/rpm s) and
    a drill-sized breaker cooldown, so one 429 does not fail a route's traffic outright; it is
    short against the default 60 s budget, so a route that stays down answers its callers
    quickly, and a closed loop of clients is held seconds, not minutes. A deployment that is
    closed while another one of the chain is open is never waited for: the request falls back.
    """

    retries: int = Field(default=2, ge=0)  # per model, before falling back
    retry_timeouts: bool = False  # a silent model is failed over, not retried
    retry_after_cap: Duration = 60.0  # a longer retry-after falls back instead of waiting
    backoff_base: Duration = 0.5
    backoff_max: Duration = 8.0
    rate_limit_wait: Duration = Field(default=5.0, ge=0)  # for a chain that is all closed; 0: fail fast
    timeouts: TimeoutsConfig = Field(default_factory=_default_timeouts)
    breaker: BreakerConfig = BreakerConfig()

    @model_validator(mode="after")
    def _backoff(self) -> Defaults:
        if self.backoff_base > self.backoff_max:
            raise ValueError("backoff_base must not exceed backoff_max")
        return self


class StateConfig(_Model):
    """Where replicas share limits, breakers and budgets (router.state): in-process, or Redis."""

    # "host": set by `turnout serve --workers N` for its workers (the supervisor's socket, in url)
    backend: Literal["memory", "redis", "host"] = "memory"
    url: str = "redis://127.0.0.1:6379/0"
    prefix: str = Field(default="turnout", min_length=1)  # every key starts with "<prefix>:"
    timeout: Duration = Field(default=0.05, gt=0)  # per call; slower means down: local state
    # Busy deployments admit from a leased slice of the shared buckets, renewed each period: a
    # peer's ejection or hold reaches this replica within one period. 0: every admission a call.
    lease: Duration = Field(default=0.25, ge=0, le=5)

    @model_validator(mode="after")
    def _check(self) -> StateConfig:
        if not self.url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError(f"url must start with redis://, rediss:// or unix://, not {self.url!r}")
        if any(c in self.prefix for c in "{} \t\n"):
            raise ValueError(f"prefix must not contain braces or spaces, not {self.prefix!r}")
        return self


class RouterConfig(_Model):
    providers: dict[str, ProviderConfig]
    models: dict[str, DeploymentConfig]
    routes: dict[str, RouteConfig] = Field(default_factory=dict)
    defaults: Defaults = Defaults()
    state: StateConfig = StateConfig()
    # The patterns (router.patterns): model names that pick a route by rules, prompt variants,
    # spending limits, and named cascades, ensembles and pipelines.
    rules: dict[str, RuleSetConfig] = Field(default_factory=dict)
    prompts: dict[str, PromptConfig] = Field(default_factory=dict)
    budgets: dict[str, BudgetConfig] = Field(default_factory=dict)
    patterns: dict[str, PatternConfig] = Field(default_factory=dict)

    def timeouts_for(self, route: RouteConfig | None) -> TimeoutsConfig:
        """The defaults' timeouts with the route's on top."""
        base = self.defaults.timeouts.over(_default_timeouts())
        return route.timeouts.over(base) if route is not None else base


# --- cross-checks and loading --------------------------------------------------------------------


def _cross_check(cfg: RouterConfig) -> list[tuple[str, str]]:
    problems: list[tuple[str, str]] = []
    for name, dep in cfg.models.items():
        if dep.provider not in cfg.providers:
            known = ", ".join(sorted(cfg.providers)) or "none"
            problems.append(
                (f"models.{name}.provider", f"unknown provider {dep.provider!r} (defined: {known})")
            )
        elif dep.continuation and not PROVIDERS[pkind := cfg.providers[dep.provider].kind].may_continue:
            can = ", ".join(k for k, p in PROVIDERS.items() if p.may_continue)
            problems.append(
                (
                    f"models.{name}.continuation",
                    f"{pkind}'s API does not continue a trailing assistant message (it answers afresh); "
                    f"continuation: true is for kinds that can ({can})",
                )
            )
    known_models = ", ".join(sorted(cfg.models)) or "none"
    for rname, route in cfg.routes.items():
        lists = [("chain", route.chain)]
        for kind in ("context_length", "content_policy"):
            members = getattr(route.on_error, kind)
            if members:
                lists.append((f"on_error.{kind}", members))
        for field, members in lists:
            for i, member in enumerate(members):
                if member not in cfg.models:
                    problems.append(
                        (
                            f"routes.{rname}.{field}[{i}]",
                            f"route {rname!r} names unknown model {member!r} (defined: {known_models})",
                        )
                    )
    problems += _capability_check(cfg)
    problems += _patterns_cross_check(cfg)
    return problems


def _capability_check(cfg: RouterConfig) -> list[tuple[str, str]]:
    """Embedding deployments on a provider that has them; routes that serve one task, and
    embeddings from one model and dimension (vectors of two models never mix in one route)."""
    problems: list[tuple[str, str]] = []
    for name, dep in cfg.models.items():
        provider = cfg.providers.get(dep.provider)
        if (
            dep.serves == "embeddings"
            and provider is not None
            and PROVIDERS[provider.kind].codec.embeddings_path is None
        ):
            problems.append((f"models.{name}.task", f"{provider.kind} has no embeddings API"))
    for rname, route in cfg.routes.items():
        deps = [(m, cfg.models[m]) for m in route.chain if m in cfg.models]
        tasks = {d.serves for _, d in deps}
        if len(tasks) > 1:
            chat = [m for m, d in deps if d.serves == "chat"]
            emb = [m for m, d in deps if d.serves == "embeddings"]
            problems.append(
                (
                    f"routes.{rname}.chain",
                    f"mixes chat deployments {chat} and embedding deployments {emb}; "
                    "a route serves one task (set `task:` on a deployment whose model id misleads)",
                )
            )
        elif tasks == {"embeddings"}:
            kinds = {(d.model, d.dimensions) for _, d in deps}
            if len(kinds) > 1:
                shown = ", ".join(
                    f"{m}: {d.model}" + (f" ({d.dimensions} dims)" if d.dimensions else "") for m, d in deps
                )
                problems.append(
                    (
                        f"routes.{rname}.chain",
                        "an embeddings route falls back only between deployments of one embedding "
                        f"model and dimension, so vectors never mix; this one has {shown}",
                    )
                )
    return problems


def _loc(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "<root>"


def parse_config(data: dict[str, Any], *, source: str = "<config>") -> RouterConfig:
    """Validate ``data``; raise :class:`ConfigError` listing each problem as ``source: path: reason``."""
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the configuration must be a mapping, not {type(data).__name__}")
    try:
        cfg = RouterConfig.model_validate(data)
    except ValidationError as exc:
        lines = [f"{source}: {describe(err, RouterConfig)}" for err in exc.errors()]
        raise ConfigError("\n".join(lines)) from None
    problems = _cross_check(cfg)
    if problems:
        raise ConfigError("\n".join(f"{source}: {path}: {why}" for path, why in problems))
    return cfg


def load_yaml(path: str | os.PathLike[str], unset: list[str] | None = None) -> dict[str, Any]:
    """Read a YAML mapping and substitute ``${VAR}`` and ``${VAR:-default}`` in its strings.

    A ``${VAR}`` that is not set is an error, unless ``unset`` is a list: then it is appended there
    (as ``VAR (field)``) and the value reads as :func:`turnout.yamlfile.unset_placeholder`."""
    source = str(path)
    try:
        data = read_yaml(path)
        if data is None:
            data = {}
        if not isinstance(data, dict):
            raise ConfigError(f"{source}: the configuration must be a mapping, not {type(data).__name__}")
        result: dict[str, Any] = substitute_env(data, source=source, unset=unset)
    except YAMLFileError as exc:
        raise ConfigError(str(exc)) from None
    return result


# Top-level sections of the same file that belong to `turnout serve` (router.sidecar.settings
# validates them there). One file serves both the sidecar and the library, so the library skips
# them; any other unknown section is still an error.
SIDECAR_SECTIONS = ("server", "audit", "alerts")


def load_config(path: str | os.PathLike[str]) -> RouterConfig:
    """:func:`load_yaml` then :func:`parse_config`, leaving out the sidecar's own sections."""
    data = {k: v for k, v in load_yaml(path).items() if k not in SIDECAR_SECTIONS}
    return parse_config(data, source=str(path))
