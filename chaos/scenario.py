"""Scenario files: the mock's answer rules, the fault rules, the real rate limits and the seed.

Example (``chaos/scenarios/`` ships a library of these)::

    name: flapping-primary
    description: OpenAI fails 3 requests, passes 1, for the first minute.
    seed: 7
    mock:                      # the mock's own configuration (see mockproviders.config)
      default: {text: "Hello from the mock."}
    rules:                     # fault rules, first to fire wins (see chaos.rules)
      - name: flap
        fault: server_error
        params: {status: 503}
        match: {provider: openai}
        when: {sequence: "fail 3, pass 1", window: {end: 60s}}
    limits:                    # real rate limits (see chaos.limits)
      - {match: {provider: anthropic}, rpm: 50, tpm: 40000}

A file that does not validate is rejected whole with a :class:`ScenarioError` whose message
names the file, each bad field's dotted path, and what was expected there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from chaos.limits import Limit
from chaos.rules import Rule
from mockproviders.config import MockConfig
from turnout.problems import describe, yaml_problem


class ScenarioError(ValueError):
    """A scenario that cannot be read or does not validate; the message says where and why."""


class Scenario(BaseModel):
    """A whole scenario. Rule names must be unique (they key the journal and the counters)."""

    model_config = ConfigDict(extra="forbid")
    name: str | None = None
    description: str | None = None
    seed: int = 0
    mock: MockConfig | None = None
    rules: list[Rule] = Field(default_factory=list)
    limits: list[Limit] = Field(default_factory=list)

    @field_validator("rules")
    @classmethod
    def _unique_names(cls, rules: list[Rule]) -> list[Rule]:
        seen: set[str] = set()
        for rule in rules:
            if rule.name in seen:
                raise ValueError(f"two rules are named {rule.name!r}; rule names must be unique")
            seen.add(rule.name)
        return rules

    def to_dict(self) -> dict[str, Any]:
        """The scenario as plain data, as it would be written in a file."""
        out: dict[str, Any] = {k: v for k, v in (("name", self.name), ("description", self.description)) if v}
        out["seed"] = self.seed
        if self.mock is not None:
            out["mock"] = self.mock.model_dump(mode="json", exclude_defaults=True)
        out["rules"] = [r.to_dict() for r in self.rules]
        out["limits"] = [lim.model_dump(mode="json", exclude_defaults=True) for lim in self.limits]
        return out


def _describe(err: Any, data: Any) -> str:
    loc = err["loc"]
    text = describe(err, Scenario)
    # Name the rule too: "rules[2] (rule 'flap')" is easier to find in a long file than "rules[2]".
    if len(loc) >= 2 and loc[0] == "rules" and isinstance(loc[1], int) and isinstance(data, dict):
        rules = data.get("rules")
        if isinstance(rules, list) and loc[1] < len(rules) and isinstance(rules[loc[1]], dict):
            name = rules[loc[1]].get("name")
            if isinstance(name, str):
                path, _, rest = text.partition(": ")
                text = f"{path} (rule {name!r}): {rest}"
    return text


def parse_scenario(data: Any, source: str = "<scenario>") -> Scenario:
    """Validate already-parsed scenario data; a :class:`ScenarioError` names ``source``."""
    if data is None:
        data = {}
    if not isinstance(data, dict):
        raise ScenarioError(
            f"{source}: a scenario must be a mapping at the top level, not {type(data).__name__}"
        )
    try:
        return Scenario.model_validate(data)
    except ValidationError as exc:
        problems = [_describe(e, data) for e in exc.errors()]
        count = f"{len(problems)} problems" if len(problems) > 1 else "1 problem"
        raise ScenarioError(f"{source}: invalid scenario, {count}: " + "; ".join(problems) + ".") from None


def parse_scenario_text(text: str, source: str = "<scenario>") -> Scenario:
    """Parse YAML (or JSON, which is YAML) text into a validated scenario."""
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        raise ScenarioError(f"{source}: {yaml_problem(exc)}") from None
    return parse_scenario(data, source)


def load_scenario(path: str | Path) -> Scenario:
    """Read and validate a scenario file; a :class:`ScenarioError` says what is wrong and where."""
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise ScenarioError(f"{p}: cannot read the scenario file: {exc.strerror or exc}") from None
    return parse_scenario_text(text, str(p))


LIBRARY = Path(__file__).parent / "scenarios"
"""The folder of ready-made scenarios shipped with turnout."""


def library() -> dict[str, Path]:
    """The shipped scenarios by name (file stem)."""
    return {p.stem: p for p in sorted(LIBRARY.glob("*.yaml"))}
