"""The pytest plugin as a user meets it: SDK clients made the ordinary way reach the mock, beside
respx's own plugin and a test's own respx mocks of other hosts, with chaos per test."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import textwrap
from pathlib import Path

import aiohttp
import anthropic
import httpx
import httpx2
import openai
import pytest
import respx
from mistralai.client import Mistral

from chaos.engine import ChaosEngine
from mockproviders import inprocess
from mockproviders.clock import FakeClock
from mockproviders.core import MockCore
from mockproviders.inprocess import InProcessMock
from mockproviders.journal import Journal
from mockproviders.server import MockServer

HI = [{"role": "user", "content": "Hello there"}]
_ORIGINALS = (httpx2.HTTPTransport.handle_request, httpx2.AsyncHTTPTransport.handle_async_request)

# Made at import time, long before any fixture: the interception is per request, not per client.
EARLY_CLIENT = openai.OpenAI(api_key="sk-early", max_retries=0)


def test_sync_sdk_clients_made_the_ordinary_way_reach_the_mock(
    mock_providers: InProcessMock, mock_journal: Journal
) -> None:
    chat = openai.OpenAI(api_key="sk-test").chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
    assert chat.choices[0].message.content
    msg = anthropic.Anthropic(api_key="sk-ant").messages.create(
        model="claude-sonnet-4-5",
        max_tokens=50,
        messages=HI,  # type: ignore[arg-type]
    )
    assert msg.content[0].type == "text"
    with Mistral(api_key="m") as mistral:
        answer = mistral.chat.complete(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
    assert answer.choices[0].message.content
    with EARLY_CLIENT.chat.completions.create(model="gpt-4o", messages=HI, stream=True) as stream:  # type: ignore[arg-type]
        text = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
    assert text
    assert [(e.provider, e.endpoint, e.status, e.stream) for e in mock_journal] == [
        ("openai", "chat", 200, False),
        ("anthropic", "messages", 200, False),
        ("mistral", "chat", 200, False),
        ("openai", "chat", 200, True),
    ]
    assert mock_providers.journal is mock_journal


async def test_async_sdk_clients_stream_from_the_mock(
    mock_providers: InProcessMock, mock_journal: Journal
) -> None:
    async with (
        anthropic.AsyncAnthropic(api_key="sk-ant") as client,
        client.messages.stream(
            model="claude-sonnet-4-5",
            max_tokens=50,
            messages=HI,  # type: ignore[arg-type]
        ) as stream,
    ):
        text = "".join([t async for t in stream.text_stream])
    assert text
    async with Mistral(api_key="m") as mistral:
        chunks = await mistral.chat.stream_async(model="mistral-small-latest", messages=HI)  # type: ignore[arg-type]
        pieces = [c.data.choices[0].delta.content async for c in chunks if c.data.choices]
    assert any(pieces)
    assert [(e.provider, e.stream) for e in mock_journal] == [("anthropic", True), ("mistral", True)]


async def test_respx_mocks_of_other_hosts_keep_working_in_the_same_test(
    mock_providers: InProcessMock, respx_mock: respx.MockRouter, mock_journal: Journal
) -> None:
    # respx's own plugin is on (it imported the classic httpx); the test mocks its own API.
    route = respx_mock.get("https://billing.example.test/quota").mock(
        return_value=httpx.Response(200, json={"left": 3})
    )
    async with httpx.AsyncClient() as http:
        quota = (await http.get("https://billing.example.test/quota")).json()
    async with openai.AsyncOpenAI(api_key="sk-test", max_retries=0) as client:
        await client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
    assert quota == {"left": 3}
    assert route.call_count == 1
    assert [e.provider for e in mock_journal] == ["openai"]


CHAT_URL = "https://api.openai.com/v1/chat/completions"
BODY = {"model": "gpt-4o", "messages": HI}
AUTH = {"authorization": "Bearer sk-test"}


def test_a_plain_sync_httpx_client_to_a_real_host_is_answered(
    mock_providers: InProcessMock, mock_journal: Journal
) -> None:
    with httpx.Client() as classic:
        answer = classic.post(CHAT_URL, json=BODY, headers=AUTH)
    assert answer.status_code == 200
    assert answer.json()["object"] == "chat.completion"
    assert [(e.provider, e.status) for e in mock_journal] == [("openai", 200)]


async def test_plain_async_httpx_and_httpx2_clients_to_the_real_hosts_are_answered(
    mock_providers: InProcessMock, mock_journal: Journal
) -> None:
    classic = httpx.AsyncClient()
    async with (
        classic,
        classic.stream("POST", CHAT_URL, json={**BODY, "stream": True}, headers=AUTH) as stream,
    ):
        lines = [line async for line in stream.aiter_lines() if line]
    async with httpx2.AsyncClient() as modern:
        bad = await modern.post("https://api.anthropic.com/v1/messages", json={}, headers={"x-api-key": "k"})
    assert lines[-1] == "data: [DONE]"
    assert bad.status_code == 400
    assert bad.json()["type"] == "error"
    assert [(e.provider, e.status) for e in mock_journal] == [("openai", 200), ("anthropic", 400)]


def test_an_sdk_base_url_from_the_environment_cannot_take_a_test_elsewhere(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    monkeypatch.setenv("OPENAI_BASE_URL", "https://gateway.example.test/v1")
    monkeypatch.setenv("ANTHROPIC_BASE_URL", "https://gateway.example.test/anthropic")
    journal: Journal = request.getfixturevalue("mock_journal")
    request.getfixturevalue("mock_providers")
    openai.OpenAI(api_key="k", max_retries=0).models.list()
    anthropic.Anthropic(api_key="k", max_retries=0).models.list()
    assert [(e.provider, e.endpoint) for e in journal] == [("openai", "models"), ("anthropic", "models")]


def test_clients_behind_a_proxy_from_the_environment_are_answered_too(
    monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    # The SDK mounts an HTTPTransport(proxy=...) for the proxy: the same class, so the same answer.
    monkeypatch.setenv("HTTPS_PROXY", "http://127.0.0.1:9")  # nothing listens there
    journal: Journal = request.getfixturevalue("mock_journal")
    request.getfixturevalue("mock_providers")
    with Mistral(api_key="m") as mistral:
        mistral.models.list()
    assert [(e.provider, e.endpoint) for e in journal] == [("mistral", "models")]


async def test_aiohttp_code_is_pointed_at_mock_server(mock_server: MockServer, mock_journal: Journal) -> None:
    url = mock_server.base_urls["openai"] + "/chat/completions"
    async with aiohttp.ClientSession() as session, session.post(url, json=BODY, headers=AUTH) as answer:
        assert answer.status == 200
        assert (await answer.json())["object"] == "chat.completion"
    assert [e.provider for e in mock_journal] == ["openai"]


def test_nested_interceptions_the_innermost_answers(mock_providers: InProcessMock) -> None:
    inner_core = MockCore(seed=1)
    with inprocess.mock_providers(inner_core) as inner:
        openai.OpenAI(api_key="k", max_retries=0).models.list()
    openai.OpenAI(api_key="k", max_retries=0).models.list()
    assert (len(inner.journal), len(mock_providers.journal)) == (1, 1)


def test_the_transports_are_restored_after_the_test() -> None:
    assert (httpx2.HTTPTransport.handle_request, httpx2.AsyncHTTPTransport.handle_async_request) == _ORIGINALS


@pytest.mark.turnout_chaos(
    rules=[{"name": "busy", "fault": "rate_limit", "match": {"provider": "openai"}, "when": {"first": 1}}]
)
async def test_a_chaos_rule_applies_to_this_test_only(
    mock_providers: InProcessMock, mock_chaos: ChaosEngine, mock_journal: Journal
) -> None:
    async with openai.AsyncOpenAI(api_key="sk-test", max_retries=0) as client:
        with pytest.raises(openai.RateLimitError):
            await client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
        await client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
    assert [e.status for e in mock_journal] == [429, 200]
    assert mock_chaos.counters()["busy"]["injected"] == 1


def test_no_marker_no_chaos(mock_chaos: ChaosEngine | None) -> None:
    assert mock_chaos is None


@pytest.mark.turnout_chaos("provider-outage")
def test_a_shipped_scenario_by_name_on_the_mock_clock(
    mock_providers: InProcessMock, mock_chaos: ChaosEngine, mock_clock: FakeClock
) -> None:
    assert mock_chaos.scenario is not None
    assert mock_chaos.scenario.name == "provider-outage"
    client = openai.OpenAI(api_key="sk-test", max_retries=0)
    client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
    mock_clock.advance(40)  # into the 503 part of the outage, without waiting
    with pytest.raises(openai.InternalServerError):
        client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]


# -- a throwaway project, as a user has it: no conftest, respx's plugin on -------------------

USER_TEST = """
import openai, pytest

