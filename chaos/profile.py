"""Provider profiles: the quotas and the speed of the providers the mock plays, in one file.

A capacity plan depends on what the providers allow each API key (requests and tokens per
minute, requests in flight) and on how fast they answer. A profile says both, per provider or
per ``provider/model``, and compiles to what the mock already has: the scenario's ``limits:``
(:mod:`chaos.limits`) and the mock's latency model (``mock.latency``, see
:mod:`mockproviders.config`)::

    name: one-deployment-3000rpm
    enforce: 1s            # the span over which per-minute limits are enforced (default 1s)
    seed: 1
    providers:
      openai:
        limits: {rpm: 3000, tpm: 2000000, concurrent: 200}
        speed: {ttft: 80ms, tokens_per_second: 400, spread: 0.2}
      mistral/mistral-small-latest:
        limits: {rpm: 1200}
        speed: {ttft: 120ms, tokens_per_second: 250}

``turnout mock --profile FILE`` serves it (with ``--scenario`` too: the scenario's faults, the
profile's limits and speed).

- ``limits`` count per API key and model, as providers count them. A provider entry and a
  ``provider/model`` entry both apply to that model (the stricter one binds).
- ``enforce``: providers enforce a per-minute quota over shorter spans (OpenAI documents that
  60,000 rpm may be enforced as 1,000 requests per second), so a minute's worth cannot be spent
  in one burst. ``rpm: 3000`` with ``enforce: 1s`` is a bucket of 50 requests refilled at 50 a
  second; ``enforce: 60s`` allows the whole minute's burst.
- ``speed``: seconds to the first token, tokens per second after it, and ``spread``, the
  fraction each delay varies by (seeded). For the most specific entry wins, as in the mock.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chaos.limits import Limit
from chaos.scenario import Scenario
from chaos.targeting import Match
from mockproviders.config import DEFAULT_MODELS, Latency, MockConfig
from turnout.durations import Duration

__all__ = ["DeploymentProfile", "Profile", "ProfileError", "apply_profile", "load_profile"]


class ProfileError(ValueError):
    """A profile that cannot be read or does not validate; the message says where and why."""


class Quota(BaseModel):
    """Per API key and model: requests and tokens per minute, requests in flight."""

    model_config = ConfigDict(extra="forbid")
    rpm: int | None = Field(default=None, ge=1)
    tpm: int | None = Field(default=None, ge=1)
    concurrent: int | None = Field(default=None, ge=1)


class Speed(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ttft: Duration = 0.0
    tokens_per_second: float = Field(default=0.0, ge=0)
    spread: float = Field(default=0.0, ge=0, le=1)


class DeploymentProfile(BaseModel):
    model_config = ConfigDict(extra="forbid")
    limits: Quota | None = None
    speed: Speed | None = None


class Profile(BaseModel):
    """A whole profile file."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    seed: int = 0
    enforce: Duration = Field(default=1.0, gt=0, le=60)
    providers: dict[str, DeploymentProfile] = Field(default_factory=dict)

    @field_validator("providers")
    @classmethod
    def _keys(cls, providers: dict[str, DeploymentProfile]) -> dict[str, DeploymentProfile]:
        for key in providers:
            provider, _, model = key.partition("/")
            if provider not in DEFAULT_MODELS or (_ and not model):
                known = ", ".join(DEFAULT_MODELS)
                raise ValueError(f"{key!r} must be a provider ({known}) or 'provider/model'")
        return providers

    def limits(self) -> list[Limit]:
        """The scenario ``limits:`` this profile sets (per-minute quotas enforced over ``enforce``)."""
        out = []
        for key, entry in self.providers.items():
            quota = entry.limits
            if quota is None or (quota.rpm is None and quota.tpm is None and quota.concurrent is None):
                continue
            provider, _, model = key.partition("/")
            scale = self.enforce / 60.0
            out.append(
                Limit(
                    name=f"profile:{key}",
                    match=Match(provider=[provider], model=[model] if model else None),  # type: ignore[list-item]
                    rpm=None if quota.rpm is None else max(1, round(quota.rpm * scale)),
                    tpm=None if quota.tpm is None else max(1, round(quota.tpm * scale)),
                    concurrent=quota.concurrent,
                    window=self.enforce,
                )
            )
        return out

    def latency(self) -> dict[str, Latency]:
        """The mock's ``latency:`` entries this profile sets."""
        return {
            key: Latency(
                ttft=e.speed.ttft, tokens_per_second=e.speed.tokens_per_second, jitter=e.speed.spread
            )
            for key, e in self.providers.items()
            if e.speed is not None
        }


def apply_profile(profile: Profile, scenario: Scenario | None = None) -> Scenario:
    """A scenario with the profile's limits and speed added (a new scenario from it if None).

    The scenario keeps its faults and its own limits; a latency entry it already has for a key
    wins over the profile's.
    """
    base = scenario or Scenario(name=profile.name, description=profile.description, seed=profile.seed)
    mock = base.mock or MockConfig()
    latency = {**profile.latency(), **mock.latency}
    return base.model_copy(
        update={
            "mock": mock.model_copy(update={"latency": latency}),
            "limits": [*base.limits, *profile.limits()],
        }
    )


def _describe(err: Any) -> str:
    path = ".".join(str(p) for p in err["loc"]) or "(top level)"
    if err["type"] == "extra_forbidden":
        return f"{path}: unknown field (not allowed here)"
    return f"{path}: {str(err['msg']).removeprefix('Value error, ')}"


def load_profile(path: str | Path) -> Profile:
    """Read and validate a profile file; a :class:`ProfileError` names the file and each bad field."""
    p = Path(path)
    try:
        data = yaml.safe_load(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise ProfileError(f"{p}: cannot read the profile: {exc.strerror or exc}") from None
    except yaml.YAMLError as exc:
        raise ProfileError(f"{p}: not valid YAML: {exc}") from None
    if not isinstance(data, dict):
        raise ProfileError(f"{p}: a profile must be a mapping at the top level")
    try:
        return Profile.model_validate(data)
    except ValidationError as exc:
        raise ProfileError(
            f"{p}: invalid profile: " + "; ".join(_describe(e) for e in exc.errors())
        ) from None
