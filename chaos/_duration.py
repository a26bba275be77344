"""Durations in scenario files: a number of seconds, or a string such as ``250ms``, ``2s``, ``1m30s``."""

from __future__ import annotations

import re
from typing import Annotated, Any

from pydantic import BeforeValidator

_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h)")
_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
MAX_SECONDS = 366 * 86400.0


def parse_duration(value: Any) -> float:
    """Seconds from ``1.5``, ``"1.5"``, ``"250ms"``, ``"2s"``, ``"1m30s"``; ValueError otherwise."""
    if isinstance(value, bool):
        raise ValueError("expected a duration such as 2.5, '250ms', '2s' or '1m30s', got a boolean")
    if isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().replace(" ", "")
        try:
            seconds = float(text)
        except ValueError:
            pos, seconds = 0, 0.0
            for m in _PART.finditer(text):
                if m.start() != pos:
                    break
                seconds += float(m.group(1)) * _UNITS[m.group(2)]
                pos = m.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"expected a duration such as 2.5, '250ms', '2s' or '1m30s', got {value!r}"
                ) from None
    else:
        raise ValueError(f"expected a duration such as 2.5, '250ms', '2s' or '1m30s', got {value!r}")
    if seconds < 0 or seconds != seconds:
        raise ValueError(f"a duration must be zero or more seconds, got {value!r}")
    if seconds > MAX_SECONDS:  # inf and 1e308 included: no drill lasts a year, no wait either
        raise ValueError(
            f"a duration must be at most {MAX_SECONDS:g} seconds (a year), got {str(value)[:40]!r}"
        )
    return seconds


Duration = Annotated[float, BeforeValidator(parse_duration)]
"""A pydantic field type: seconds as a float, parsed from a number or a unit string."""
