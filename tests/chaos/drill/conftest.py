"""Fixtures for the drill tests (helpers live in drill_helpers.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml


@pytest.fixture
def write_drill(tmp_path: Path) -> Any:
    """Write drill data (or text) to a YAML file in tmp_path; returns its path."""

    def write(data: dict[str, Any] | str, name: str = "drill.yaml") -> Path:
        path = tmp_path / name
        path.write_text(data if isinstance(data, str) else yaml.safe_dump(data), encoding="utf-8")
        return path

    return write
