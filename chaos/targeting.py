"""Who a rule applies to: the ``match:`` block of a rule.

Each field given narrows the rule (AND across fields); a field may be one value or a list of
values (OR within the field). ``model``, ``api_key`` and ``path`` accept shell-style wildcards
(``gpt-4o*``). ``headers`` requires each named request header to equal one of its values
(names are case-insensitive). An empty ``match:`` matches every request.
"""

from __future__ import annotations

from fnmatch import fnmatchcase
from typing import Any

from pydantic import BaseModel, ConfigDict, field_validator

from mockproviders.types import Endpoint, MockRequest, Provider


def _as_list(v: Any) -> Any:
    if v is None or isinstance(v, list):
        return v
    return [v]


class Match(BaseModel):
    """Targeting: by provider, endpoint, model, API key, path and request header."""

    model_config = ConfigDict(extra="forbid")
    provider: list[Provider] | None = None
    endpoint: list[Endpoint] | None = None
    model: list[str] | None = None
    api_key: list[str] | None = None
    path: list[str] | None = None
    headers: dict[str, list[str]] | None = None

    @field_validator("provider", "endpoint", "model", "api_key", "path", mode="before")
    @classmethod
    def _one_or_many(cls, v: Any) -> Any:
        return _as_list(v)

    @field_validator("headers", mode="before")
    @classmethod
    def _header_values(cls, v: Any) -> Any:
        if isinstance(v, dict):
            return {str(k).lower(): _as_list(val) for k, val in v.items()}
        return v

    def matches(self, request: MockRequest) -> bool:
        """Whether ``request`` is one this rule targets."""
        if self.provider is not None and request.provider not in self.provider:
            return False
        if self.endpoint is not None and request.endpoint not in self.endpoint:
            return False
        if self.model is not None and not _glob_any(request.model, self.model):
            return False
        if self.api_key is not None and not _glob_any(request.api_key, self.api_key):
            return False
        if self.path is not None and not _glob_any(request.path, self.path):
            return False
        if self.headers:
            for name, allowed in self.headers.items():
                if request.headers.get(name) not in allowed:
                    return False
        return True


def _glob_any(value: str | None, patterns: list[str]) -> bool:
    return value is not None and any(fnmatchcase(value, p) for p in patterns)
