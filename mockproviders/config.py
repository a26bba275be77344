"""The mock's configuration file (YAML), validated by pydantic.

Example::

    models:                     # known model ids per provider (replaces the defaults when given)
      openai: [gpt-4o-mini, text-embedding-3-small]
    api_keys:                   # accepted keys per provider; absent or empty = any non-empty key
      openai: [sk-test]
    rate_limits:                # per API key, fixed window
      openai: {requests: 500, tokens: 200000, window: 60}
    latency:                    # "provider" or "provider/model"; the most specific entry wins
      anthropic: {ttft: 0.4, tokens_per_second: 80, jitter: 0.1}
    rules:                      # first match wins; "default" answers when none matches
      - match: {provider: openai, contains: weather}
        answer: {tool_calls: [{name: get_weather, arguments: {city: Paris}}]}
      - match: {last_message: "say no"}
        answer: {refusal: "I can't help with that."}
    default: {text: "Hello from the mock."}
    batch: {validating: 1s, per_item: 10ms, finalizing: 1s}   # see mockproviders.batch.config
    prompt_caching: {min_tokens: {default: 0}}   # cache short test prompts too (Anthropic: 1024+)
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from mockproviders._validators import check_regex
from mockproviders.batch.config import BatchConfig
from turnout.problems import describe

ProviderName = Literal["openai", "anthropic", "mistral"]

DEFAULT_MODELS: dict[str, tuple[str, ...]] = {
    "openai": (
        "gpt-4o",
        "gpt-4o-mini",
        "gpt-4.1",
        "gpt-4.1-mini",
        "gpt-4.1-nano",
        "gpt-5",
        "gpt-5-mini",
        "o3",
        "o4-mini",
        "text-embedding-3-small",
        "text-embedding-3-large",
        "text-embedding-ada-002",
    ),
    "anthropic": (
        "claude-opus-5",
        "claude-sonnet-5",
        "claude-opus-4-8",
        "claude-opus-4-7",
        "claude-sonnet-4-6",
        "claude-haiku-4-5",
        "claude-haiku-4-5-20251001",
        "claude-sonnet-4-5",
        "claude-sonnet-4-5-20250929",
    ),
    "mistral": (
        "mistral-small-latest",
        "mistral-medium-latest",
        "mistral-large-latest",
        "open-mistral-nemo",
        "ministral-8b-latest",
        "codestral-latest",
        "mistral-embed",
    ),
}

DEFAULT_EMBEDDING_DIMENSIONS: dict[str, int] = {
    "text-embedding-3-small": 1536,
    "text-embedding-3-large": 3072,
    "text-embedding-ada-002": 1536,
    "mistral-embed": 1024,
}
# Embedding models whose vectors have one size only: OpenAI refuses ``dimensions`` for them.
FIXED_DIMENSIONS = frozenset({"text-embedding-ada-002"})


class ConfigError(ValueError):
    """A configuration file that cannot be read or does not validate; names the file and field."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ScriptedToolCall(_Strict):
    """One tool call of a scripted answer; ``arguments`` as an object or as raw JSON text."""

    name: str
    arguments: dict[str, Any] | str = Field(default_factory=dict)


class ScriptedAnswer(_Strict):
    """A fixed answer. ``finish_reason`` is neutral (stop, length, tool_calls, content_filter)
    or a provider's own value, passed through as is."""

    text: str | None = None
    tool_calls: tuple[ScriptedToolCall, ...] = ()
    refusal: str | None = None
    finish_reason: str | None = None


class Match(_Strict):
    """Conditions that must all hold; ``last_message`` is the text of the last message."""

    provider: ProviderName | None = None
    model: str | None = None
    last_message: str | None = None
    contains: str | None = None
    pattern: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return check_regex(value)


class Rule(_Strict):
    match: Match = Field(default_factory=Match)
    answer: ScriptedAnswer


class Latency(_Strict):
    """Seconds to the first token, tokens per second after it (0 = instant), and a jitter
    fraction: each delay is multiplied by a seeded factor in [1 - jitter, 1 + jitter]."""

    ttft: float = Field(default=0.0, ge=0)
    tokens_per_second: float = Field(default=0.0, ge=0)
    jitter: float = Field(default=0.0, ge=0, le=1)


class RateLimit(_Strict):
    """Requests and tokens allowed per API key in each window of ``window`` seconds."""

    requests: int = Field(default=1_000_000, ge=1)
    tokens: int = Field(default=1_000_000_000, ge=1)
    window: float = Field(default=60.0, gt=0)


