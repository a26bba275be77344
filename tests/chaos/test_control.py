"""The /_chaos/ control API on the mock: list, add, replace, remove, reset, scenario, journal, counters."""

from __future__ import annotations

import httpx2
import openai
import pytest
from chaos_helpers import CHAT, MockFactory, openai_client


async def test_rules_can_be_added_listed_replaced_and_removed(chaos_mock: MockFactory) -> None:
    async with chaos_mock() as server, httpx2.AsyncClient(base_url=server.url + "/_chaos") as api:
        assert (await api.get("/rules")).json() == []
        r = await api.post(
            "/rules", json={"name": "down", "fault": "server_error", "params": {"status": 503}}
        )
        assert r.status_code == 201 and r.json()["params"] == {"status": 503}
        assert (await api.post("/rules", json={"name": "down", "fault": "reset"})).status_code == 409
        with pytest.raises(openai.InternalServerError):
            await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)

        r = await api.put("/rules/down", json={"fault": "rate_limit", "params": {"retry_after": 5}})
        assert r.status_code == 200
        with pytest.raises(openai.RateLimitError):
            await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert (await api.get("/rules/down")).json()["fault"] == "rate_limit"
        assert (await api.get("/counters")).json() == {"down": {"matched": 1, "injected": 1}}

        journal = (await api.get("/journal")).json()
        assert [(e["rule"], e["status"]) for e in journal] == [("down", 503), ("down", 429)]
        assert [e["index"] for e in (await api.get("/journal", params={"since": 1})).json()] == [1]

        assert (await api.delete("/rules/down")).status_code == 204
        assert (await api.delete("/rules/down")).status_code == 404
        assert (
            await openai_client(server).chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        ).choices


async def test_bad_rules_are_refused_with_the_field_path(chaos_mock: MockFactory) -> None:
    async with chaos_mock() as server, httpx2.AsyncClient(base_url=server.url + "/_chaos") as api:
        r = await api.post("/rules", json={"name": "x", "fault": "cut", "params": {"after_tokens": -1}})
        assert r.status_code == 400 and "params.after_tokens" in r.json()["error"]
        r = await api.post("/rules", json={"name": "x", "fault": "nope"})
        assert r.status_code == 400 and "known faults" in r.json()["error"]
        r = await api.post("/rules", content=b"{not json")
        assert r.status_code == 400 and "not valid JSON" in r.json()["error"]
        r = await api.put("/rules/a", json={"name": "b", "fault": "reset"})
        assert r.status_code == 400 and "path names 'a'" in r.json()["error"]
        assert (await api.get("/journal", params={"since": "x"})).status_code == 400
        assert (await api.get("/rules")).json() == []


async def test_scenario_load_reset_and_catalogue(chaos_mock: MockFactory) -> None:
    scenario = """
seed: 3
rules:
  - {name: flap, fault: server_error, when: {sequence: "fail 1, pass 1"}}
"""
    async with chaos_mock() as server, httpx2.AsyncClient(base_url=server.url + "/_chaos") as api:
        bad = await api.put("/scenario", content="rules: [{name: a, fault: cut, params: {after_tokens: x}}]")
        assert bad.status_code == 400 and "request body: invalid scenario" in bad.json()["error"]
        assert (await api.get("/scenario")).json() is None
        assert (await api.put("/scenario", content=scenario)).status_code == 200
        assert (await api.get("/")).json()["seed"] == 3
        client = openai_client(server)
        with pytest.raises(openai.InternalServerError):
            await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        assert (await api.post("/reset")).status_code == 204
        assert (await api.get("/journal")).json() == []
        with pytest.raises(openai.InternalServerError):  # the sequence starts again
            await client.chat.completions.create(model="gpt-4o-mini", messages=CHAT)
        faults = (await api.get("/faults")).json()
        assert faults["cut"]["family"] == "stream" and "after_tokens" in faults["cut"]["params"]["properties"]
        mock_section = await api.put("/scenario", content="mock: {default: {text: hi}}")
        assert mock_section.status_code in (200, 409)  # 409 if the mock cannot be reconfigured live
