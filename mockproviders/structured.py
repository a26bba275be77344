"""Structured outputs: the response formats each provider takes, and JSON that follows a schema.

What each API sends to ask for JSON (parsed here into one :class:`ResponseFormat`):

- OpenAI chat: ``response_format: {type: json_schema, json_schema: {name, schema, strict}}`` or
  ``{type: json_object}`` (then a message must mention "JSON", as the real API insists);
- OpenAI Responses: ``text: {format: {type: json_schema, name, schema, strict}}`` or
  ``{type: json_object}``;
- Mistral: ``response_format`` as OpenAI's chat (``json_schema`` or ``json_object``);
- Anthropic: ``output_config: {format: {type: json_schema, schema}}`` (what ``messages.parse`` in
  the installed SDK sends), or a forced tool whose ``input_schema`` is the schema.

With ``strict: true`` OpenAI refuses a schema whose objects do not set
``additionalProperties: false`` and list every property in ``required``; so does the mock.

:func:`value_for_schema` builds a value that validates against a schema: types (and type lists),
``required``, ``enum``/``const``, arrays (``items``, ``prefixItems``, ``minItems``/``maxItems``,
``uniqueItems``), nested objects, ``anyOf``/``oneOf``/``allOf``, ``$ref`` into ``$defs``
(recursive schemas end at a bounded depth), numeric bounds and ``multipleOf``, string lengths and
common ``format`` values. A ``pattern`` is honoured only when one of a few candidates matches it.
The value is deterministic for (key, schema).
"""

from __future__ import annotations

import json
import math
import random
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

from mockproviders.errors import FieldError

FormatKind = Literal["text", "json_object", "json_schema"]
_VOCABULARY = (
    "switch track signal route model answer steady quick north south clear calm bright simple "
    "junction platform express local freight station morning evening useful honest"
)
_WORDS = tuple(_VOCABULARY.split())
_MAX_DEPTH = 6  # past this, optional parts are left out so recursive schemas end
_FORMATS = {
    "date-time": "2025-01-01T12:00:00Z",
    "date": "2025-01-01",
    "time": "12:00:00Z",
    "email": "mock@example.com",
    "uuid": "00000000-0000-4000-8000-000000000000",
    "uri": "https://example.com/mock",
    "hostname": "example.com",
    "ipv4": "192.0.2.1",
    "ipv6": "2001:db8::1",
    "duration": "P1D",
}


@dataclass(frozen=True, slots=True)
class ResponseFormat:
    """What shape the answer's text must have: any text, any JSON object, or a schema's JSON."""

    kind: FormatKind
    schema: dict[str, Any] | None = None
    name: str | None = None
    strict: bool = False


Loc = Sequence[str | int]


def _obj(value: Any, loc: Loc) -> dict[str, Any]:
    if not isinstance(value, dict):
        kind = "null" if value is None else type(value).__name__
        raise FieldError(loc, f"expected an object, but got {kind} instead.", "type", value)
    return value


def _kind(spec: Mapping[str, Any], loc: Loc) -> str:
    kind = spec.get("type")
    if kind is None:
        raise FieldError((*loc, "type"), "Field required", "missing", dict(spec))
    if kind not in ("text", "json_object", "json_schema"):
        raise FieldError(
            (*loc, "type"), "expected one of 'text', 'json_object', 'json_schema'.", "value", kind
        )
    return str(kind)


def _schema_format(
    holder: Mapping[str, Any], loc: Loc, *, schema_key: str = "schema", need_name: bool = True
) -> ResponseFormat:
    name = holder.get("name")
    if need_name and name is None:
        raise FieldError((*loc, "name"), "Field required", "missing", dict(holder))
    if name is not None and (not isinstance(name, str) or not re.fullmatch(r"[A-Za-z0-9_-]{1,64}", name)):
        raise FieldError(
            (*loc, "name"), "expected a string of letters, digits, '_' or '-' (at most 64).", "value", name
        )
    schema = holder.get(schema_key)
    if schema is None:
        schema = {}  # OpenAI: an absent schema means any JSON
    schema = _obj(schema, (*loc, schema_key))
    strict = holder.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise FieldError((*loc, "strict"), "expected a boolean.", "type", strict)
    return ResponseFormat("json_schema", schema, name, bool(strict))