# Anthropic's minimum cacheable prompt length by model family (its prompt-caching docs); the first
# prefix that matches a model id wins. Ids not listed: 1024 for Sonnet/Opus, 2048 for Haiku.
CACHE_MIN_TOKENS: tuple[tuple[str, int], ...] = (
    ("claude-opus-4-5", 4096),
    ("claude-opus-4-6", 4096),
    ("claude-haiku-4-5", 4096),
    ("claude-sonnet-4-6", 2048),
    ("claude-3-5-haiku", 2048),
    ("claude-3-haiku", 2048),
    ("claude-sonnet-4-5", 1024),
    ("claude-opus-4-1", 1024),
    ("claude-opus-4", 1024),
    ("claude-sonnet-4", 1024),
    ("claude-3-7-sonnet", 1024),
)


class PromptCaching(_Strict):
    """Anthropic prompt caching: the minimum cacheable prefix in tokens, per model id or
    ``default``; models not named get Anthropic's own minimums (``CACHE_MIN_TOKENS``). Tests with
    small prompts set ``{default: 0}``."""

    min_tokens: dict[str, int] = Field(default_factory=dict)

    @field_validator("min_tokens")
    @classmethod
    def _not_negative(cls, value: dict[str, int]) -> dict[str, int]:
        for model, n in value.items():
            if n < 0:
                raise ValueError(f"min_tokens of {model!r} must be 0 or more, not {n}")
        return value


class MockConfig(_Strict):
    """Everything the mock can be told; all fields optional."""

    seed: int | None = None
    models: dict[ProviderName, tuple[str, ...]] = Field(default_factory=dict)
    embedding_dimensions: dict[str, int] = Field(default_factory=dict)
    api_keys: dict[ProviderName, tuple[str, ...]] = Field(default_factory=dict)
    rate_limits: dict[ProviderName, RateLimit] = Field(default_factory=dict)
    latency: dict[str, Latency] = Field(default_factory=dict)
    rules: tuple[Rule, ...] = ()
    default: ScriptedAnswer | None = None
    journal_size: int = Field(default=10_000, ge=1)
    batch: BatchConfig = Field(default_factory=BatchConfig)  # batch phase durations, failures
    prompt_caching: PromptCaching = Field(default_factory=PromptCaching)

    @model_validator(mode="after")
    def _latency_keys(self) -> MockConfig:
        for key in self.latency:
            provider = key.split("/", 1)[0]
            if provider not in DEFAULT_MODELS and key != "default":
                raise ValueError(f"latency key {key!r} must be 'default', a provider, or 'provider/model'")
        return self

    def known_models(self, provider: str) -> frozenset[str]:
        return frozenset(self.models.get(provider, DEFAULT_MODELS[provider]))  # type: ignore[call-overload]

    def dimensions(self, model: str) -> int:
        return self.embedding_dimensions.get(model) or DEFAULT_EMBEDDING_DIMENSIONS.get(model, 1024)

    def cache_min_tokens(self, model: str) -> int:
        """The shortest prefix Anthropic caches for ``model`` (see :class:`PromptCaching`)."""
        own = self.prompt_caching.min_tokens
        if model in own:
            return own[model]
        if "default" in own:
            return own["default"]
        for prefix, n in CACHE_MIN_TOKENS:
            if model.startswith(prefix):
                return n
        return 2048 if "haiku" in model else 1024

    def is_embedding_model(self, model: str) -> bool:
        """Whether ``model`` answers on the embeddings endpoint: a known embedding model, one
        given ``embedding_dimensions``, or any id with ``embed`` in it (as real ids have)."""
        return model in self.embedding_dimensions or model in DEFAULT_EMBEDDING_DIMENSIONS or "embed" in model

    def latency_for(self, provider: str, model: str | None) -> Latency | None:
        return (
            self.latency.get(f"{provider}/{model}")
            or self.latency.get(provider)
            or self.latency.get("default")
        )


def _format_errors(exc: ValidationError, source: str) -> str:
    lines = [f"{source}: invalid mock configuration"]
    lines += [f"  {describe(err, MockConfig)}" for err in exc.errors()]
    return "\n".join(lines)


def parse_config(data: Any, source: str = "<config>") -> MockConfig:
    """Validate already-parsed data; errors name ``source`` and each field path."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ConfigError(f"{source}: the top level must be a mapping, not {type(data).__name__}")
    try:
        return MockConfig.model_validate(data)
    except ValidationError as exc:
        raise ConfigError(_format_errors(exc, source)) from None


def load_config(path: str | Path) -> MockConfig:
    """Read and validate a YAML configuration file."""
    from turnout.yamlfile import YAMLFileError, read_yaml

    p = Path(path)
    try:
        data = read_yaml(p, what="the configuration file")
    except YAMLFileError as exc:
        raise ConfigError(str(exc)) from None
    return parse_config(data, str(p))
