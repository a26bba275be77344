"""The capacity sweep's options (``loadtests/sweep.py``, ``turnout sweep``) and their validation.

Each option has a ``TURNOUT_SWEEP_*`` environment variable as its default. The SLO thresholds
are the load tests' own ``--slo-*`` options (see :mod:`loadtests.slo`); the users' options
(``--model``, ``--primary-model``, …) are :mod:`loadtests.settings`'. Pure Python, no Locust.
"""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

from loadtests import knee, slo
from loadtests.arrivals import ARRIVAL_KINDS, ArrivalKind
from loadtests.shapes import ShapeError, parse_duration

__all__ = ["OptionError", "SweepConfig", "add_arguments", "validate"]


class OptionError(ValueError):
    """A bad sweep option; the message names it."""


@dataclass(frozen=True)
class SweepConfig:
    start: float
    step: tuple[str, float]
    max: float
    resolution: float
    max_steps: int
    step_time: float
    warmup: float
    drain_timeout: float
    arrivals: ArrivalKind
    seed: int
    require: float | None
    out: str
    metrics: tuple[str, ...]
    route: str | None
    pool_seconds: float
    min_users: int
    max_users: int
    criteria: knee.Criteria
    title: str

    def search(self) -> knee.KneeSearch:
        return knee.KneeSearch(self.start, self.step, self.max, self.resolution, self.max_steps)

    def as_dict(self) -> dict[str, Any]:
        t = self.criteria.thresholds
        return {
            "start": self.start,
            "step": f"{self.step[0]}{self.step[1]:g}",
            "max": self.max,
            "resolution": self.resolution,
            "step_time_s": self.step_time,
            "warmup_s": self.warmup,
            "arrivals": self.arrivals,
            "seed": self.seed,
            "require": self.require,
            "metrics": list(self.metrics),
            "route": self.route,
            "slo": {
                "max_error_rate": t.max_error_rate,
                "latency_ms": {f"p{k * 100:g}": v for k, v in t.latency_ms.items()},
                "ttft_ms": {f"p{k * 100:g}": v for k, v in t.ttft_ms.items()},
                "max_fallback_share": self.criteria.max_fallback_share,
                "max_lag_ms": self.criteria.max_lag_ms,
            },
        }


def _env(name: str, default: str) -> str:
    return os.environ.get("TURNOUT_SWEEP_" + name, default)


# (option, its TURNOUT_SWEEP_* variable, default, help): each option defaults to its variable.
_OPTIONS = (
    ("--start", "START", "10", "first offered load, e.g. 10 or 10rps or 600rpm"),
    ("--step", "STEP", "+10", "coarse step: +N req/s or xF (a factor) [+10]"),
    ("--max", "MAX", "200", "highest load tried [200 req/s]"),
    ("--resolution", "RESOLUTION", "0.05", "bisect until within this fraction [0.05]"),
    ("--max-steps", "MAX_STEPS", "20", "stop after this many steps [20]"),
    ("--step-time", "STEP_TIME", "10s", "measured time of each step [10s]"),
    ("--warmup", "WARMUP", "2s", "load before each step is measured [2s]"),
    ("--drain-timeout", "DRAIN_TIMEOUT", "15s", "wait for a step's last answers [15s]"),
    ("--arrivals", "ARRIVALS", "poisson", "arrivals: poisson or constant [poisson]"),
    ("--sweep-seed", "SEED", "1", "seed of the arrival times [1]"),
    ("--require", "REQUIRE", "", "exit 1 when the knee is below this, e.g. 40rps"),
    ("--out", "OUT", "sweep-reports/sweep", "report folder [sweep-reports/sweep]"),
    ("--route", "ROUTE", "", "count this route in /metrics [default: --model]"),
    ("--slo-max-fallback-share", "MAX_FALLBACK_SHARE", "", "break when more spill"),
    ("--max-lag-ms", "MAX_LAG_MS", "1000", "p99 wait for a free user [1000]"),
    ("--pool-seconds", "POOL_SECONDS", "4", "users = rate * this [4]"),
    ("--min-users", "MIN_USERS", "8", "smallest pool of users [8]"),
    ("--max-users", "MAX_USERS", "1000", "largest pool of users [1000]"),
    ("--title", "TITLE", "Capacity sweep", "the reports' title"),
)
_DEST = {"--max": "sweep_max"}  # `max` would shadow the builtin where options are read


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    group = (
        parser.add_argument_group("capacity sweep (loadtests/sweep.py)")
        if isinstance(parser, argparse.ArgumentParser)
        else parser
    )
    for option, env, default, help_text in _OPTIONS:
        extra = {"dest": _DEST[option]} if option in _DEST else {}
        group.add_argument(option, default=_env(env, default), help=help_text, **extra)
    group.add_argument(
        "--metrics",
        action="append",
        default=None,
        help="a sidecar's /metrics URL, repeatable for a fleet; 'none' to skip "
        "[default: the --host's /metrics]",
    )


