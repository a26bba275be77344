"""The aiohttp front end's own routes and transport behaviour."""

from __future__ import annotations

import httpx2
import openai
import pytest

from mockproviders.server import MockServer
from mockproviders.types import Handler, MockRequest, MockResponse

HI = [{"role": "user", "content": "Hello there"}]


async def test_journal_health_and_reset_over_http(mock_server: MockServer) -> None:
    client = openai.AsyncOpenAI(api_key="k", base_url=mock_server.base_urls["openai"], max_retries=0)
    async with client, httpx2.AsyncClient(base_url=mock_server.url) as http:
        await client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
        await client.embeddings.create(model="text-embedding-3-small", input="x")
        health = (await http.get("/_mock/health")).json()
        assert health == {"status": "ok", "requests": 2, "seed": 0}
        entries = (await http.get("/_mock/journal")).json()["entries"]
        assert [(e["endpoint"], e["status"], e["stream"]) for e in entries] == [
            ("chat", 200, False),
            ("embeddings", 200, False),
        ]
        assert set(entries[0]) >= {"time", "provider", "endpoint", "model", "status", "stream", "retry_count"}
        assert len((await http.get("/_mock/journal?since=1")).json()["entries"]) == 1
        assert (await http.get("/_mock/journal?since=x")).status_code == 400
        assert (await http.delete("/_mock/journal")).status_code == 204
        assert (await http.get("/_mock/journal")).json()["entries"] == []
        assert (await http.post("/_mock/reset")).status_code == 204
        r = await client.chat.completions.with_raw_response.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
        assert r.headers["x-request-id"].startswith("req_") and int(r.headers["openai-processing-ms"]) >= 1
        assert mock_server.core.journal.entries[0].index == 0
        assert (await http.get("/elsewhere")).status_code == 404


async def test_hold_on_a_socket_lasts_until_the_client_leaves(mock_server: MockServer) -> None:
    class Hold:
        async def __call__(self, request: MockRequest, call_next: Handler) -> MockResponse:
            assert request.hold is not None
            await request.hold()
            return await call_next(request)

    mock_server.core.add_interceptor(Hold())
    async with openai.AsyncOpenAI(
        api_key="k", base_url=mock_server.base_urls["openai"], max_retries=0
    ) as client:
        with pytest.raises(openai.APITimeoutError):
            await client.chat.completions.create(model="gpt-4o", messages=HI, timeout=0.2)  # type: ignore[arg-type]
