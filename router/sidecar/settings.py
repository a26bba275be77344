"""The sidecar's own settings: the ``server``, ``audit`` and ``alerts`` sections of the router's YAML.

The router's configuration (providers, models, routes, defaults) belongs to :mod:`router.config`.
The sidecar pops its sections off the same file before handing the rest to
:func:`router.config.parse_config`, and validates them with the pydantic models below, reporting
errors the same way: file, field path, reason.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from router.config import SIDECAR_SECTIONS
from router.sidecar.alerts import AlertsSettings
from turnout.durations import Duration
from turnout.problems import describe


class SettingsError(ValueError):
    """An invalid sidecar section; the message names the file, the field path and the reason."""


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class ServerSettings(_Strict):
    """How the sidecar listens and what it lets in."""

    host: str = "127.0.0.1"  # loopback unless the operator says otherwise
    port: int = Field(default=8200, ge=0, le=65535)
    api_keys: list[str] = Field(default_factory=list)  # client keys; empty = no auth on /v1
    # Keys for /admin/ (state, reload); when set, a client key is not enough there.
    admin_keys: list[str] = Field(default_factory=list)
    max_body_bytes: int = Field(default=1 << 20, ge=1024)
    max_concurrency: int = Field(default=256, ge=1)
    drain_timeout: Duration = 30.0  # seconds ("30s", 2.5), for shutdown and reloads
    # The front door's limits against slow or many clients (answered 408; closed at once).
    head_timeout: float = Field(default=10.0, gt=0, le=3600)  # first byte to the head's end
    body_timeout: float = Field(default=60.0, gt=0, le=3600)  # the head's end to the body's end
    max_connections: int = Field(default=4096, ge=1)

    @field_validator("api_keys", "admin_keys")
    @classmethod
    def _keys_not_trivial(cls, keys: list[str]) -> list[str]:
        for key in keys:
            if len(key) < 8:
                raise ValueError("each API key must be at least 8 characters")
        return keys


class AuditSettings(_Strict):
    """Where the JSON-lines audit trail goes, and whether prompts and answers are kept."""

    path: str | None = None  # a file path, "stdout", or None for no audit trail
    redact: bool = True

    @field_validator("path")
    @classmethod
    def _not_a_directory(cls, path: str | None) -> str | None:
        if path is not None and path != "stdout" and Path(path).is_dir():
            raise ValueError(f"{path!r} is a directory; the audit trail needs a file path")
        return path


class SidecarSettings(_Strict):
    """Every sidecar section together."""

    server: ServerSettings = Field(default_factory=ServerSettings)
    audit: AuditSettings = Field(default_factory=AuditSettings)
    alerts: AlertsSettings = Field(default_factory=AlertsSettings)


def format_validation_error(exc: ValidationError, source: str | Path) -> str:
    """One line per problem: ``file: field.path: reason``."""
    return "\n".join(f"{source}: {describe(err, SidecarSettings)}" for err in exc.errors())


def split_sections(data: dict[str, Any]) -> tuple[dict[str, Any], dict[str, Any]]:
    """Split a loaded YAML mapping into (sidecar sections, router sections)."""
    sidecar = {k: v for k, v in data.items() if k in SIDECAR_SECTIONS}
    rest = {k: v for k, v in data.items() if k not in SIDECAR_SECTIONS}
    return sidecar, rest


def parse_settings(data: dict[str, Any], *, source: str | Path) -> SidecarSettings:
    """Validate the sidecar sections; raise :class:`SettingsError` naming file, field and reason."""
    # A section written as an empty key (``audit:``) loads as None: treat it as "all defaults".
    cleaned = {k: ({} if v is None else v) for k, v in data.items()}
    try:
        return SidecarSettings.model_validate(cleaned)
    except ValidationError as exc:
        raise SettingsError(format_validation_error(exc, source)) from None


def secret_values(data: Any) -> set[str]:
    """Every string in a config tree stored under a name that suggests a secret.

    The sidecar scrubs these from anything it sends back or logs (upstream error bodies echo
    keys surprisingly often). Short strings are ignored so that scrubbing never mangles text.
    """
    found: set[str] = set()

    def walk(node: Any, secretish: bool) -> None:
        if isinstance(node, dict):
            # A mapping's own keys decide for its values: a section or a deployment named
            # ``gpt-tokens`` or ``my-key`` does not make every model name under it a secret.
            for key, value in node.items():
                walk(value, _secret_name(str(key)))
        elif isinstance(node, list):
            for item in node:
                walk(item, secretish)
        elif isinstance(node, str) and secretish and len(node) >= 6:
            found.add(node)

    walk(data, False)
    return found


# Whole words of a key's name (``api_key``, ``x-api-key``, ``apiKey``, ``access_token``), not
# substrings: ``gpt-tokens`` or ``max_tokens`` name no secret.
_SECRET_WORDS = frozenset(
    {"key", "keys", "apikey", "token", "secret", "secrets", "password", "passwd", "webhook", "authorization"}
)
_WORD = re.compile(r"[A-Z]?[a-z0-9]+|[A-Z]+(?![a-z])")


def _secret_name(name: str) -> bool:
    words = [w.lower() for w in _WORD.findall(name)]
    return (
        any(w in _SECRET_WORDS for w in words) or name.lower().replace("-", "").replace("_", "") == "apikey"
    )
