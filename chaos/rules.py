"""A rule: a named fault with its parameters, who it targets (``match``) and when (``when``).

In YAML (and JSON for the control API)::

    - name: openai-429-storm
      fault: rate_limit
      params: {retry_after: 2}
      match: {provider: openai, model: "gpt-4o*"}
      when: {probability: 0.3, window: {start: 10s, end: 40s}}

Rules are tried in order for every request; each rule whose target matches advances its own
counters and draws its own trigger, and the first rule that fires is the one applied (so a
request gets at most one fault, and one rule's schedule never disturbs another's).
"""

from __future__ import annotations

from functools import cached_property
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, SerializeAsAny, ValidationInfo, field_validator

from chaos.faults import REGISTRY, Fault, FaultParams
from chaos.targeting import Match
from chaos.triggers import Trigger, When


class Rule(BaseModel):
    """One fault rule. ``params`` is validated by the named fault's own parameter model."""

    model_config = ConfigDict(extra="forbid", ignored_types=(cached_property,))

    name: str = Field(min_length=1, pattern=r"^[A-Za-z0-9_.:@-]+$")
    fault: str
    params: SerializeAsAny[FaultParams] = Field(default_factory=FaultParams, validate_default=True)
    match: Match = Field(default_factory=Match)
    when: When = Field(default_factory=When)
    description: str | None = None

    @field_validator("fault")
    @classmethod
    def _known_fault(cls, v: str) -> str:
        if v not in REGISTRY:
            raise ValueError(f"unknown fault {v!r}; known faults: {', '.join(REGISTRY.names())}")
        return v

    @field_validator("params", mode="before")
    @classmethod
    def _fault_params(cls, v: Any, info: ValidationInfo) -> Any:
        fault = info.data.get("fault")
        if fault is None:  # the fault name was invalid; that error is already reported
            return FaultParams()
        model = REGISTRY[fault].Params
        if isinstance(v, model):
            return v
        if isinstance(v, BaseModel):
            v = v.model_dump()
        return model.model_validate({} if v is None else v)

    def build_fault(self) -> Fault[Any]:
        """A fresh fault object for this rule."""
        return REGISTRY[self.fault].from_params(self.params)

    def build_trigger(self) -> Trigger:
        return self.when.build()

    def to_dict(self) -> dict[str, Any]:
        """The rule as plain data (what the control API lists), without defaults."""
        return {
            "name": self.name,
            "fault": self.fault,
            "params": self.params.model_dump(mode="json", exclude_defaults=True),
            "match": self.match.model_dump(mode="json", exclude_none=True),
            "when": self.when.model_dump(mode="json", exclude_defaults=True),
            **({"description": self.description} if self.description else {}),
        }
