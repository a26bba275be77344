"""YAML files people write, read once for every package: the text, the document, ``${VAR}``.

:func:`read_yaml` turns a file into data or into one :class:`YAMLFileError` whose message starts
with the file's name and says what is wrong: unreadable, not UTF-8, a YAML syntax error (with its
line and column, worded by :mod:`turnout.problems`), nested too deeply, or an alias that refers to
what holds it (every later walk over the document would recurse without end).

:func:`substitute_env` fills ``${VAR}`` and ``${VAR:-default}`` in every string of a document from
the environment (or from ``fixed`` values the caller provides, such as a drill's ``${MOCK_URL}``);
a variable that is not set is an error naming the file, the field and the variable.

This module imports nothing from turnout's packages, so each of them can use it.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from turnout.problems import yaml_problem

__all__ = ["ENV_VAR", "MAX_DEPTH", "YAMLFileError", "read_yaml", "substitute_env", "unset_placeholder"]

ENV_VAR = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")
MAX_DEPTH = 64  # far deeper than any configuration; deeper is an accident or an attack


class YAMLFileError(ValueError):
    """A YAML file that cannot be used; the message starts with the file and says why."""


def read_yaml(path: str | os.PathLike[str], *, what: str | None = None) -> Any:
    """The document in ``path`` (``None`` for an empty file), or :class:`YAMLFileError`.

    ``what`` names the file in the "cannot read" message (``"the router configuration"``)."""
    source = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except OSError as exc:
        reason = exc.strerror or str(exc)
        raise YAMLFileError(f"{source}: cannot read {what or ''}".rstrip() + f": {reason}") from None
    except UnicodeDecodeError as exc:
        raise YAMLFileError(f"{source}: not UTF-8 text (byte {exc.start})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        # turnout.problems' wording, shared by every file type; it never quotes the line (a key)
        raise YAMLFileError(f"{source}: {yaml_problem(exc)}") from None
    except RecursionError:
        raise YAMLFileError(f"{source}: not usable: nested more than {MAX_DEPTH} levels deep") from None
    except ValueError as exc:  # an integer longer than the interpreter converts (4,300 digits)
        raise YAMLFileError(f"{source}: not usable: {str(exc).split(':')[0]}") from None
    _check_tree(data, source)
    return data


def _check_tree(data: Any, source: str) -> None:
    """Refuse a document that refers to itself (a recursive alias) or nests too deeply."""
    stack: list[tuple[Any, int, frozenset[int]]] = [(data, 0, frozenset())]
    while stack:
        node, depth, above = stack.pop()
        if not isinstance(node, dict | list):
            continue
        if id(node) in above:
            raise YAMLFileError(f"{source}: not usable: an alias refers to a mapping or list that holds it")
        if depth >= MAX_DEPTH:
            raise YAMLFileError(f"{source}: not usable: nested more than {MAX_DEPTH} levels deep")
        inner = above | {id(node)}
        children = node.values() if isinstance(node, dict) else node
        stack.extend((child, depth + 1, inner) for child in children)


def unset_placeholder(name: str) -> str:
    """What an unset ``${NAME}`` reads as when unset variables are allowed (``serve --check``): a
    string any key, token or URL field accepts, so the rest of the file is still validated."""
    return f"http://unset.invalid/{name}"


def substitute_env(
    value: Any,
    *,
    source: str,
    path: str = "",
    fixed: Mapping[str, str] | None = None,
    unset: list[str] | None = None,
) -> Any:
    """``value`` with ``${VAR}`` and ``${VAR:-default}`` filled in its strings, at any depth.

    A name in ``fixed`` takes that value whatever the environment says. An unset variable without
    a default raises :class:`YAMLFileError` (``source: field: environment variable NAME is not
    set``), unless ``unset`` is a list: then ``NAME (field)`` is appended to it and the value
    reads as :func:`unset_placeholder`. ``path`` is the field ``value`` sits at in the document.
    """
    if isinstance(value, str) and "${" in value:

        def repl(m: re.Match[str]) -> str:
            name, default = m.group(1), m.group(2)
            if fixed is not None and name in fixed:
                return fixed[name]
            found = os.environ.get(name)
            if found is not None:
                return found
            if default is not None:
                return default
            if unset is not None:
                unset.append(f"{name} ({path or '<root>'})")
                return unset_placeholder(name)
            raise YAMLFileError(f"{source}: {path or '<root>'}: environment variable {name} is not set")

        return ENV_VAR.sub(repl, value)
    if isinstance(value, dict):
        return {
            k: substitute_env(
                v, source=source, path=f"{path}.{k}" if path else str(k), fixed=fixed, unset=unset
            )
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [
            substitute_env(v, source=source, path=f"{path}[{i}]", fixed=fixed, unset=unset)
            for i, v in enumerate(value)
        ]
    return value
