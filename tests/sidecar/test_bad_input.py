"""Bad input gets a clear 4xx naming the problem: never a 500, never a crash."""

from __future__ import annotations

import asyncio
import json
from typing import Any

import aiohttp
import pytest

from router.sidecar.parsing import WireError
from router.sidecar.wire import parse_chat, parse_embeddings

from .conftest import CLIENT_KEY, Sidecar, SidecarFactory

AUTH = {"Authorization": f"Bearer {CLIENT_KEY}"}
MSG = [{"role": "user", "content": "hi"}]


async def post(
    sidecar: Sidecar, path: str, data: Any, headers: dict[str, str] | None = None
) -> tuple[int, Any]:
    body = data if isinstance(data, bytes) else json.dumps(data).encode()
    async with (
        aiohttp.ClientSession() as s,
        s.post(sidecar.url.rstrip("/") + path, data=body, headers=AUTH if headers is None else headers) as r,
    ):
        return r.status, await r.json()


@pytest.mark.parametrize(
    ("body", "param", "words"),
    [
        ({"messages": MSG}, "model", "Missing required parameter"),
        ({"model": 3, "messages": MSG}, "model", "expected a string"),
        ({"model": "chat"}, "messages", "Missing required parameter"),
        ({"model": "chat", "messages": []}, "messages", "empty array"),
        ({"model": "chat", "messages": "hi"}, "messages", "expected an array"),
        ({"model": "chat", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "robot"),
        (
            {"model": "chat", "messages": [{"role": "user", "content": 5}]},
            "messages[0].content",
            "got integer",
        ),
        (
            {"model": "chat", "messages": [{"role": "user", "content": [{"type": "text", "text": None}]}]},
            "messages[0].content[0].text",
            "got null",
        ),
        (
            {"model": "chat", "messages": [{"role": "user", "content": [{"type": "image_url"}]}]},
            "messages[0].content[0].type",
            "only 'text'",
        ),
        ({"model": "chat", "messages": MSG, "temperature": "hot"}, "temperature", "expected a number"),
        ({"model": "chat", "messages": MSG, "temperature": 7}, "temperature", "between"),
        ({"model": "chat", "messages": MSG, "max_tokens": 0}, "max_tokens", "minimum"),
        ({"model": "chat", "messages": MSG, "max_tokens": True}, "max_tokens", "got boolean"),
        ({"model": "chat", "messages": MSG, "stream": "yes"}, "stream", "expected a boolean"),
        ({"model": "chat", "messages": MSG, "stop": [1]}, "stop[0]", "expected a string"),
        ({"model": "chat", "messages": MSG, "n": 2}, "n", "only n=1"),
        ({"model": "chat", "messages": MSG, "frobnicate": 1}, "frobnicate", "Unrecognized"),
        ({"model": "chat", "messages": MSG, "tools": [{"type": "function"}]}, "tools[0].function", "object"),
        (
            {"model": "chat", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "expected a string",
        ),
    ],
)
def test_parse_chat_names_the_field(body: dict[str, Any], param: str, words: str) -> None:
    with pytest.raises(WireError) as info:
        parse_chat(body)
    assert info.value.param == param
    assert words in info.value.message


def test_parse_chat_maps_the_request() -> None:
    req, usage = parse_chat(
        {
            "model": "chat",
            "messages": [
                {"role": "developer", "content": "be brief"},
                {"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "content": "42"},
            ],
            "max_completion_tokens": 9,
            "stop": "END",
            "seed": 1,
            "stream": True,
            "stream_options": {"include_usage": True},
            "presence_penalty": 0.5,
            "metadata": {"team": "search"},
        }
    )
    assert usage is True and req.stream is True
    assert [m.role for m in req.messages] == ["system", "user", "assistant", "tool"]
    assert req.messages[1].text == "ab"
    assert req.messages[2].tool_calls[0].name == "f"
    assert req.messages[3].tool_call_id == "c1"
    assert req.max_tokens == 9 and req.stop == ["END"] and req.seed == 1
    assert req.extra == {"presence_penalty": 0.5} and req.metadata == {"team": "search"}


def test_parse_embeddings_rejects_token_arrays() -> None:
    with pytest.raises(WireError) as info:
        parse_embeddings({"model": "e", "input": [[1, 2, 3]]})
    assert info.value.param == "input[0]"


@pytest.mark.parametrize(
    ("raw", "words"),
    [
        (b"{not json", "not valid JSON"),
        (b"[1, 2]", "must be a JSON object"),
        (b"\xff\xfe", "not valid"),
        (b"", "not valid JSON"),
    ],
)
async def test_malformed_bodies_are_400(sidecar: Sidecar, raw: bytes, words: str) -> None:
    status, body = await post(sidecar, "/v1/chat/completions", raw)
    assert status == 400
    assert words in body["error"]["message"]
    assert body["error"]["type"] == "invalid_request_error"


async def test_wrong_type_over_http_is_400_with_param(sidecar: Sidecar) -> None:
    status, body = await post(
        sidecar, "/v1/chat/completions", {"model": "chat", "messages": MSG, "top_p": []}
    )
    assert status == 400 and body["error"]["param"] == "top_p"


async def test_unknown_route_is_404(sidecar: Sidecar) -> None:
    status, body = await post(sidecar, "/v1/chat/completions", {"model": "gpt-9", "messages": MSG})
    assert status == 404 and body["error"]["code"] == "model_not_found"


async def test_unknown_path_and_method_are_json(sidecar: Sidecar) -> None:
    status, body = await post(sidecar, "/v1/nothing", {})
    assert status == 404 and body["error"]["code"] == "not_found"
    async with aiohttp.ClientSession() as s, s.get(sidecar.url + "v1/chat/completions", headers=AUTH) as r:
        assert r.status == 405 and (await r.json())["error"]["code"] == "method_not_allowed"


async def test_oversize_body_is_413(make_sidecar: SidecarFactory) -> None:
    sidecar = await make_sidecar(max_body_bytes=2048)
    big = {"model": "chat", "messages": [{"role": "user", "content": "x" * 5000}]}
    status, body = await post(sidecar, "/v1/chat/completions", big)
    assert status == 413 and "2048" in body["error"]["message"]


async def test_oversize_chunked_body_is_413(make_sidecar: SidecarFactory) -> None:
    sidecar = await make_sidecar(max_body_bytes=2048)

    async def gen() -> Any:
        for _ in range(10):
            yield b"x" * 1000

    async with (
        aiohttp.ClientSession() as s,
        s.post(sidecar.url + "v1/chat/completions", data=gen(), headers=AUTH) as r,
    ):
        assert r.status == 413
        assert (await r.json())["error"]["code"] == "body_too_large"


async def test_missing_and_wrong_keys_are_401(sidecar: Sidecar) -> None:
    for headers in ({}, {"Authorization": "Bearer nope-nope-nope"}, {"Authorization": CLIENT_KEY}):
        status, body = await post(
            sidecar, "/v1/chat/completions", {"model": "chat", "messages": MSG}, headers
        )
        assert status == 401, headers
        assert CLIENT_KEY not in json.dumps(body)


async def test_health_needs_no_key(sidecar: Sidecar) -> None:
    async with aiohttp.ClientSession() as s:
        async with s.get(sidecar.url + "healthz") as r:
            assert r.status == 200
        async with s.get(sidecar.url + "readyz") as r:
            assert r.status == 200 and "chat" in (await r.json())["routes"]


async def test_readyz_fails_when_no_route_is_serviceable(sidecar: Sidecar) -> None:

    sidecar.routers[0].breaker_open.update({"model-a", "model-b"})  # every deployment ejected
    async with aiohttp.ClientSession() as s, s.get(sidecar.url + "readyz") as r:
        assert r.status == 503


async def test_concurrency_limit_is_503_with_retry_after(make_sidecar: SidecarFactory) -> None:
    sidecar = await make_sidecar(max_concurrency=1)
    router = sidecar.routers[0]
    held = asyncio.create_task(post(sidecar, "/v1/chat/completions", {"model": "gate", "messages": MSG}))
    await router.entered.wait()
    async with (
        aiohttp.ClientSession() as s,
        s.post(
            sidecar.url + "v1/chat/completions", json={"model": "chat", "messages": MSG}, headers=AUTH
        ) as r,
    ):
        assert r.status == 503 and r.headers["Retry-After"] == "1"
        assert (await r.json())["error"]["code"] == "overloaded"
    router.gate.set()
    status, _ = await held
    assert status == 200
