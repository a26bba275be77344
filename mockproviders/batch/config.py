"""The ``batch:`` section of the mock's configuration: phase durations and scripted item failures.

Time is accelerated by making the phases short: a real batch takes hours, the mock's defaults
take a fraction of a second, and a test on a :class:`~mockproviders.clock.FakeClock` takes no
real time at all (it advances the clock past the phases)::

    batch:
      validating: 1s        # OpenAI's `validating`, before any item is processed
      per_item: 10ms        # items are answered one after another, this long each
      finalizing: 1s        # OpenAI's `finalizing`, after the last item
      cancelling: 1s        # from a cancel request to `cancelled` / `ended`
      expires: 24h          # from creation; unprocessed items then expire
      fail:                 # items that fail whatever their body says
        - {custom_id: q3, status: 500}
        - {pattern: "^slow-", status: 529, provider: anthropic, message: Overloaded}

This module imports only the leaf :mod:`mockproviders._validators` from the rest of the mock, so
:mod:`mockproviders.config` can embed it.
"""

from __future__ import annotations

import re
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from mockproviders._validators import check_regex
from turnout.durations import Duration, parse_duration

__all__ = ["BatchConfig", "FailRule", "parse_duration"]

# Seconds from a number or a string such as "10ms", "1.5s", "24h", "1d" (turnout's one grammar).
Seconds = Duration


class FailRule(BaseModel):
    """Items that fail with ``status``: by exact ``custom_id`` or by a ``pattern`` (regex search)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    custom_id: str | None = None
    pattern: str | None = None
    provider: Literal["openai", "anthropic"] | None = None
    status: int = Field(default=500, ge=400, le=599)
    type: str | None = None  # the provider's error type; default: the one for `status`
    message: str | None = None

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str | None) -> str | None:
        return check_regex(value)

    @model_validator(mode="after")
    def _one_selector(self) -> FailRule:
        if (self.custom_id is None) == (self.pattern is None):
            raise ValueError("give exactly one of custom_id or pattern")
        return self

    def matches(self, provider: str, custom_id: str) -> bool:
        if self.provider is not None and self.provider != provider:
            return False
        if self.custom_id is not None:
            return custom_id == self.custom_id
        return re.search(self.pattern or "", custom_id) is not None


class BatchConfig(BaseModel):
    """Phase durations (seconds, or strings like ``10ms``) and scripted failures; all optional."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    validating: Seconds = 0.05
    per_item: Seconds = 0.005
    finalizing: Seconds = 0.05
    cancelling: Seconds = 0.05
    expires: Seconds = 86400.0
    fail: tuple[FailRule, ...] = ()

    def failure_for(self, provider: str, custom_id: str) -> FailRule | None:
        return next((r for r in self.fail if r.matches(provider, custom_id)), None)