def openai_chat_format(value: Any, loc: Loc = ("response_format",)) -> ResponseFormat | None:
    """OpenAI's (and Mistral's) chat ``response_format``; None for plain text."""
    if value is None:
        return None
    spec = _obj(value, loc)
    kind = _kind(spec, loc)
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    inner = spec.get("json_schema")
    if inner is None:
        raise FieldError((*loc, "json_schema"), "Field required", "missing", dict(spec))
    return _schema_format(_obj(inner, (*loc, "json_schema")), (*loc, "json_schema"))


def responses_text_format(text: Any) -> ResponseFormat | None:
    """The Responses API's ``text.format``; None for plain text."""
    if text is None:
        return None
    spec = _obj(text, ("text",))
    fmt = spec.get("format")
    if fmt is None:
        return None
    fmt = _obj(fmt, ("text", "format"))
    kind = _kind(fmt, ("text", "format"))
    if kind == "text":
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    return _schema_format(fmt, ("text", "format"))


def anthropic_output_format(config: Any) -> ResponseFormat | None:
    """Anthropic's ``output_config.format`` (``{type: json_schema, schema}``); None if absent."""
    if config is None:
        return None
    spec = _obj(config, ("output_config",))
    fmt = spec.get("format")
    if fmt is None:
        return None
    fmt = _obj(fmt, ("output_config", "format"))
    if fmt.get("type") != "json_schema":
        raise FieldError(
            ("output_config", "format", "type"), "Input should be 'json_schema'", "value", fmt.get("type")
        )
    if "schema" not in fmt:
        raise FieldError(("output_config", "format", "schema"), "Field required", "missing", fmt)
    return _schema_format(fmt, ("output_config", "format"), need_name=False)


def check_strict(fmt: ResponseFormat, loc: Loc) -> None:
    """OpenAI's strict-mode rules: every object closes ``additionalProperties`` and requires all
    of its properties. Raises a :class:`FieldError` naming the schema and the place."""
    if fmt.kind != "json_schema" or not fmt.strict or fmt.schema is None:
        return

    def walk(node: Any, where: tuple[str, ...]) -> None:
        if isinstance(node, list):
            for i, item in enumerate(node):
                walk(item, (*where, str(i)))
            return
        if not isinstance(node, dict):
            return
        is_object = node.get("type") == "object" or (
            isinstance(node.get("type"), list) and "object" in node["type"]
        )
        if is_object or "properties" in node:
            context = f"context=({', '.join(repr(w) for w in where)})"
            if node.get("additionalProperties") is not False:
                raise FieldError(
                    loc,
                    f"Invalid schema for response_format '{fmt.name}': In {context}, 'additionalProperties' "
                    "is required to be supplied and to be false.",
                )
            props = node.get("properties") or {}
            required = node.get("required") or []
            missing = [k for k in props if k not in required]
            if missing:
                raise FieldError(
                    loc,
                    f"Invalid schema for response_format '{fmt.name}': In {context}, 'required' is required "
                    f"to be supplied and to be an array including every key in properties. "
                    f"Missing '{missing[0]}'.",
                )
        for key, sub in node.items():
            if key in ("properties", "$defs", "definitions") and isinstance(sub, dict):
                for name, child in sub.items():
                    walk(child, (*where, key, name))
            elif key in ("items", "anyOf", "oneOf", "allOf", "prefixItems", "additionalProperties"):
                walk(sub, (*where, key))

    walk(fmt.schema, ())


def mentions_json(texts: Sequence[str]) -> bool:
    """Whether any text mentions JSON (OpenAI requires it for ``json_object``)."""
    return any("json" in t.lower() for t in texts)


def structured_text(key: int, fmt: ResponseFormat) -> str:
    """The answer text for ``fmt``: JSON following its schema, or a small JSON object."""
    if fmt.kind == "json_schema" and fmt.schema is not None:
        return json.dumps(value_for_schema(key, fmt.schema))
    rng = random.Random(key)
    return json.dumps({"answer": rng.choice(_WORDS), "confidence": round(rng.uniform(0, 1), 2)})


def value_for_schema(key: int, schema: Any) -> Any:
    """A value that validates against ``schema`` (see the module docstring), deterministic."""
    return _Builder(random.Random(key), schema if isinstance(schema, dict) else {}).value(
        schema if isinstance(schema, (dict, bool)) else {}, 0
    )


