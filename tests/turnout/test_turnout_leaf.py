"""The shared leaf: every module of the ``turnout`` package but its command line may be imported
by router, mockproviders, chaos and loadtests, so it imports none of them (nor the command line,
which imports them all). Checked on the source, and by importing each module in a fresh
interpreter (which also catches an import made through a third module)."""

from __future__ import annotations

import ast
import json
import subprocess
import sys
from pathlib import Path

import turnout

PACKAGES = {"router", "mockproviders", "chaos", "loadtests"}
NOT_LEAF = {"cli.py", "__main__.py"}  # the command line dispatches to every package
HOME = Path(turnout.__file__).parent
LEAVES = sorted(p for p in HOME.glob("*.py") if p.name not in NOT_LEAF)


def _imports(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: inside turnout
                base = "turnout" + ("." + base if base else "")
            names |= {base} | {f"{base}.{alias.name}" for alias in node.names}
    return names


def test_the_leaf_modules_are_the_ones_this_test_expects() -> None:
    names = {p.stem for p in LEAVES}
    assert {"__init__", "durations", "logs", "problems", "safejson", "sse", "yamlfile"} <= names


def test_no_leaf_module_imports_a_package_of_the_project_or_the_command_line() -> None:
    for path in LEAVES:
        found = _imports(path)
        bad = {
            n
            for n in found
            if n.split(".")[0] in PACKAGES or n.startswith(("turnout.cli", "turnout.__main__"))
        }
        assert not bad, f"turnout/{path.name} imports {sorted(bad)}: the leaf must import none of the project"


def test_importing_every_leaf_loads_no_package_of_the_project() -> None:
    modules = [f"turnout.{p.stem}" if p.stem != "__init__" else "turnout" for p in LEAVES]
    code = (
        "import importlib, json, sys\n"
        f"for m in {modules!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted({n.split('.')[0] for n in sys.modules})))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60)
    loaded = set(json.loads(out.stdout))
    assert not loaded & PACKAGES, f"importing the leaf loaded {sorted(loaded & PACKAGES)}"
