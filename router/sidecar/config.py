"""Loading the sidecar's YAML: the router's sections and the sidecar's own, with one error report."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from router.config import ConfigError, RouterConfig, load_yaml, parse_config
from router.sidecar.settings import (
    SettingsError,
    SidecarSettings,
    parse_settings,
    secret_values,
    split_sections,
)


@dataclass(slots=True, frozen=True)
class Loaded:
    """A configuration file, validated."""

    source: str
    settings: SidecarSettings
    router: RouterConfig
    secrets: frozenset[str]
    unset: tuple[str, ...] = ()  # ${VAR}s not set (allowed only to check a file): "VAR (field)"


def load(path: str | Path, *, allow_unset: bool = False) -> Loaded:
    """Read, substitute ``${ENV}``, validate both parts; raise ConfigError listing every problem.
    ``allow_unset``: a ``${VAR}`` that is not set is listed in ``Loaded.unset`` instead (to check a
    file in CI without its secrets; such a configuration is never served)."""
    source = str(path)
    unset: list[str] | None = [] if allow_unset else None
    data: dict[str, Any] = load_yaml(path, unset)
    sidecar, rest = split_sections(data)
    problems: list[str] = []
    settings: SidecarSettings | None = None
    router_cfg: RouterConfig | None = None
    try:
        settings = parse_settings(sidecar, source=source)
    except SettingsError as exc:
        problems.append(str(exc))
    try:
        router_cfg = parse_config(rest, source=source)
    except ConfigError as exc:
        problems.append(str(exc))
    if problems or settings is None or router_cfg is None:
        raise ConfigError("\n".join(problems))
    return Loaded(source, settings, router_cfg, frozenset(secret_values(data)), tuple(unset or ()))


def summary(loaded: Loaded) -> str:
    """What ``turnout serve --check`` prints for a valid file."""
    cfg, server = loaded.router, loaded.settings.server
    lines = [f"{loaded.source}: OK"]
    lines.append(f"  providers: {', '.join(f'{n} ({p.kind})' for n, p in cfg.providers.items())}")
    lines.append(f"  models:    {', '.join(cfg.models)}")
    for name, route in cfg.routes.items():
        lines.append(f"  route {name}: {' -> '.join(route.chain)}")
    auth = f"{len(server.api_keys)} client key(s)" if server.api_keys else "no client keys"
    lines.append(
        f"  server:    http://{server.host}:{server.port} ({auth}, max {server.max_concurrency} in flight)"
    )
    audit = loaded.settings.audit
    redact = "redacted" if audit.redact else "with prompts and answers"
    lines.append(f"  audit:     {audit.path or 'off'}{f' ({redact})' if audit.path else ''}")
    alerts = loaded.settings.alerts
    lines.append(
        f"  alerts:    {len(alerts.rules)} rule(s), webhook {'set' if alerts.webhook else 'not set'}"
    )
    if loaded.unset:
        lines.append(f"  not set here, needed to serve: {', '.join(loaded.unset)}")
    return "\n".join(lines)