class _Builder:
    def __init__(self, rng: random.Random, root: dict[str, Any]) -> None:
        self.rng = rng
        self.root = root

    def resolve(self, schema: dict[str, Any]) -> dict[str, Any]:
        seen = 0
        while "$ref" in schema and seen < 32:
            ref = schema["$ref"]
            target: Any = self.root
            if isinstance(ref, str) and ref.startswith("#"):
                for part in ref[1:].split("/"):
                    if part:
                        part = part.replace("~1", "/").replace("~0", "~")
                        target = target.get(part) if isinstance(target, dict) else None
            if not isinstance(target, dict):
                return {}
            rest = {k: v for k, v in schema.items() if k != "$ref"}
            schema = {**target, **rest}
            seen += 1
        return schema

    def value(self, schema: Any, depth: int) -> Any:
        if schema is True or not isinstance(schema, dict):
            return self.rng.choice(_WORDS)
        schema = self.resolve(schema)
        if "const" in schema:
            return schema["const"]
        if isinstance(schema.get("enum"), list) and schema["enum"]:
            return self.rng.choice(schema["enum"])
        if isinstance(schema.get("allOf"), list) and schema["allOf"]:
            merged = self.merge(schema)
            return self.value(merged, depth)
        for key in ("anyOf", "oneOf"):
            options = schema.get(key)
            if isinstance(options, list) and options:
                return self.value(self.pick_branch(options, depth), depth + 1)
        kind = schema.get("type")
        if isinstance(kind, list):
            choices = [k for k in kind if k != "null"] or ["null"]
            kind = "null" if depth >= _MAX_DEPTH and "null" in kind else self.rng.choice(choices)
        if kind is None:
            if "properties" in schema or "required" in schema:
                kind = "object"
            elif "items" in schema or "prefixItems" in schema:
                kind = "array"
        maker = getattr(self, f"make_{kind}", None)
        if maker is None:
            return self.rng.choice(_WORDS)
        return maker(schema, depth)

    def merge(self, schema: dict[str, Any]) -> dict[str, Any]:
        # One object that satisfies every part: a property named by several parts must follow
        # all of their schemas, and a closed part admits only the properties it names.
        merged: dict[str, Any] = {k: v for k, v in schema.items() if k != "allOf"}
        parts = [self.resolve(p) if isinstance(p, dict) else {} for p in [merged, *schema["allOf"]]]
        props: dict[str, list[Any]] = {}
        allowed: set[str] | None = None
        for part in parts:
            own: dict[str, Any] = part["properties"] if isinstance(part.get("properties"), dict) else {}
            for name, sub in own.items():
                props.setdefault(name, []).append(sub)
            if part.get("additionalProperties") is False:
                allowed = set(own) if allowed is None else allowed & set(own)
            for k, v in part.items():
                if k == "required" and isinstance(v, list):
                    merged["required"] = [*merged.get("required", []), *v]
                elif k not in ("properties", "allOf", "additionalProperties"):
                    merged.setdefault(k, v)
        merged["properties"] = {
            name: subs[0] if len(subs) == 1 else {"allOf": subs}
            for name, subs in props.items()
            if allowed is None or name in allowed
        }
        if allowed is not None:
            merged["additionalProperties"] = False
        return merged

    def pick_branch(self, options: list[Any], depth: int) -> Any:
        if depth >= _MAX_DEPTH:  # prefer a branch that ends a recursion
            for option in options:
                if isinstance(option, dict) and self.resolve(option).get("type") == "null":
                    return option
            for option in options:
                if isinstance(option, dict) and "$ref" not in option:
                    return option
        return options[self.rng.randrange(len(options))]

    def make_null(self, schema: dict[str, Any], depth: int) -> None:
        return None

    def make_boolean(self, schema: dict[str, Any], depth: int) -> bool:
        return bool(self.rng.getrandbits(1))

    def make_object(self, schema: dict[str, Any], depth: int) -> dict[str, Any]:
        props: dict[str, Any] = schema["properties"] if isinstance(schema.get("properties"), dict) else {}
        required = [r for r in schema.get("required", []) if isinstance(r, str)]
        out: dict[str, Any] = {}
        for name, sub in props.items():
            if name in required or depth < _MAX_DEPTH:
                out[name] = self.value(sub, depth + 1)
        extra = schema.get("additionalProperties")
        for name in required:
            if name not in out:  # required but not described: anything the schema allows
                out[name] = self.value(extra if isinstance(extra, dict) else {"type": "string"}, depth + 1)
        low = schema.get("minProperties")
        if isinstance(low, int) and extra is not False:
            i = 0
            while len(out) < low:
                out[f"key_{i}"] = self.value(extra if isinstance(extra, dict) else {}, depth + 1)
                i += 1
        return out

    def make_array(self, schema: dict[str, Any], depth: int) -> list[Any]:
        prefix: list[Any] = schema["prefixItems"] if isinstance(schema.get("prefixItems"), list) else []
        items = schema.get("items", {})
        low = _int(schema, "minItems", 0)
        high = _int(schema, "maxItems", low + 3)
        if depth >= _MAX_DEPTH:
            size = low
        else:
            size = self.rng.randint(max(low, 1 if high >= 1 else 0), max(low, min(high, low + 3)))
        size = max(size, min(len(prefix), high)) if prefix else size
        out: list[Any] = []
        unique = schema.get("uniqueItems") is True
        for i in range(size):
            sub = prefix[i] if i < len(prefix) else (items if items is not False else {})
            for _ in range(8 if unique else 1):
                candidate = self.value(sub, depth + 1)
                if not unique or candidate not in out:
                    break
            if unique and candidate in out and len(out) >= low:
                break  # no new distinct value: stop here if the minimum allows it
            out.append(candidate)
        return out

    def make_integer(self, schema: dict[str, Any], depth: int) -> int:
        low, high = _bounds(schema, integer=True)
        step = schema.get("multipleOf")
        if isinstance(step, int) and not isinstance(step, bool) and step > 0:
            first = -(-low // step) * step
            last = (high // step) * step
            if first <= last:
                return first + step * self.rng.randint(0, min(100, (last - first) // step))
        return self.rng.randint(int(low), int(high))

    def make_number(self, schema: dict[str, Any], depth: int) -> float | int:
        step = schema.get("multipleOf")
        if isinstance(step, (int, float)) and not isinstance(step, bool) and step > 0:
            return _multiple(schema, step)
        low, high = _bounds(schema, integer=False)
        return round(self.rng.uniform(low, high), 2) if high - low > 0.02 else (low + high) / 2

    def make_string(self, schema: dict[str, Any], depth: int) -> str:
        fmt = schema.get("format")
        low = _int(schema, "minLength", 0)
        high = _int(schema, "maxLength", -1)
        high_or_none = None if high < 0 else high
        pattern = schema.get("pattern")
        candidates = []
        if isinstance(fmt, str) and fmt in _FORMATS:
            candidates.append(_FORMATS[fmt])
        words = self.rng.sample(_WORDS, 3)
        candidates += [" ".join(words[:2]), words[0], "a", "0", "mock-1", "A1"]
        for text in candidates:
            text = _fit(text, low, high_or_none)
            if not isinstance(pattern, str) or _search(pattern, text):
                return text
        return _fit(candidates[0], low, high_or_none)


def _int(schema: Mapping[str, Any], key: str, default: int) -> int:
    value = schema.get(key)
    return value if isinstance(value, int) and not isinstance(value, bool) and value >= 0 else default


def _search(pattern: str, text: str) -> bool:
    try:
        return re.search(pattern, text) is not None
    except re.error:
        return True


def _fit(text: str, low: int, high: int | None) -> str:
    while len(text) < low:
        text += " mock"
    text = text[: max(low, len(text))]
    if high is not None:
        text = text[:high]
    return text


def _bounds(schema: dict[str, Any], *, integer: bool) -> tuple[Any, Any]:
    def num(key: str) -> float | None:
        v = schema.get(key)
        return v if isinstance(v, (int, float)) and not isinstance(v, bool) else None

    low, high = num("minimum"), num("maximum")
    ex_low, ex_high = num("exclusiveMinimum"), num("exclusiveMaximum")
    gap = 1 if integer else 0.01
    if ex_low is not None:
        low = max(low, ex_low + gap) if low is not None else ex_low + gap
    if ex_high is not None:
        high = min(high, ex_high - gap) if high is not None else ex_high - gap
    if low is None and high is None:
        low, high = 1, 100
    elif low is None:
        low = high - 100  # type: ignore[operator]
    elif high is None:
        high = low + 100
    if integer:
        return math.ceil(low), math.floor(high)  # type: ignore[arg-type]
    return low, high


def _multiple(schema: dict[str, Any], step: float) -> float | int:
    low, high = _bounds(schema, integer=False)
    n = math.ceil(low / step)
    if n * step > high:
        n = math.floor(high / step)
    value = n * step
    return int(value) if float(value).is_integer() and isinstance(step, int) else value
