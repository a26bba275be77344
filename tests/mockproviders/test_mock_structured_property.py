"""Property: for any schema of a generated family, the mock's structured answer validates.

The family covers what applications send: typed leaves with bounds and formats, enums and
consts, nullable type lists, arrays with sizes, nested objects with required and closed
properties, ``anyOf``/``oneOf``/``allOf``, and ``$ref`` into ``$defs`` (pydantic's output).
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import jsonschema
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mockproviders.core import MockCore
from mockproviders.structured import value_for_schema

HEADERS = {"authorization": "Bearer k", "anthropic-version": "2023-06-01"}
SETTINGS = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
names = st.text("abcdefgh_", min_size=1, max_size=6)


@st.composite
def integer_schema(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "integer"}
    low = draw(st.none() | st.integers(-50, 50))
    if low is not None:
        s["exclusiveMinimum" if draw(st.booleans()) else "minimum"] = low
    if draw(st.booleans()):
        # at least 4 integers in range, so a multipleOf of 1-3 always has one: the family stays satisfiable
        s["maximum"] = (low if low is not None else 0) + draw(st.integers(4, 40))
    if draw(st.booleans()):
        s["multipleOf"] = draw(st.integers(1, 3))
    return s


@st.composite
def number_schema(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "number"}
    low = draw(st.none() | st.floats(-100, 100, allow_nan=False))
    if low is not None:
        s["minimum"] = low
        if draw(st.booleans()):
            s["exclusiveMaximum"] = low + draw(st.floats(0.5, 50))
    return s


@st.composite
def string_schema(draw: st.DrawFn) -> dict[str, Any]:
    s: dict[str, Any] = {"type": "string"}
    low = draw(st.integers(0, 12))
    if draw(st.booleans()):
        s["minLength"] = low
    if draw(st.booleans()):
        s["maxLength"] = low + draw(st.integers(0, 10))
    if draw(st.booleans()):
        s["format"] = draw(st.sampled_from(["date-time", "date", "email", "uuid", "uri"]))
    return s


leaves = st.one_of(
    integer_schema(),
    number_schema(),
    string_schema(),
    st.just({"type": "boolean"}),
    st.just({"type": "null"}),
    st.lists(st.integers(-3, 3) | names, min_size=1, max_size=4, unique=True).map(lambda e: {"enum": e}),
    (st.integers() | names).map(lambda c: {"const": c}),
    st.sampled_from(["string", "integer", "boolean"]).map(lambda t: {"type": [t, "null"]}),
    st.just({"$ref": "#/$defs/Point"}),
)


def _extend(inner: st.SearchStrategy[dict[str, Any]]) -> st.SearchStrategy[dict[str, Any]]:
    objects = st.dictionaries(names, inner, max_size=4).flatmap(
        lambda props: st.builds(
            lambda req, closed: {
                "type": "object",
                "properties": props,
                "required": [k for k, keep in zip(props, req, strict=False) if keep],
                **({"additionalProperties": False} if closed else {}),
            },
            st.lists(st.booleans(), min_size=len(props), max_size=len(props)),
            st.booleans(),
        )
    )
    arrays = st.builds(
        lambda items, low, extra: {"type": "array", "items": items, "minItems": low, "maxItems": low + extra},
        inner,
        st.integers(0, 3),
        st.integers(0, 3),
    )
    unions = st.lists(inner, min_size=1, max_size=3).map(lambda opts: {"anyOf": opts})
    one = st.tuples(inner).map(lambda opts: {"oneOf": list(opts)})
    # allOf as applications use it: parts that describe different properties of one open object
    every = st.dictionaries(names, inner, min_size=1, max_size=4).map(
        lambda props: {
            "allOf": [
                {
                    "type": "object",
                    "properties": dict(list(props.items())[::2]),
                    "required": list(props)[::2],
                },
                {"type": "object", "properties": dict(list(props.items())[1::2])},
            ]
        }
    )
    return objects | arrays | unions | one | every


schemas = st.recursive(leaves, _extend, max_leaves=12).map(
    lambda s: {
        **s,
        "$defs": {
            "Point": {
                "type": "object",
                "properties": {
                    "x": {"type": "integer"},
                    "next": {"anyOf": [{"$ref": "#/$defs/Point"}, {"type": "null"}]},
                },
                "required": ["x", "next"],
                "additionalProperties": False,
            }
        },
    }
)


@SETTINGS
@given(schemas, st.integers(0, 2**32))
def test_value_for_any_schema_validates(schema: dict[str, Any], key: int) -> None:
    jsonschema.validate(value_for_schema(key, schema), schema)


def _answer(provider: str, schema: dict[str, Any]) -> Any:
    async def go() -> Any:
        core = MockCore(seed=7)
        if provider == "openai":
            fmt = {"type": "json_schema", "json_schema": {"name": "out", "schema": schema}}
            body = {
                "model": "gpt-4o-mini",
                "messages": [{"role": "user", "content": "hi"}],
                "response_format": fmt,
            }
            r = await core.dispatch("POST", "/openai/v1/chat/completions", HEADERS, json.dumps(body).encode())
            assert r.status == 200, r.body
            return json.loads(json.loads(r.body or b"")["choices"][0]["message"]["content"])
        tool = {"name": "out", "input_schema": schema}
        body = {
            "model": "claude-haiku-4-5",
            "max_tokens": 4096,
            "messages": [{"role": "user", "content": "hi"}],
            "tools": [tool],
            "tool_choice": {"type": "tool", "name": "out"},
        }
        r = await core.dispatch("POST", "/anthropic/v1/messages", HEADERS, json.dumps(body).encode())
        assert r.status == 200, r.body
        return json.loads(r.body or b"")["content"][0]["input"]

    return asyncio.run(go())


@SETTINGS
@given(st.sampled_from(["openai", "anthropic"]), schemas)
def test_the_mocks_structured_answer_validates(provider: str, schema: dict[str, Any]) -> None:
    if provider == "anthropic":  # a tool's input is an object: the schema is one property of it
        defs = schema.pop("$defs")
        schema = {"type": "object", "properties": {"v": schema}, "required": ["v"], "$defs": defs}
    jsonschema.validate(_answer(provider, schema), schema)
