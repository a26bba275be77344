"""Structured outputs: one :class:`~router.types.ResponseFormat`, read from the callers' shapes
and written in each provider's.

- OpenAI chat and Mistral: ``response_format: {type: json_schema, json_schema: {name, schema,
  strict}}`` or ``{type: json_object}`` (:func:`to_openai`).
- Anthropic: a forced tool whose ``input_schema`` is the schema; its input comes back as the
  answer's JSON text (:mod:`router.adapters.anthropic`), so a fallback from OpenAI to Claude
  still answers schema-valid JSON.

The readers raise :class:`FormatError` naming the offending field; front ends turn it into a 400
in their own shape.
"""

from __future__ import annotations

from typing import Any

from router.types import ResponseFormat

__all__ = ["FormatError", "from_openai", "from_responses", "to_openai"]


class FormatError(ValueError):
    """A response format that cannot be honoured; ``param`` names the field."""

    def __init__(self, message: str, param: str) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _schema_fields(spec: dict[str, Any], path: str) -> ResponseFormat:
    name = spec.get("name", "response")
    if not isinstance(name, str) or not name:
        raise FormatError(f"Invalid value for '{path}.name': expected a non-empty string.", f"{path}.name")
    schema = spec.get("schema")
    if schema is None:
        schema = {"type": "object"}
    if not isinstance(schema, dict):
        raise FormatError(f"Invalid type for '{path}.schema': expected an object.", f"{path}.schema")
    strict = spec.get("strict")
    if strict is not None and not isinstance(strict, bool):
        raise FormatError(f"Invalid type for '{path}.strict': expected a boolean.", f"{path}.strict")
    description = spec.get("description")
    if description is not None and not isinstance(description, str):
        raise FormatError(f"Invalid type for '{path}.description': expected a string.", f"{path}.description")
    return ResponseFormat("json_schema", name, schema, strict, description)


def _kind(value: Any, path: str) -> str | None:
    """The format's type; None for plain text (no structured output)."""
    if not isinstance(value, dict):
        raise FormatError(f"Invalid type for '{path}': expected an object.", path)
    kind = value.get("type")
    if kind == "text":
        return None
    if kind not in ("json_schema", "json_object"):
        raise FormatError(
            f"Invalid value for '{path}.type': expected 'text', 'json_object' or 'json_schema', "
            f"got {kind!r}.",
            f"{path}.type",
        )
    return str(kind)


def from_openai(value: Any, path: str = "response_format") -> ResponseFormat | None:
    """Chat completions' ``response_format``."""
    kind = _kind(value, path)
    if kind is None:
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    spec = value.get("json_schema")
    if not isinstance(spec, dict):
        raise FormatError(f"Missing required parameter: '{path}.json_schema'.", f"{path}.json_schema")
    return _schema_fields(spec, f"{path}.json_schema")


def from_responses(value: Any, path: str = "text.format") -> ResponseFormat | None:
    """The Responses API's ``text.format`` (name, schema and strict beside the type)."""
    kind = _kind(value, path)
    if kind is None:
        return None
    if kind == "json_object":
        return ResponseFormat("json_object")
    return _schema_fields(value, path)


def to_openai(fmt: ResponseFormat) -> dict[str, Any]:
    """OpenAI's (and Mistral's) ``response_format``."""
    if fmt.type == "json_object":
        return {"type": "json_object"}
    spec: dict[str, Any] = {"name": fmt.name, "schema": fmt.schema or {"type": "object"}}
    if fmt.strict is not None:
        spec["strict"] = fmt.strict
    if fmt.description:
        spec["description"] = fmt.description
    return {"type": "json_schema", "json_schema": spec}


def to_responses(fmt: ResponseFormat | None) -> dict[str, Any]:
    """The Responses API's ``text.format`` as an answer echoes it."""
    if fmt is None:
        return {"type": "text"}
    if fmt.type == "json_object":
        return {"type": "json_object"}
    out: dict[str, Any] = {
        "type": "json_schema",
        "name": fmt.name,
        "schema": fmt.schema or {"type": "object"},
    }
    out["strict"] = fmt.strict
    if fmt.description:
        out["description"] = fmt.description
    return out
