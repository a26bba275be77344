"""One ``response_format`` in the router's ``ChatRequest``, translated by each adapter (OpenAI and
Mistral ``json_schema``, Anthropic a forced tool), answered by the mock over a socket with JSON
that validates against the schema, streamed or not."""

from __future__ import annotations

import json

import jsonschema
import pytest

from mockproviders.server import MockServer, create_app
from router import Router, parse_config
from router.types import ChatRequest, Message, ResponseFormat, StreamEnd

SCHEMA = {
    "type": "object",
    "properties": {
        "platform": {"type": "integer", "minimum": 1, "maximum": 12},
        "line": {"type": "string", "enum": ["north", "south"]},
        "stops": {"type": "array", "items": {"type": "string"}, "minItems": 1},
        "delay": {
            "anyOf": [
                {"type": "null"},
                {
                    "type": "object",
                    "properties": {"minutes": {"type": "number"}},
                    "required": ["minutes"],
                    "additionalProperties": False,
                },
            ]
        },
    },
    "required": ["platform", "line", "stops", "delay"],
    "additionalProperties": False,
}
DEPLOYMENTS = {
    "gpt": {"provider": "openai", "model": "gpt-4o-mini"},
    "claude": {"provider": "anthropic", "model": "claude-sonnet-4-5", "max_tokens": 256},
    "mistral": {"provider": "mistral", "model": "mistral-small-latest"},
}


def config(urls: dict[str, str]) -> dict[str, object]:
    return {
        "providers": {
            "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk"},
            "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": "sk"},
            "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": "sk"},
        },
        "models": DEPLOYMENTS,
        "routes": {},
        "defaults": {"retries": 0},
    }


@pytest.mark.parametrize("deployment", sorted(DEPLOYMENTS))
async def test_one_response_format_is_answered_by_every_provider(deployment: str) -> None:
    fmt = ResponseFormat("json_schema", name="departure", schema=SCHEMA, strict=True)
    request = ChatRequest(deployment, [Message("user", "Next train?")], response_format=fmt)
    async with (
        MockServer(app=create_app()) as server,
        Router(parse_config(config(server.base_urls))) as router,
    ):
        answer = await router.complete(request)
        jsonschema.validate(json.loads(answer.content), SCHEMA)
        events = [e async for e in router.stream(request)]
        end = events[-1]
        assert isinstance(end, StreamEnd) and end.response.content == answer.content
        loose = await router.complete(
            ChatRequest(
                deployment, [Message("user", "Reply in JSON.")], response_format=ResponseFormat("json_object")
            )
        )
        assert isinstance(json.loads(loose.content), dict)
