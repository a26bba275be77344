"""Field checks the configuration models share (a leaf: it imports nothing from the mock)."""

from __future__ import annotations

import re


def check_regex(value: str | None) -> str | None:
    """``value`` unchanged if it is None or compiles as a regular expression; else ValueError."""
    if value is not None:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"not a valid regular expression: {exc}") from exc
    return value
