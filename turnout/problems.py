"""One wording for the problems of every file turnout reads (router configs, sidecar settings,
chaos scenarios, drills, mock configs): ``field.path: what is wrong``, with the likely correction
when a name is misspelt (``unknown field 'refused'; did you mean 'refuse'?``), and YAML syntax
errors as ``line L, column C: problem`` instead of PyYAML's ``in "<unicode string>"``.

A leaf module (pydantic and the standard library only), so every package may use it.
"""

from __future__ import annotations

import difflib
import re
import types
from collections.abc import Iterable, Sequence
from typing import Annotated, Any, Literal, Union, get_args, get_origin

from pydantic import BaseModel

__all__ = ["describe", "did_you_mean", "field_names", "yaml_problem"]

_QUOTED = re.compile(r"'([^']*)'")


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """`` did you mean 'x'?`` (with its leading ``;``) for the closest choice, or ``""``."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean {close[0]!r}?" if close else ""


def _unwrap(tp: Any) -> Any:
    while get_origin(tp) is Annotated:
        tp = get_args(tp)[0]
    return tp


def _members(tp: Any) -> list[Any]:
    tp = _unwrap(tp)
    if get_origin(tp) in (Union, types.UnionType):
        return [m for arg in get_args(tp) for m in _members(arg) if m is not type(None)]
    return [tp]


def _tag_of(model: type[BaseModel], tag: str) -> bool:
    for field in model.model_fields.values():
        ann = _unwrap(field.annotation)
        if get_origin(ann) is Literal and tag in get_args(ann):
            return True
    return False


def _step(tp: Any, part: str | int) -> Any | None:
    """The type found at ``part`` of a value of type ``tp`` (None when it cannot be told)."""
    for member in _members(tp):
        origin = get_origin(member)
        if isinstance(member, type) and issubclass(member, BaseModel):
            if isinstance(part, str):
                for name, field in member.model_fields.items():
                    if part in (name, field.alias):
                        return field.annotation
        elif origin in (list, tuple, set, frozenset) and isinstance(part, int):
            return get_args(member)[0] if get_args(member) else None
        elif origin is dict and get_args(member):
            return get_args(member)[1]
    if isinstance(part, str):  # a union's tag or member name, as pydantic puts it in the location
        for member in _members(tp):
            model = isinstance(member, type) and issubclass(member, BaseModel)
            if model and (part == member.__name__ or _tag_of(member, part)):
                return member
    return None


def field_names(model: type[BaseModel], loc: Sequence[str | int]) -> set[str]:
    """The field names (and aliases) allowed at ``loc`` inside ``model``; empty when unknown."""
    tp: Any = model
    for part in loc:
        tp = _step(tp, part)
        if tp is None:
            return set()
    names: set[str] = set()
    for member in _members(tp):
        if isinstance(member, type) and issubclass(member, BaseModel):
            for name, field in member.model_fields.items():
                names.add(field.alias or name)
    return names


def _path(loc: Sequence[str | int]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, str) and part.startswith(("function-", "tagged-union[")):
            continue  # pydantic's validator wrappers, not a place in the file
        out += f".{part}" if out else str(part)
    return out or "(top level)"


def _shown(value: Any) -> str:
    return "" if value is None or isinstance(value, dict | list) else f" (got {value!r})"


def describe(err: Any, model: type[BaseModel] | None = None) -> str:
    """``path: message`` for one pydantic error, in the one wording; ``model`` (the root model
    validated) lets an unknown field name its likely correction."""
    loc = tuple(err["loc"])
    path = _path(loc)
    kind = err["type"]
    msg = str(err["msg"]).removeprefix("Value error, ")
    given = err.get("input")
    ctx = err.get("ctx") or {}
    if kind == "missing":
        return f"{path}: required field is missing"
    if kind == "extra_forbidden":
        name = str(loc[-1]) if loc else ""
        hint = did_you_mean(name, field_names(model, loc[:-1])) if model is not None else ""
        return f"{path}: unknown field {name!r}{hint}"
    if kind == "literal_error" and isinstance(given, str):
        allowed = _QUOTED.findall(str(ctx.get("expected", "")))
        hint = did_you_mean(given, allowed)
        return f"{path}: {given!r} is not one of {', '.join(map(repr, allowed))}{hint}"
    if kind == "union_tag_invalid":
        tag, field = str(ctx.get("tag", given)), str(ctx.get("discriminator", "")).strip("'")
        allowed = _QUOTED.findall(str(ctx.get("expected_tags", "")))
        hint = did_you_mean(tag, allowed)
        return f"{path}: unknown {field or 'kind'} {tag!r}{hint} (known: {', '.join(allowed)})"
    if kind == "union_tag_not_found":
        field = str(ctx.get("discriminator", "")).strip("'")
        return f"{path}: {field or 'a kind'} is required here"
    return f"{path}: {msg}{_shown(given)}"


def yaml_problem(exc: Exception) -> str:
    """A PyYAML error as ``line L, column C: problem`` (its mark's 1-based position)."""
    mark = getattr(exc, "problem_mark", None) or getattr(exc, "context_mark", None)
    problem = getattr(exc, "problem", None) or str(exc).split("\n")[0]
    context = getattr(exc, "context", None)
    words = f"{context}, {problem}" if context else str(problem)
    if mark is None:
        return f"not valid YAML: {words}"
    return f"not valid YAML at line {mark.line + 1}, column {mark.column + 1}: {words}"
