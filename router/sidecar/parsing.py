"""Reading a request body, whatever the front end (chat completions, Messages, Responses).

Validation is by hand rather than with pydantic: it runs on every request, and a hand-written
check that names the exact field (``messages[2].content[0].text``) costs a few microseconds.
Every problem raises :class:`WireError`, which the app turns into a 400 in the front end's shape.
The tools and text-parts parsers are shared: each front end passes only how its shape differs.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from router.types import ChatRequest, TextPart, ToolSpec
from turnout import safejson


class WireError(ValueError):
    """A request body the sidecar cannot accept; ``param`` names the offending field."""

    def __init__(self, message: str, param: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.param = param


def _type_name(value: Any) -> str:
    if value is None:
        return "null"
    return {
        bool: "boolean",
        int: "integer",
        float: "number",
        str: "string",
        list: "array",
        dict: "object",
    }.get(type(value), type(value).__name__)


def _want(value: Any, kind: type | tuple[type, ...], path: str, what: str) -> Any:
    if not isinstance(value, kind) or (isinstance(value, bool) and kind in (int, float, (int, float))):
        raise WireError(f"Invalid type for '{path}': expected {what}, but got {_type_name(value)}.", path)
    return value


def _opt_number(body: dict[str, Any], name: str, lo: float, hi: float) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    _want(value, (int, float), name, "a number")
    if not lo <= value <= hi:
        raise WireError(f"Invalid value for '{name}': {value} is not between {lo} and {hi}.", name)
    return float(value)


def _opt_int(body: dict[str, Any], name: str, lo: int = 1) -> int | None:
    value = body.get(name)
    if value is None:
        return None
    _want(value, int, name, "an integer")
    if value < lo:
        raise WireError(f"Invalid value for '{name}': {value} is less than the minimum of {lo}.", name)
    return int(value)


def decode_json(raw: bytes) -> dict[str, Any]:
    """The body as a JSON object, or a WireError saying where it broke."""
    try:
        body = safejson.loads(raw, what="The request body")
    except safejson.JSONError as exc:
        raise WireError(f"{exc}.") from None
    if not isinstance(body, dict):
        raise WireError(f"The request body must be a JSON object, not {_type_name(body)}.")
    return body


PartCheck = Callable[[dict[str, Any], str], None]
"""One API shape's check that a content part (``part``, at ``path``) is text: raises WireError if not."""


def parse_text_parts(
    value: Any, path: str, kind: str, check: PartCheck, *, cache: bool = True
) -> str | list[TextPart]:
    """A message's content in any front end's shape: a string, or an array of text parts (``kind``:
    what the shape calls them), each checked by ``check``; ``cache``: read ``cache_control`` marks."""
    if isinstance(value, str):
        return value
    _want(value, list, path, f"a string or an array of {kind}")
    parts: list[TextPart] = []
    for i, part in enumerate(value):
        ppath = f"{path}[{i}]"
        _want(part, dict, ppath, "an object")
        check(part, ppath)
        text = _want(part.get("text"), str, f"{ppath}.text", "a string")
        parts.append(TextPart(text, cache and isinstance(part.get("cache_control"), dict)))
    return parts


ToolFields = Callable[[dict[str, Any], str], tuple[dict[str, Any], str]]
"""One API shape's reading of a tool (``tool``, its ``path``): its type checked, the object that
holds its name, description and schema, and that object's path."""


def parse_tools(
    value: Any, fields: ToolFields, schema: str, *, schema_required: bool = False
) -> list[ToolSpec]:
    """A request's ``tools`` array, in any front end's shape: ``fields`` finds each tool's parts,
    ``schema`` names its JSON-schema field (required or not)."""
    _want(value, list, "tools", "an array")
    specs = []
    for i, tool in enumerate(value):
        path = f"tools[{i}]"
        _want(tool, dict, path, "an object")
        fn, at = fields(tool, path)
        spec = ToolSpec(name=_want(fn.get("name"), str, f"{at}.name", "a string"))
        if fn.get("description") is not None:
            spec.description = _want(fn["description"], str, f"{at}.description", "a string")
        if schema_required or fn.get(schema) is not None:
            spec.parameters = _want(fn.get(schema), dict, f"{at}.{schema}", "an object")
        specs.append(spec)
    return specs


def parse_caller(body: dict[str, Any], req: ChatRequest) -> None:
    """The caller's ``user`` and string ``metadata`` (routing hints, never sent upstream), read the
    same way by the Chat Completions and Responses front ends."""
    if body.get("user") is not None:
        req.user = _want(body["user"], str, "user", "a string")
    metadata = body.get("metadata")
    if metadata is not None:
        _want(metadata, dict, "metadata", "an object")
        for k, v in metadata.items():
            _want(v, str, f"metadata.{k}", "a string")
        req.metadata = dict(metadata)


def _model(body: dict[str, Any]) -> str:
    model = body.get("model")
    if model is None:
        raise WireError("Missing required parameter: 'model'.", "model")
    _want(model, str, "model", "a string")
    if not model:
        raise WireError("Invalid value for 'model': empty string.", "model")
    return str(model)