def _number(options: Any, attr: str, option: str, kind: type = float, low: float | None = None) -> Any:
    raw = getattr(options, attr)
    try:
        value = kind(raw)
    except (TypeError, ValueError):
        raise OptionError(f"{option} {raw!r} is not {'an integer' if kind is int else 'a number'}") from None
    if low is not None and value < low:
        raise OptionError(f"{option} must be at least {low:g}, not {raw!r}")
    return value


def _duration(options: Any, attr: str, option: str) -> float:
    try:
        return parse_duration(str(getattr(options, attr)))
    except ShapeError as exc:
        raise OptionError(f"{option}: {exc}") from None


def _metrics_urls(options: Any) -> tuple[str, ...]:
    given = [u for u in (getattr(options, "metrics", None) or []) if u]
    if not given:
        env = _env("METRICS", "")
        given = [u for u in env.split(",") if u] if env else []
    if any(u.lower() == "none" for u in given):
        return ()
    if not given:
        host = getattr(options, "host", "") or ""
        parts = urlsplit(host)
        return (f"{parts.scheme}://{parts.netloc}/metrics",) if parts.scheme and parts.netloc else ()
    for url in given:
        if urlsplit(url).scheme not in ("http", "https"):
            raise OptionError(f"--metrics {url!r} is not an http(s) URL")
    return tuple(given)


def validate(options: Any) -> SweepConfig:
    """The sweep's configuration from parsed options; :class:`OptionError` or
    :class:`knee.SearchError` name the bad option."""
    arrivals = str(options.arrivals).strip().lower()
    if arrivals not in ARRIVAL_KINDS:
        raise OptionError(f"--arrivals must be one of {', '.join(ARRIVAL_KINDS)}, not {options.arrivals!r}")
    share = str(options.slo_max_fallback_share or "").strip()
    try:
        thresholds = slo.thresholds_from_options(options, prefix="slo-")
    except slo.SloError as exc:
        raise OptionError(str(exc)) from None
    criteria = knee.Criteria(
        thresholds=thresholds,
        max_fallback_share=_number(options, "slo_max_fallback_share", "--slo-max-fallback-share", float, 0)
        if share
        else None,
        max_lag_ms=_number(options, "max_lag_ms", "--max-lag-ms", float, 0),
    )
    if not thresholds.enabled and criteria.max_fallback_share is None:
        raise OptionError(
            "no SLO given: set at least one of --slo-max-error-rate, --slo-p99-ms, --slo-ttft-p99-ms"
        )
    step_time = _duration(options, "step_time", "--step-time")
    if step_time <= 0:
        raise OptionError("--step-time must be above 0")
    min_users = _number(options, "min_users", "--min-users", int, 1)
    max_users = _number(options, "max_users", "--max-users", int, 1)
    if max_users < min_users:
        raise OptionError(f"--max-users ({max_users}) is below --min-users ({min_users})")
    config = SweepConfig(
        start=knee.parse_rate(options.start, "--start"),
        step=knee.parse_step(str(options.step)),
        max=knee.parse_rate(options.sweep_max, "--max"),
        resolution=_number(options, "resolution", "--resolution", float, 0),
        max_steps=_number(options, "max_steps", "--max-steps", int, 1),
        step_time=step_time,
        warmup=_duration(options, "warmup", "--warmup"),
        drain_timeout=_duration(options, "drain_timeout", "--drain-timeout"),
        arrivals=arrivals,  # type: ignore[arg-type]
        seed=_number(options, "sweep_seed", "--sweep-seed", int),
        require=knee.parse_rate(options.require, "--require") if str(options.require).strip() else None,
        out=str(options.out),
        metrics=_metrics_urls(options),
        route=str(options.route or getattr(options, "model", "") or "") or None,
        pool_seconds=_number(options, "pool_seconds", "--pool-seconds", float, 0.1),
        min_users=min_users,
        max_users=max_users,
        criteria=criteria,
        title=str(options.title),
    )
    config.search()  # validates the bounds
    return config
