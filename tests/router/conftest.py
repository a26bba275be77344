"""Make ``import router`` mean the package, not this test directory.

pytest (rootdir-relative "prepend" imports) puts ``tests/`` on ``sys.path`` for the root
conftest, and ``tests/router/`` has no ``__init__.py``, so a bare ``import router`` can resolve to
this directory as a namespace package when the project is installed in editable mode (its finder
runs after the path finder). Putting the repository root first makes the real package win.
"""

import sys
from pathlib import Path

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_loaded = sys.modules.get("router")
if _loaded is not None and getattr(_loaded, "__file__", None) is None:  # the namespace impostor
    for _name in [n for n in sys.modules if n == "router" or n.startswith("router.")]:
        del sys.modules[_name]
