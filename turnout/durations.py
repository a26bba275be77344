"""Durations, one grammar for every package: configuration values, scenario files, provider headers.

Two readers of the same grammar (Go's ``time.Duration`` strings, which OpenAI sends in its
rate-limit headers, and plain numbers of seconds):

- :func:`read_duration` is lenient, for headers on every response: ``"6ms"``, ``"1s"``, ``"6m0s"``,
  ``"1h2m3.5s"``, ``"300us"``, ``"1d"``, ``"20"`` give seconds; anything else (negative included) gives
  ``None``. It does a handful of string checks and one regular expression for the common shapes.
- :func:`parse_duration` is strict, for values a person wrote (YAML, a command line): a number or
  such a string (spaces allowed between parts, ``"1m 30s"``), at most a year; anything else raises
  :class:`ValueError` naming the value.

:data:`Duration` is the pydantic field type built on :func:`parse_duration`. This module imports
nothing from turnout's packages, so each of them can use it.
"""

from __future__ import annotations

import math
import re
from typing import Annotated, Any

from pydantic import BeforeValidator

__all__ = ["MAX_SECONDS", "Duration", "parse_duration", "read_duration"]

# No drill lasts a year, no timeout or wait either: longer is a typo (or 1e308).
MAX_SECONDS = 366 * 86400.0

# The common shapes ("6ms", "1s", "6m0s", "1h2m3.5s") match _COMMON in one pass; the general
# grammar (any units, in any order, such as "1.5h" or "300us") is the slower fallback.
_COMMON = re.compile(r"(?:(\d+)h)?(?:(\d+)m)?(?:(\d+(?:\.\d+)?)(s|ms))?")
_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|μs|ms|h|m|s|d)")
_GENERAL = re.compile(r"(?:(?:\d+(?:\.\d*)?|\.\d+)(?:ns|us|µs|μs|ms|h|m|s|d))+")
# (multiplier, divisor): dividing sub-second units keeps "6ms" == 6 / 1000 exactly.
_UNIT = {
    "ns": (1.0, 1e9),
    "us": (1.0, 1e6),
    "µs": (1.0, 1e6),
    "μs": (1.0, 1e6),
    "ms": (1.0, 1e3),
    "s": (1.0, 1.0),
    "m": (60.0, 1.0),
    "h": (3600.0, 1.0),
    "d": (86400.0, 1.0),  # not Go's, but a batch window reads better as "1d"
}
# Spaces a person may put between a number and its unit, or between parts ("30 s", "1m 30s").
_SPACES = re.compile(r"(?<=[a-zµμ])\s+|(?<=[\d.])\s+(?=[a-zµμ])")
_HINT = "expected seconds as a number, or a string such as '60s', '1.5s', '200ms', '2m' or '1m30s'"


def _seconds(text: str) -> float | None:
    try:
        f = float(text)
    except ValueError:
        return None
    return f if math.isfinite(f) and f >= 0 else None


def read_duration(s: str | None) -> float | None:
    """Seconds in a Go-style duration (``"6ms"``, ``"1s"``, ``"6m0s"``, ``"1h2m3.5s"``) or a bare
    number of seconds (``"20"``); ``None`` for anything else, including negative durations."""
    if s is None:
        return None
    s = s.strip()
    if not s:
        return None
    last = s[-1]
    if last.isdigit() or last == ".":
        return _seconds(s)
    m = _COMMON.fullmatch(s)
    if m is not None:
        h, mins, secs, unit = m.groups()
        total = float(secs) / 1000.0 if unit == "ms" else float(secs or 0.0)
        if h is not None or mins is not None:
            total += int(h or 0) * 3600 + int(mins or 0) * 60
        return total if math.isfinite(total) else None
    if _GENERAL.fullmatch(s) is None:
        return None
    total = 0.0
    for number, unit in _PART.findall(s):
        mul, div = _UNIT[unit]
        total += float(number) * mul / div
    return total if math.isfinite(total) else None


def parse_duration(value: Any, *, max_seconds: float = MAX_SECONDS) -> float:
    """Seconds in a value a person wrote: a number, or a string such as ``"60s"``, ``"1.5s"``,
    ``"200ms"``, ``"2m"``, ``"1h"``, ``"1m30s"`` or ``"3"``; at most ``max_seconds``.

    Raises :class:`ValueError` naming the value for anything else, for negative values and for a
    boolean (``timeout: true`` is a mistake, though ``bool`` is an ``int``).
    """
    if isinstance(value, bool):
        raise ValueError(f"invalid duration {value!r}: {_HINT}")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip()
        if text.startswith("-"):
            raise ValueError(f"invalid duration {value!r}: must not be negative")
        read = read_duration(_SPACES.sub("", text))
        if read is not None:
            seconds = read
        else:
            try:  # "1e999" is a number, just far too large: say so rather than show the grammar
                seconds = float(text)
            except ValueError:
                raise ValueError(f"invalid duration {value!r}: {_HINT}") from None
    else:
        raise ValueError(f"invalid duration {value!r}: {_HINT}")
    if not seconds >= 0:  # NaN too
        raise ValueError(f"invalid duration {value!r}: must be a finite number >= 0 seconds")
    if seconds > max_seconds:  # inf and 1e308 included
        raise ValueError(f"invalid duration {str(value)[:40]!r}: at most {max_seconds:g} seconds")
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds as a float, parsed by :func:`parse_duration`."""
