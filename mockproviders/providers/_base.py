"""What every provider module provides, and small validation helpers they share.

Validation helpers raise :class:`~mockproviders.errors.FieldError` with the field's path; the
core turns it into the provider's own 400/422 body.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar, Protocol

from mockproviders.answers import ChatQuery, Choice
from mockproviders.errors import FieldError
from mockproviders.types import Endpoint, MockResponse, Provider, StreamEvent

Loc = Sequence[str | int]


@dataclass(slots=True)
class Usage:
    """Token counts of one answer, provider-neutral."""

    prompt_tokens: int
    completion_tokens: int
    cache_creation_tokens: int = 0
    cache_read_tokens: int = 0
    cache_creation_1h_tokens: int = 0  # of cache_creation_tokens, those written for an hour

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


@dataclass(slots=True)
class Render:
    """What a provider module needs to render an answer besides the answer itself."""

    response_id: str  # hex digits; the provider adds its own prefix
    created: int
    model: str


@dataclass(slots=True)
class EmbeddingQuery:
    model: str
    inputs: list[str]
    dimensions: int | None = None
    base64: bool = False


class ProviderAPI(Protocol):
    """One provider's wire format. Stateless; the core calls it with parsed JSON."""

    name: ClassVar[Provider]

    def endpoint(self, method: str, path: str) -> Endpoint:
        """Which endpoint ``method path`` (provider-relative) is; ``"other"`` if none."""
        ...

    def api_key(self, headers: Mapping[str, str]) -> str | None:
        """The API key the request carries, or None."""
        ...

    def auth_error(self, key: str | None, rid: str) -> MockResponse:
        """The 401 for a missing (``key`` None) or a wrong key."""
        ...

    def header_error(self, headers: Mapping[str, str], rid: str) -> MockResponse | None:
        """The error for a missing or bad required header (Anthropic's version), else None."""
        ...

    def parse_chat(self, body: Any) -> ChatQuery: ...

    def render_chat(self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage) -> dict[str, Any]: ...

    def stream_chat(
        self, r: Render, q: ChatQuery, choices: list[Choice], usage: Usage
    ) -> Iterator[StreamEvent]: ...

    def parse_embeddings(self, body: Any) -> EmbeddingQuery: ...

    def render_embeddings(
        self, r: Render, vectors: list[list[float] | str], prompt_tokens: int
    ) -> dict[str, Any]: ...

    def render_models(self, models: Sequence[str], created: int) -> dict[str, Any]: ...

    def render_model(self, model: str, created: int) -> dict[str, Any]: ...

    def not_found(self, method: str, path: str, rid: str) -> MockResponse:
        """The 404 for an unknown path."""
        ...

    def unknown_model(self, model: str, rid: str) -> MockResponse:
        """The error for a model id the mock does not know."""
        ...

    def not_embedding_model(self, model: str, rid: str) -> MockResponse:
        """The error for a chat model asked for embeddings."""
        ...

    def fixed_dimensions(self, model: str, rid: str) -> MockResponse:
        """The error for ``dimensions`` sent to a model whose vectors have one size only."""
        ...


_TYPE_NAMES = {
    str: "a string",
    int: "an integer",
    bool: "a boolean",
    list: "an array",
    dict: "an object",
    float: "a number",
}


def type_name(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    return _TYPE_NAMES.get(type(value), type(value).__name__)


def body_object(body: Any) -> dict[str, Any]:
    if not isinstance(body, dict):
        raise FieldError((), f"the request body must be a JSON object, not {type_name(body)}", "type", body)
    return body


def need(obj: Mapping[str, Any], key: str, loc: Loc = ()) -> Any:
    if key not in obj:
        raise FieldError((*loc, key), "Field required", "missing", dict(obj))
    return obj[key]


def expect(value: Any, kinds: type | tuple[type, ...], loc: Loc, *, what: str | None = None) -> Any:
    """``value`` if it is of ``kinds`` (bool is never an int here), else a type error at ``loc``."""
    ok = isinstance(value, kinds) and not (isinstance(value, bool) and bool not in _as_tuple(kinds))
    if not ok:
        want = what or " or ".join(_TYPE_NAMES.get(k, k.__name__) for k in _as_tuple(kinds))
        raise FieldError(loc, f"expected {want}, but got {type_name(value)} instead.", "type", value)
    return value


def _as_tuple(kinds: type | tuple[type, ...]) -> tuple[type, ...]:
    return kinds if isinstance(kinds, tuple) else (kinds,)


def opt(
    obj: Mapping[str, Any],
    key: str,
    kinds: type | tuple[type, ...],
    loc: Loc = (),
    *,
    what: str | None = None,
) -> Any:
    """An optional field: None if absent or null, else type-checked."""
    value = obj.get(key)
    if value is None:
        return None
    return expect(value, kinds, (*loc, key), what=what)


def opt_int(
    obj: Mapping[str, Any], key: str, *, low: int, high: int | None = None, loc: Loc = ()
) -> int | None:
    value = opt(obj, key, int, loc)
    if value is not None and (value < low or (high is not None and value > high)):
        bound = f"between {low} and {high}" if high is not None else f"at least {low}"
        raise FieldError((*loc, key), f"expected a value {bound}, but got {value} instead.", "value", value)
    return value


def opt_number(obj: Mapping[str, Any], key: str, *, low: float, high: float, loc: Loc = ()) -> float | None:
    value = opt(obj, key, (int, float), loc, what="a number")
    if value is not None and not low <= value <= high:
        raise FieldError(
            (*loc, key), f"expected a number between {low} and {high}, but got {value}.", "value", value
        )
    return value


def stop_list(obj: Mapping[str, Any], key: str, max_items: int | None = 4) -> tuple[str, ...]:
    value = obj.get(key)
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    expect(value, list, (key,), what="a string or an array of strings")
    if max_items is not None and len(value) > max_items:
        raise FieldError((key,), f"expected at most {max_items} items, but got {len(value)}.", "value", value)
    for i, s in enumerate(value):
        expect(s, str, (key, i))
    return tuple(value)


def tool_schema_list(tools: Any, loc: Loc, *, wrapped: bool) -> list[tuple[str, Any]]:
    """Tools as (name, parameters schema). ``wrapped``: OpenAI-style ``{type, function: {...}}``."""
    expect(tools, list, loc)
    out = []
    for i, tool in enumerate(tools):
        expect(tool, dict, (*loc, i))
        spec = tool
        if wrapped:
            spec = expect(need(tool, "function", (*loc, i)), dict, (*loc, i, "function"))
            where: tuple[str | int, ...] = (*loc, i, "function")
        else:
            where = (*loc, i)
        name = expect(need(spec, "name", where), str, (*where, "name"))
        schema_key = "parameters" if wrapped else "input_schema"
        if wrapped:
            schema = spec.get(schema_key) or {}
        else:
            # a server tool (web_search…) has no schema to follow
            server_tool = tool.get("type") not in (None, "custom")
            schema = {} if server_tool else need(spec, schema_key, where)
        expect(schema, dict, (*where, schema_key))
        out.append((name, schema))
    return out


def dumps(payload: Any) -> str:
    return json.dumps(payload, separators=(",", ":"))
