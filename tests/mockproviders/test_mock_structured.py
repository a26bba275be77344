"""Structured outputs through the official SDKs and every front end: OpenAI chat ``parse`` and
``json_object``, Mistral ``json_schema``, Anthropic ``output_config`` and a forced tool."""

from __future__ import annotations

import json
from typing import Literal

import anthropic
import jsonschema
import openai
import pytest
from mock_sdk_client import SDK
from pydantic import BaseModel

HI = [{"role": "user", "content": "Describe the train"}]


class Car(BaseModel):
    kind: Literal["engine", "coach", "freight"]
    seats: int


class Train(BaseModel):
    name: str
    speed: float
    electric: bool
    cars: list[Car]
    operator: str | None


SCHEMA = {
    "type": "object",
    "properties": {
        "name": {"type": "string", "minLength": 3},
        "tags": {"type": "array", "items": {"enum": ["a", "b", "c"]}, "minItems": 2, "maxItems": 2},
        "stop": {"anyOf": [{"type": "integer", "minimum": 5, "maximum": 9}, {"type": "null"}]},
    },
    "required": ["name", "tags", "stop"],
    "additionalProperties": False,
}


async def test_openai_parse_with_a_pydantic_model(sdk: SDK) -> None:
    r = await sdk.openai.chat.completions.parse(model="gpt-4o-mini", messages=HI, response_format=Train)  # type: ignore[arg-type]
    parsed = r.choices[0].message.parsed
    assert isinstance(parsed, Train)
    assert r.choices[0].finish_reason == "stop"
    again = await sdk.openai.chat.completions.parse(model="gpt-4o-mini", messages=HI, response_format=Train)  # type: ignore[arg-type]
    assert again.choices[0].message.content == r.choices[0].message.content  # deterministic


@pytest.mark.parametrize("strict", [True, False])
async def test_openai_json_schema_answer_validates_and_streams_the_same(sdk: SDK, strict: bool) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMA, "strict": strict}}
    r = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    content = r.choices[0].message.content or ""
    jsonschema.validate(json.loads(content), SCHEMA)
    stream = await sdk.openai.chat.completions.create(
        model="gpt-4o",
        messages=HI,  # type: ignore[arg-type]
        response_format=fmt,  # type: ignore[arg-type]
        stream=True,
    )
    assert "".join([c.choices[0].delta.content or "" async for c in stream if c.choices]) == content


async def test_openai_strict_schema_must_be_closed(sdk: SDK) -> None:
    loose = {**SCHEMA, "additionalProperties": True}
    fmt = {"type": "json_schema", "json_schema": {"name": "trip", "schema": loose, "strict": True}}
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    assert "additionalProperties" in info.value.message
    assert info.value.param == "response_format"  # type: ignore[attr-defined]
    partial = {**SCHEMA, "required": ["name"]}
    fmt["json_schema"]["schema"] = partial  # type: ignore[index]
    with pytest.raises(openai.BadRequestError, match="Missing 'tags'"):
        await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    fmt["json_schema"]["strict"] = False  # type: ignore[index]
    ok = await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    assert "name" in json.loads(ok.choices[0].message.content or "")


async def test_openai_json_object_needs_the_word_json(sdk: SDK) -> None:
    fmt = {"type": "json_object"}
    with pytest.raises(openai.BadRequestError, match="must contain the word 'json'"):
        await sdk.openai.chat.completions.create(model="gpt-4o", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    asked = [{"role": "user", "content": "Answer in JSON"}]
    r = await sdk.openai.chat.completions.create(model="gpt-4o", messages=asked, response_format=fmt)  # type: ignore[arg-type]
    assert isinstance(json.loads(r.choices[0].message.content or ""), dict)


async def test_openai_bad_response_format_names_the_field(sdk: SDK) -> None:
    with pytest.raises(openai.BadRequestError) as info:
        await sdk.openai.chat.completions.create(
            model="gpt-4o",
            messages=HI,  # type: ignore[arg-type]
            response_format={"type": "xml"},  # type: ignore[arg-type, typeddict-item]
        )
    assert info.value.param == "response_format.type"  # type: ignore[attr-defined]


async def test_mistral_json_schema_and_json_object(sdk: SDK) -> None:
    fmt = {"type": "json_schema", "json_schema": {"name": "trip", "schema": SCHEMA, "strict": True}}
    r = await sdk.mistral.chat.complete_async(model="mistral-small-latest", messages=HI, response_format=fmt)  # type: ignore[arg-type]
    assert r.choices
    jsonschema.validate(json.loads(r.choices[0].message.content), SCHEMA)  # type: ignore[arg-type]
    parsed = await sdk.mistral.chat.parse_async(Train, model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    assert isinstance(parsed.choices[0].message.parsed, Train)  # type: ignore[index, union-attr]
    obj = await sdk.mistral.chat.complete_async(
        model="mistral-small-latest",
        messages=HI,  # type: ignore[arg-type]
        response_format={"type": "json_object"},
    )
    assert isinstance(json.loads(obj.choices[0].message.content), dict)  # type: ignore[arg-type]


async def test_anthropic_parse_with_output_config(sdk: SDK) -> None:
    r = await sdk.anthropic.messages.parse(
        model="claude-haiku-4-5",
        max_tokens=1024,
        messages=HI,  # type: ignore[arg-type]
        output_format=Train,
    )
    assert isinstance(r.parsed_output, Train)
    raw = await sdk.anthropic.messages.create(
        model="claude-haiku-4-5",
        max_tokens=1024,
        messages=HI,  # type: ignore[arg-type]
        output_config={"format": {"type": "json_schema", "schema": SCHEMA}},
    )
    assert raw.content[0].type == "text"
    jsonschema.validate(json.loads(raw.content[0].text), SCHEMA)


async def test_anthropic_forced_tool_input_validates(sdk: SDK) -> None:
    tool = {"name": "record_trip", "description": "Record a trip", "input_schema": SCHEMA}
    r = await sdk.anthropic.messages.create(
        model="claude-sonnet-4-6",
        max_tokens=512,
        messages=HI,  # type: ignore[arg-type]
        tools=[tool],  # type: ignore[list-item]
        tool_choice={"type": "tool", "name": "record_trip"},
    )
    assert r.stop_reason == "tool_use"
    block = r.content[0]
    assert block.type == "tool_use"
    jsonschema.validate(block.input, SCHEMA)


async def test_anthropic_bad_output_config_names_the_field(sdk: SDK) -> None:
    with pytest.raises(anthropic.BadRequestError, match=r"output_config\.format\.schema"):
        await sdk.anthropic.messages.create(
            model="claude-haiku-4-5",
            max_tokens=64,
            messages=HI,  # type: ignore[arg-type]
            output_config={"format": {"type": "json_schema"}},  # type: ignore[typeddict-item]
        )