pytest_plugins = ["mockproviders.pytest_plugin"]  # redundant with the entry point, and harmless

def test_hello(mock_providers, mock_journal):
    hi = [{"role": "user", "content": "hi"}]
    openai.OpenAI(api_key="k").chat.completions.create(model="gpt-4o", messages=hi)
    assert [e.status for e in mock_journal] == [200]

@pytest.mark.turnout_chaos(rules=[{"fault": "no_such_fault"}])
def test_bad_marker(mock_providers):
    pass
"""


def _run_pytest(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_")}
    return subprocess.run(
        [sys.executable, "-m", "pytest", "-p", "no:cacheprovider", "-q", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_a_user_project_needs_no_conftest_and_says_what_is_wrong_with_a_marker(tmp_path: Path) -> None:
    (tmp_path / "test_user.py").write_text(USER_TEST)
    done = _run_pytest(tmp_path)
    out = done.stdout + done.stderr
    assert "1 passed" in out, out
    assert "test_bad_marker" in out
    assert "unknown fault 'no_such_fault'" in out


def test_the_old_recipe_with_aliasing_still_works(tmp_path: Path) -> None:
    (tmp_path / "conftest.py").write_text("import httpx2\nhttpx2.alias_httpx()\n")
    (tmp_path / "test_old.py").write_text(
        textwrap.dedent(
            """
            import httpx, openai, respx

            def test_both(mock_providers, mock_journal):
                assert httpx.Client is __import__("httpx2").Client
                with respx.mock(assert_all_called=True) as router:
                    router.get("https://other.example.test/").respond(204)
                    assert httpx.get("https://other.example.test/").status_code == 204
                    openai.OpenAI(api_key="k").models.list()
                assert [e.endpoint for e in mock_journal] == ["models"]
            """
        )
    )
    done = _run_pytest(tmp_path, "-p", "no:respx")
    assert "1 passed" in done.stdout, done.stdout + done.stderr


def test_the_readme_shows_the_file_ci_runs_as_a_user_project() -> None:
    root = Path(__file__).resolve().parents[2]
    example = (root / "examples" / "inprocess" / "test_llm.py").read_text()
    assert f"```python\n{example}```" in (root / "README.md").read_text()
    assert "examples/inprocess/test_llm.py" in (root / ".ci" / "user-project").read_text()


def test_a_sync_test_gets_a_server_that_answers_while_it_blocks(mock_server: MockServer) -> None:
    client = openai.OpenAI(api_key="k", base_url=mock_server.base_urls["openai"], max_retries=0)
    with client, httpx2.Client() as http:
        client.chat.completions.create(model="gpt-4o", messages=HI)  # type: ignore[arg-type]
        assert http.get(mock_server.url + "/_mock/health").json()["requests"] == 1


async def test_an_asyncio_test_gets_the_server_on_its_own_loop(mock_server: MockServer) -> None:
    assert mock_server._runner is not None
    site_loop = next(iter(mock_server._runner.sites))._server._loop  # type: ignore[union-attr]
    assert site_loop is asyncio.get_running_loop()


@pytest.mark.anyio
@pytest.mark.parametrize("anyio_backend", ["asyncio"])
async def test_an_anyio_test_gets_a_server_on_a_thread(mock_server: MockServer, anyio_backend: str) -> None:
    url = mock_server.base_urls["anthropic"] + "/v1/messages"
    body = {"model": "claude-sonnet-4-5", "max_tokens": 10, "messages": HI}
    headers = {"x-api-key": "k", "anthropic-version": "2023-06-01"}
    session = aiohttp.ClientSession()
    async with session, session.post(url, json=body, headers=headers) as answer:
        assert answer.status == 200, await answer.text()
    assert mock_server._runner is not None
    site_loop = next(iter(mock_server._runner.sites))._server._loop  # type: ignore[union-attr]
    assert site_loop is not asyncio.get_running_loop()
