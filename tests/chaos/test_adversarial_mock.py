"""Issue 14's adversarial cases against `turnout mock` (providers, `/_chaos/`, `/_mock/`), real sockets.

Every case ends in a 400 naming the problem, in the provider's or the control API's JSON shape;
never a plain-text 500, a blocked loop or a rule that breaks every answer it matches.
"""

from __future__ import annotations

import httpx2
import pytest
from chaos_helpers import MockFactory

DEEP = b'{"model":"gpt-4o-mini","messages":' + b"[" * 2000 + b"]" * 2000 + b"}"


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/openai/v1/chat/completions", DEEP),
        ("/openai/v1/chat/completions", b"[" * 100_000),
        ("/anthropic/v1/messages", DEEP),
        ("/mistral/v1/chat/completions", DEEP),
        ("/openai/v1/chat/completions", b'{"model":"gpt-4o-mini","max_tokens":' + b"9" * 5000 + b"}"),
    ],
)
async def test_provider_endpoints_answer_hostile_json_with_a_400_in_their_shape(
    chaos_mock: MockFactory, path: str, body: bytes
) -> None:
    async with chaos_mock() as server, httpx2.AsyncClient(base_url=server.url) as client:
        headers = {
            "content-type": "application/json",
            "authorization": "Bearer sk-test",
            "x-api-key": "sk-ant-test",
            "anthropic-version": "2023-06-01",
        }
        r = await client.post(path, content=body, headers=headers)
        assert r.status_code == (422 if "mistral" in path else 400), r.text[:300]  # Mistral's own status
        data = r.json()
        assert "error" in data or "detail" in data  # OpenAI/Anthropic shape, or Mistral's


@pytest.mark.parametrize(
    ("body", "words"),
    [
        (b"\xff\xfe{}", "UTF-8"),
        (b"[" * 5000, "deeper than"),
        (b'{"name":"x","fault":"server_error","params":{"status":' + b"5" * 5000 + b"}}", "number"),
        (b'{"name":"x","fault":"reset","when":{"sequence":"fail 99999999999999999999"}}', "at most"),
        (b'{"name":"x","fault":"rate_limit","params":{"retry_after":1e308}}', "at most"),
        (b'{"name":"x","fault":"rate_limit","params":{"retry_after":"1e999"}}', "at most"),
        (
            b'{"name":"x","fault":"server_error","params":{"status":503,"headers":{"x-a":"b\\r\\nx: y"}}}',
            "control",
        ),
        (b'{"name":"x","fault":"server_error","params":{"status":503,"headers":{"a b":"c"}}}', "token"),
    ],
)
async def test_chaos_rules_refuse_hostile_input_with_a_400(
    chaos_mock: MockFactory, body: bytes, words: str
) -> None:
    async with chaos_mock() as server, httpx2.AsyncClient(base_url=server.url + "/_chaos") as api:
        r = await api.post("/rules", content=body)
        assert r.status_code == 400, r.text[:300]
        assert words in r.json()["error"]
        assert (await api.get("/rules")).json() == []


async def test_a_huge_sequence_is_kept_as_runs_not_expanded(chaos_mock: MockFactory) -> None:
    rule = {
        "name": "x",
        "fault": "server_error",
        "params": {"status": 503},
        "when": {"sequence": "fail 100000000, pass 1"},
    }
    async with chaos_mock() as server, httpx2.AsyncClient(base_url=server.url + "/_chaos") as api:
        r = await api.post("/rules", json=rule)  # 10^8 booleans before: 2.4 s and 0.9 GB
        assert r.status_code == 201
        chat = {"model": "gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        async with httpx2.AsyncClient(base_url=server.url) as client:
            assert (await client.post("/openai/v1/chat/completions", json=chat)).status_code == 503


@pytest.mark.parametrize("since", ["²", "9" * 5000, "-1", "x"])
async def test_journal_since_that_is_not_an_index_is_a_400(chaos_mock: MockFactory, since: str) -> None:
    async with chaos_mock() as server, httpx2.AsyncClient(base_url=server.url) as client:
        assert (await client.get("/_mock/journal", params={"since": since})).status_code == 400
        assert (await client.get("/_chaos/journal", params={"since": since})).status_code == 400
