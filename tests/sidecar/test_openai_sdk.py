"""The official openai SDK against the sidecar (fake router) over a real loopback socket."""

from __future__ import annotations

import openai
import pytest

from .conftest import PROVIDER_KEY, WORDS, Sidecar


async def test_completion_answer_headers_and_usage(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="fallback", messages=[{"role": "user", "content": "hi"}], temperature=0.2
        )
    resp = raw.parse()
    assert resp.choices[0].message.content == "".join(WORDS)
    assert resp.choices[0].finish_reason == "stop"
    assert resp.model == "model-b-2024"  # the model that really answered, not the route
    assert resp.usage is not None and resp.usage.prompt_tokens == 3 and resp.usage.completion_tokens == 4
    assert resp.usage.total_tokens == 7
    h = raw.headers
    assert h["x-turnout-model"] == "model-b"
    assert h["x-turnout-provider"] == "openai"
    assert h["x-turnout-attempts"] == "2"
    assert h["x-turnout-route"] == "fallback"
    assert h["x-request-id"] == "gen1-1"
    assert float(h["x-turnout-overhead-ms"]) >= 0
    req = sidecar.routers[0].requests[0]
    assert req.temperature == 0.2 and req.messages[0].text == "hi"
    front = sidecar.server.front
    assert front is not None and (front.served, front.handed_over) == (1, 0)  # the fast path


async def test_one_sdk_client_mixing_fast_and_other_endpoints(sidecar: Sidecar) -> None:
    """Chat (served by the front door), then a models list (aiohttp's, the connection handed
    over), then chat and embeddings again on the same kept-alive connection."""
    async with sidecar.client() as client:
        first = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "a"}]
        )
        models = await client.models.list()
        again = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "b"}]
        )
        emb = await client.embeddings.create(model="chat", input=["x"])
    assert first.choices[0].message.content == again.choices[0].message.content == "".join(WORDS)
    assert "chat" in [m.id for m in models.data]
    assert emb.data[0].embedding == [0.5, -0.25, 0.0]
    front = sidecar.server.front
    assert front is not None and front.served == 1 and front.handed_over == 1


async def test_tool_calls_round_trip(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        resp = await client.chat.completions.create(
            model="tools",
            messages=[{"role": "user", "content": "look it up"}],
            tools=[{"type": "function", "function": {"name": "lookup", "parameters": {"type": "object"}}}],
        )
    call = resp.choices[0].message.tool_calls[0]  # type: ignore[index]
    assert call.function.name == "lookup" and call.function.arguments == '{"q": "x"}'  # type: ignore[union-attr]
    assert resp.choices[0].finish_reason == "tool_calls"


async def test_stream_chunks_headers_and_usage(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        raw = await client.chat.completions.with_raw_response.create(
            model="chat",
            messages=[{"role": "user", "content": "hi"}],
            stream=True,
            stream_options={"include_usage": True},
        )
        assert raw.headers["x-turnout-model"] == "model-a"
        assert raw.headers["x-request-id"] == "gen1-1"
        chunks = [c async for c in raw.parse()]
    ids = {c.id for c in chunks}
    created = {c.created for c in chunks}
    assert len(ids) == 1 and len(created) == 1
    assert chunks[0].choices[0].delta.role == "assistant"
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == "".join(WORDS)
    finish = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finish == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage is not None
    assert chunks[-1].usage.total_tokens == 7
    assert all(c.usage is None for c in chunks[:-1])


async def test_stream_without_usage_has_no_usage_chunk(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        stream = await client.chat.completions.create(
            model="chat", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
    assert all(c.choices for c in chunks)
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_tool_call_deltas(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        stream = await client.chat.completions.create(
            model="tools", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
    calls = [tc for c in chunks for tc in (c.choices[0].delta.tool_calls or [])]
    assert calls[0].id == "call_1" and calls[0].function.name == "lookup"  # type: ignore[union-attr]
    assert "".join(tc.function.arguments or "" for tc in calls) == '{"q": "x"}'  # type: ignore[union-attr]
    assert chunks[-1].choices[0].finish_reason == "tool_calls"


async def test_empty_stream_still_sends_role_and_finish(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        stream = await client.chat.completions.create(
            model="empty", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert chunks[-1].choices[0].finish_reason == "stop"


async def test_stream_failure_after_output_raises_api_error_in_sdk(sidecar: Sidecar) -> None:
    seen: list[str] = []
    async with sidecar.client() as client:
        stream = await client.chat.completions.create(
            model="cut", messages=[{"role": "user", "content": "hi"}], stream=True
        )
        with pytest.raises(openai.APIError) as info:
            async for chunk in stream:
                seen.append(chunk.choices[0].delta.content or "")
    assert "".join(seen) == "Hello, "
    assert "cut the stream" in info.value.message
    assert PROVIDER_KEY not in info.value.message
    assert isinstance(info.value.body, dict) and info.value.body["code"] == "stream_cut"


async def test_stream_failure_before_output_is_a_plain_error_status(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(
                model="limited", messages=[{"role": "user", "content": "hi"}], stream=True
            )
    assert info.value.response.headers["retry-after"] == "8"


async def test_exhausted_rate_limit_has_retry_after(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        with pytest.raises(openai.RateLimitError) as info:
            await client.chat.completions.create(
                model="limited", messages=[{"role": "user", "content": "hi"}]
            )
    err = info.value
    assert err.status_code == 429  # every choice failed on a rate limit: say so
    assert err.response.headers["retry-after"] == "8"  # the smallest upstream wait, rounded up
    assert err.response.headers["x-request-id"] == "gen1-1"  # the audit record's id
    assert isinstance(err.body, dict) and err.body["code"] == "exhausted"


async def test_unknown_route_is_404_model_not_found(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        with pytest.raises(openai.NotFoundError) as info:
            await client.chat.completions.create(model="nope", messages=[{"role": "user", "content": "hi"}])
    assert isinstance(info.value.body, dict)
    assert info.value.body["code"] == "model_not_found" and info.value.body["param"] == "model"


async def test_embeddings_float_and_base64(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        resp = await client.embeddings.create(model="chat", input=["a", "b"])  # the SDK asks for base64
        floats = await client.embeddings.create(model="chat", input="a", encoding_format="float")
    assert [d.embedding for d in resp.data] == [[0.5, -0.25, 0.0], [0.5, -0.25, 1.0]]
    assert floats.data[0].embedding == [0.5, -0.25, 0.0]
    assert resp.model == "text-embedding-3-small" and resp.usage.prompt_tokens == 5


async def test_models_lists_routes(sidecar: Sidecar) -> None:
    async with sidecar.client() as client:
        page = await client.models.list()
    assert "chat" in [m.id for m in page.data]


async def test_wrong_client_key_is_401(sidecar: Sidecar) -> None:
    async with sidecar.client(api_key="not-the-right-key") as client:
        with pytest.raises(openai.AuthenticationError):
            await client.chat.completions.create(model="chat", messages=[{"role": "user", "content": "hi"}])
