"""``turnout mock --scenario`` and ``turnout proxy --upstream`` as real processes."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

import httpx2
import pytest
from chaos_helpers import CHAT

from chaos import library
from turnout.cli import main

ROOT = Path(__file__).resolve().parents[2]


@asynccontextmanager
async def turnout(*args: str) -> AsyncIterator[dict[str, str]]:
    """Run ``turnout ARGS`` and yield the URLs it prints ("name url" lines), then stop it."""
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "turnout", *args, cwd=ROOT, stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "PYTHONPATH": str(ROOT)},
    )  # fmt: skip
    assert proc.stdout is not None
    urls: dict[str, str] = {}
    try:
        while "chaos" not in urls:
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert line, "turnout exited before it was ready"
            name, url = line.split()[:2]
            urls[name] = url
        yield urls
    finally:
        proc.send_signal(signal.SIGINT)
        await proc.wait()


async def test_mock_with_a_shipped_scenario_and_the_proxy_in_front() -> None:
    scenario = str(library()["flapping-primary"])
    async with turnout("mock", "--port", "0", "--scenario", scenario) as mock, httpx2.AsyncClient() as raw:
        url = mock["openai"] + "/chat/completions"
        body = {"model": "gpt-4o-mini", "messages": CHAT}
        auth = {"authorization": "Bearer sk-test"}
        codes = [(await raw.post(url, json=body, headers=auth)).status_code for _ in range(5)]
        assert codes == [502, 502, 502, 200, 502]  # fail 3, pass 1
        counters = (await raw.get(mock["chaos"] + "counters")).json()
        assert counters == {"flap": {"matched": 5, "injected": 4}}
        upstream = mock["openai"].removesuffix("/openai/v1")
        async with turnout("proxy", "--port", "0", "--upstream", upstream, "--chaos-headers") as proxy:
            through = proxy["proxy"] + "/openai/v1/chat/completions"
            r = await raw.post(through, json=body, headers={**auth, "x-turnout-fault": "unauthorized"})
            assert r.status_code == 401
            r = await raw.post(through, json=body, headers=auth)
            assert r.status_code == 502  # the mock's own flapping rule, passed through
            journal = (await raw.get(proxy["chaos"] + "journal")).json()
            assert [e["rule"] for e in journal] == ["header:unauthorized", None]


def test_bad_scenario_exits_2_naming_the_problem(tmp_path: Path, capsys: object) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text("rules: [{name: a, fault: nope}]\n")
    assert main(["mock", "--scenario", str(bad)]) == 2
    assert main(["proxy", "--upstream", "http://127.0.0.1:1", "--scenario", str(bad)]) == 2
    err = capsys.readouterr().err  # type: ignore[attr-defined]
    assert err.count(f"{bad}: invalid scenario") == 2 and "unknown fault 'nope'" in err


@pytest.mark.parametrize("upstream", ["notaurl", "ftp://example.org", "http://", "127.0.0.1:8100"])
def test_proxy_rejects_an_upstream_that_is_not_an_http_url(upstream: str, capsys: object) -> None:
    with pytest.raises(SystemExit) as exit_:
        main(["proxy", "--upstream", upstream])
    assert exit_.value.code == 2
    assert "is not an http:// or https:// URL with a host" in capsys.readouterr().err  # type: ignore[attr-defined]
