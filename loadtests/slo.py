"""The SLO gate: judge a load test's statistics against thresholds.

Two ways in, one judgement:

- at the end of a Locust run, the ``quitting`` listener in :mod:`loadtests.users` turns Locust's
  live statistics into :class:`StatsRow` objects (options ``--slo-max-error-rate``,
  ``--slo-p99-ms``, …);
- afterwards, from the CSV files of a headless run (``--csv PREFIX``)::

      python -m loadtests.slo PREFIX --max-error-rate 0.01 --p99-ms 2000 --ttft-p99-ms 800

  exits 0 when every threshold holds, 1 naming each threshold that was passed, 2 when the files
  cannot be read or a threshold asks for a percentile the CSV does not have.

Request rows are every row except the ``Aggregated`` one and the load tests' own metrics
(``TTFT``, ``CHUNK_GAP``, ``FALLBACK``, ``RETRY``). The error rate is over all request rows
together; latency percentiles are checked row by row (percentiles of different rows cannot be
merged from a CSV), so each request kind must meet them. Pure Python, no Locust.
"""

from __future__ import annotations

import argparse
import csv
import os
import re
import sys
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

__all__ = [
    "METRIC_TYPES",
    "SloError",
    "SloReport",
    "StatsRow",
    "Thresholds",
    "add_arguments",
    "check",
    "main",
    "read_stats_csv",
    "thresholds_from_options",
]

METRIC_TYPES = frozenset({"TTFT", "CHUNK_GAP", "FALLBACK", "RETRY", "LAG"})
AGGREGATED = "Aggregated"
_PERCENT_COLUMN = re.compile(r"^(\d+(?:\.\d+)?)%$")


class SloError(Exception):
    """The statistics cannot be judged: unreadable CSV, or a percentile it does not report."""


def _key(fraction: float) -> float:
    return round(fraction, 6)


@dataclass(frozen=True, slots=True)
class StatsRow:
    """One row of Locust statistics: a request kind or one of our metrics."""

    type: str
    name: str
    requests: int
    failures: int
    percentiles: Mapping[float, float] = field(default_factory=dict)  # 0.99 -> milliseconds

    @property
    def label(self) -> str:
        return f"{self.type} {self.name}"

    def percentile(self, fraction: float) -> float:
        try:
            return self.percentiles[_key(fraction)]
        except KeyError:
            have = ", ".join(_pct(p) for p in sorted(self.percentiles)) or "none"
            raise SloError(
                f"{self.label}: no {_pct(fraction)} percentile in the statistics (have {have})"
            ) from None


def _pct(fraction: float) -> str:
    return f"p{fraction * 100:g}"


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What must hold. ``None`` or an empty mapping means "not checked"."""

    max_error_rate: float | None = None
    latency_ms: Mapping[float, float] = field(default_factory=dict)  # request rows
    ttft_ms: Mapping[float, float] = field(default_factory=dict)  # TTFT rows
    chunk_gap_ms: Mapping[float, float] = field(default_factory=dict)  # CHUNK_GAP rows
    min_requests: int = 1

    @property
    def enabled(self) -> bool:
        return self.max_error_rate is not None or bool(self.latency_ms or self.ttft_ms or self.chunk_gap_ms)

    def percentiles_needed(self) -> set[float]:
        return {_key(p) for p in (*self.latency_ms, *self.ttft_ms, *self.chunk_gap_ms)}


@dataclass(slots=True)
class SloReport:
    violations: list[str] = field(default_factory=list)
    passed: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.violations

    def render(self) -> str:
        lines = [f"SLO FAILED: {v}" for v in self.violations] + [f"SLO ok: {p}" for p in self.passed]
        verdict = (
            "SLO gate: PASS" if self.ok else f"SLO gate: FAIL ({len(self.violations)} threshold(s) passed)"
        )
        return "\n".join([verdict, *lines])


def is_request_row(row: StatsRow) -> bool:
    return row.name != AGGREGATED and row.type not in METRIC_TYPES


def check(rows: Iterable[StatsRow], thresholds: Thresholds) -> SloReport:
    """Judge ``rows`` against ``thresholds``; raises :class:`SloError` for a percentile not reported."""
    rows = list(rows)
    report = SloReport()
    requests = [r for r in rows if is_request_row(r)]
    total = sum(r.requests for r in requests)
    failed = sum(r.failures for r in requests)
    if thresholds.enabled and total < thresholds.min_requests:
        report.violations.append(
            f"only {total} request(s) were made, at least {thresholds.min_requests} needed"
        )
    if thresholds.max_error_rate is not None and total:
        rate = failed / total
        text = f"error rate {rate:.2%} ({failed}/{total})"
        if rate > thresholds.max_error_rate:
            report.violations.append(f"{text} > max {thresholds.max_error_rate:.2%}")
        else:
            report.passed.append(f"{text} <= max {thresholds.max_error_rate:.2%}")
    _check_latency(report, requests, thresholds.latency_ms, "latency")
    _check_latency(report, [r for r in rows if r.type == "TTFT"], thresholds.ttft_ms, "time to first token")
    _check_latency(report, [r for r in rows if r.type == "CHUNK_GAP"], thresholds.chunk_gap_ms, "chunk gap")
    return report


def _check_latency(
    report: SloReport, rows: Sequence[StatsRow], limits: Mapping[float, float], what: str
) -> None:
    if not limits:
        return
    measured = [r for r in rows if r.requests > 0]
    if not measured:
        report.violations.append(f"no {what} was measured, but thresholds were set for it")
        return
    for fraction, limit in sorted(limits.items()):
        for row in measured:
            value = row.percentile(fraction)
            text = f"{_pct(fraction)} {what} of {row.label} is {value:g} ms"
            if value > limit:
                report.violations.append(f"{text} > max {limit:g} ms")
            else:
                report.passed.append(f"{text} <= max {limit:g} ms")


def stats_csv_path(prefix_or_path: str | os.PathLike[str]) -> Path:
    """``PREFIX`` (as given to ``locust --csv``) or the ``PREFIX_stats.csv`` file itself."""
    path = Path(prefix_or_path)
    if path.name.endswith("_stats.csv"):
        return path
    return path.with_name(path.name + "_stats.csv")


def read_stats_csv(prefix_or_path: str | os.PathLike[str]) -> list[StatsRow]:
    """Read Locust's ``PREFIX_stats.csv``; errors name the file, line and column."""
    path = stats_csv_path(prefix_or_path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise SloError(f"cannot read {path}: {exc.strerror or exc}") from exc
    reader = csv.DictReader(text.splitlines())
    needed = ("Type", "Name", "Request Count", "Failure Count")
    missing = [c for c in needed if c not in (reader.fieldnames or [])]
    if missing:
        raise SloError(f"{path}: not a Locust stats CSV (missing column(s) {', '.join(missing)})")
    pct_columns = {}
    for column in reader.fieldnames or []:
        match = _PERCENT_COLUMN.match(column)
        if match:
            pct_columns[column] = _key(float(match.group(1)) / 100)
    rows = []
    for line_no, record in enumerate(reader, start=2):
        try:
            requests = int(record["Request Count"])
            failures = int(record["Failure Count"])
            percentiles = {
                fraction: float(record[column])
                for column, fraction in pct_columns.items()
                if record.get(column) not in (None, "", "N/A")
            }
        except (TypeError, ValueError) as exc:
            raise SloError(f"{path}:{line_no}: bad number ({exc})") from exc
        rows.append(StatsRow(record["Type"] or "", record["Name"] or "", requests, failures, percentiles))
    return rows


# --- options, shared by the standalone checker and the Locust listener ---------------------------

_LATENCY_OPTIONS: tuple[tuple[str, str, float], ...] = (
    ("p50-ms", "latency_ms", 0.50),
    ("p90-ms", "latency_ms", 0.90),
    ("p95-ms", "latency_ms", 0.95),
    ("p99-ms", "latency_ms", 0.99),
    ("ttft-p50-ms", "ttft_ms", 0.50),
    ("ttft-p95-ms", "ttft_ms", 0.95),
    ("ttft-p99-ms", "ttft_ms", 0.99),
    ("chunk-gap-p99-ms", "chunk_gap_ms", 0.99),
)


def _env_name(option: str) -> str:
    return "TURNOUT_SLO_" + option.replace("-", "_").upper()


def _env(name: str, kind: Callable[[str], object]) -> str | None:
    """The option's default from the environment, checked as the option's value would be."""
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return None
    try:
        kind(raw)
    except argparse.ArgumentTypeError as exc:
        raise SloError(f"environment variable {name}={raw!r}: {exc}") from None
    return raw


def _number(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a number") from None
    if value != value or value in (float("inf"), float("-inf")):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number")
    return value


def error_rate(text: str) -> float:
    """A share of failed requests: 0 to 1 (0.01 = 1 %)."""
    value = _number(text)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError(f"{text} is not a rate between 0 and 1 (0.01 = 1%)")
    return value


def milliseconds(text: str) -> float:
    value = _number(text)
    if value <= 0:
        raise argparse.ArgumentTypeError(f"{text} is not a positive number of milliseconds")
    return value


def count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"{text} is negative")
    return value


def add_arguments(parser: argparse.ArgumentParser | argparse._ArgumentGroup, prefix: str = "") -> None:
    """Add the threshold options (``--{prefix}max-error-rate``, ``--{prefix}p99-ms``, …).

    Defaults come from ``TURNOUT_SLO_MAX_ERROR_RATE``, ``TURNOUT_SLO_P99_MS``, … when set. A value
    out of range (a rate outside 0..1, a latency of 0 ms or less), given or from the environment, is
    refused by the parser: exit 2 naming the option, before any request.
    """
    parser.add_argument(
        f"--{prefix}max-error-rate",
        type=error_rate,
        default=_env(_env_name("max-error-rate"), error_rate),
        metavar="RATE",
        help="fail when failed/all requests exceeds RATE (0.01 = 1%%) [env TURNOUT_SLO_MAX_ERROR_RATE]",
    )
    for option, _, fraction in _LATENCY_OPTIONS:
        parser.add_argument(
            f"--{prefix}{option}",
            type=milliseconds,
            default=_env(_env_name(option), milliseconds),
            metavar="MS",
            help=f"fail when any row's {_pct(fraction)} exceeds MS milliseconds [env {_env_name(option)}]",
        )
    parser.add_argument(
        f"--{prefix}min-requests",
        type=count,
        default=_env(_env_name("min-requests"), count) or "1",
        metavar="N",
        help="fail when fewer than N requests were made (default 1) [env TURNOUT_SLO_MIN_REQUESTS]",
    )


def thresholds_from_options(options: argparse.Namespace, prefix: str = "") -> Thresholds:
    attr = prefix.replace("-", "_")
    maps: dict[str, dict[float, float]] = {"latency_ms": {}, "ttft_ms": {}, "chunk_gap_ms": {}}
    for option, target, fraction in _LATENCY_OPTIONS:
        value = getattr(options, attr + option.replace("-", "_"), None)
        if value is not None:
            maps[target][_key(fraction)] = float(value)
    rate = getattr(options, attr + "max_error_rate", None)
    return Thresholds(
        max_error_rate=None if rate is None else float(rate),
        latency_ms=maps["latency_ms"],
        ttft_ms=maps["ttft_ms"],
        chunk_gap_ms=maps["chunk_gap_ms"],
        min_requests=int(getattr(options, attr + "min_requests", 1) or 0),
    )


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m loadtests.slo",
        description="Check a headless Locust run's CSV statistics against SLO thresholds.",
    )
    parser.add_argument("csv", help="the --csv PREFIX of the run, or its PREFIX_stats.csv file")
    try:
        add_arguments(parser)
    except SloError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    options = parser.parse_args(argv)
    thresholds = thresholds_from_options(options)
    if not thresholds.enabled:
        parser.error("no threshold given (--max-error-rate, --p99-ms, --ttft-p99-ms, …)")
    try:
        report = check(read_stats_csv(options.csv), thresholds)
    except SloError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    print(report.render())
    return 0 if report.ok else 1


if __name__ == "__main__":
    sys.exit(main())
