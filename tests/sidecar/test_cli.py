"""`turnout serve`: --check, start-up errors, and a real process (SIGHUP reload, SIGTERM drain)."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import pytest
import yaml
from aiohttp.test_utils import TestServer

from turnout.cli import main

from .test_integration import MSG, SlowUpstream, slow_config

EXAMPLES = Path(__file__).parents[2] / "examples" / "configs"


def test_check_prints_a_summary(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", str(EXAMPLES / "sidecar-mock.yaml"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "route summarization: claude-sonnet -> gpt-4o-mini -> mistral-small" in out


def test_every_shipped_example_validates(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TURNOUT_CLIENT_KEY"):
        monkeypatch.setenv(var, "example-secret-value")
    monkeypatch.setenv("ALERT_WEBHOOK", "http://127.0.0.1:9/hook")
    for path in sorted(EXAMPLES.glob("*.yaml")):
        assert main(["serve", "--config", str(path), "--check"]) == 0, path


def test_invalid_file_exits_2_naming_file_field_and_reason(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "router.yaml"
    data = yaml.safe_load((EXAMPLES / "sidecar-mock.yaml").read_text())
    data["server"]["port"] = "eighty"
    data["server"]["colour"] = "blue"
    data["audit"]["redact"] = "perhaps"
    data["routes"]["summarization"]["chain"] = ["no-such-model"]
    path.write_text(yaml.safe_dump(data))
    assert main(["serve", "--config", str(path), "--check"]) == 2
    err = capsys.readouterr().err
    assert f"{path}: server.port:" in err
    assert f"{path}: server.colour: unknown field" in err
    assert f"{path}: audit.redact:" in err
    assert "routes.summarization.chain" in err and "no-such-model" in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("text", "words"),
    [("providers: [unclosed\n", "not valid YAML"), ("- a list\n", "must be a mapping"), ("", "providers")],
)
def test_unreadable_files_exit_2(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], text: str, words: str
) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    assert main(["serve", "--config", str(path), "--check"]) == 2
    assert words in capsys.readouterr().err


def test_missing_file_exits_2(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["serve", "--config", "/nonexistent/router.yaml"]) == 2
    assert "cannot read" in capsys.readouterr().err


def test_loop_factory() -> None:
    from router.sidecar.serve import loop_factory

    assert loop_factory("asyncio") is None
    try:
        import uvloop
    except ImportError:
        assert loop_factory("auto") is None
        with pytest.raises(ImportError):
            loop_factory("uvloop")
    else:
        assert loop_factory("auto") is uvloop.new_event_loop
        assert loop_factory("uvloop") is uvloop.new_event_loop


@pytest.mark.parametrize("loop", ["uvloop", "asyncio"])
async def test_process_reloads_on_sighup_and_drains_on_sigterm(tmp_path: Path, loop: str) -> None:
    if loop == "uvloop":
        pytest.importorskip("uvloop")
    upstream = SlowUpstream()
    async with TestServer(upstream.app) as up:
        url = str(up.make_url("/v1"))
        path = tmp_path / "router.yaml"
        audit = tmp_path / "audit.jsonl"
        config = slow_config(url, {"first": {"chain": ["slow"]}})
        config["audit"] = {"path": str(audit)}
        path.write_text(yaml.safe_dump(config))
        proc = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "turnout", "serve", "--config", str(path), "--port", "0",
            "--loop", loop,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
            env={**os.environ, "PYTHONUNBUFFERED": "1"},
        )  # fmt: skip
        try:
            assert proc.stdout is not None
            line = (await asyncio.wait_for(proc.stdout.readline(), 30)).decode()
            assert "listening on http://127.0.0.1:" in line, line
            base = line.split("listening on ", 1)[1].split()[0].removesuffix("/v1")
            async with aiohttp.ClientSession() as s:
                resp = await s.post(
                    f"{base}/v1/chat/completions", json={"model": "first", "messages": MSG, "stream": True}
                )
                assert resp.status == 200
                request_id = resp.headers["x-request-id"]
                await upstream.started.wait()

                config["routes"] = {"second": {"chain": ["slow"]}}
                path.write_text(yaml.safe_dump(config))
                proc.send_signal(signal.SIGHUP)
                for _ in range(3000):  # the reload is asynchronous: poll until it shows
                    async with s.get(f"{base}/v1/models") as r:
                        if "second" in [m["id"] for m in (await r.json())["data"]]:
                            break
                    await asyncio.sleep(0.01)
                else:
                    pytest.fail("SIGHUP did not reload the configuration")

                proc.send_signal(signal.SIGTERM)  # the stream in flight must still finish
                assert proc.stderr is not None
                while b"draining 1 request" not in await asyncio.wait_for(proc.stderr.readline(), 30):
                    pass
                upstream.release.set()
                body = (await resp.read()).decode()
            assert body.rstrip().endswith("data: [DONE]") and "three" in body
            assert await asyncio.wait_for(proc.wait(), 30) == 0
            lines = audit.read_text().splitlines()
            assert any(request_id in ln for ln in lines)
        finally:
            if proc.returncode is None:
                proc.kill()
                await proc.wait()


@pytest.mark.parametrize("width", ["60", "80", "100"])
@pytest.mark.parametrize("command", ["mock", "serve", "proxy", "drill"])
def test_help_reads_as_plain_text(
    command: str, width: str, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("COLUMNS", width)
    with pytest.raises(SystemExit):
        main([command, "--help"])
    out = capsys.readouterr().out
    assert "``" not in out  # no raw RST literals
    lines = out.splitlines()
    assert not [line for line in lines if line.rstrip().endswith("-") and "x-turnout" in line]
    words = out.split()
    assert "x-turnout-" not in words  # a header name never broken across lines
    # every option says what it does: an option line is followed by text on it or the next line
    start = lines.index("options:")
    for i, line in enumerate(lines[start:], start):
        stripped = line.strip()
        if line.startswith("  -") and "  " not in stripped:
            assert lines[i + 1].startswith(" " * 10) and not lines[i + 1].strip().startswith("-"), line


def test_proxy_and_serve_default_to_different_ports() -> None:
    from turnout.cli import build_parser

    parser = build_parser()
    serve = parser.parse_args(["serve", "--config", "x.yaml"])
    proxy = parser.parse_args(["proxy", "--upstream", "http://127.0.0.1:1"])
    assert proxy.port == 8300
    assert serve.port is None  # the file's port, else 8200


def test_check_validates_a_file_without_its_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: `serve --check` on the production example failed on `OPENAI_API_KEY is not set`."""
    for var in ("OPENAI_API_KEY", "ANTHROPIC_API_KEY", "TURNOUT_CLIENT_KEY", "ALERT_WEBHOOK"):
        monkeypatch.delenv(var, raising=False)
    assert main(["serve", "--config", str(EXAMPLES / "sidecar-production.yaml"), "--check"]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "not set here, needed to serve: OPENAI_API_KEY (providers.openai.api_key)" in out
    assert "ALERT_WEBHOOK (alerts.webhook)" in out
    # the rest of the file is still checked
    data = yaml.safe_load((EXAMPLES / "sidecar-production.yaml").read_text())
    data["server"]["colour"] = "blue"
    path = tmp_path / "router.yaml"
    path.write_text(yaml.safe_dump(data))
    assert main(["serve", "--config", str(path), "--check"]) == 2
    assert "server.colour" in capsys.readouterr().err


def test_serving_still_needs_every_variable(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from router.config import ConfigError
    from router.sidecar.config import load

    monkeypatch.delenv("OPENAI_API_KEY", raising=False)
    with pytest.raises(ConfigError, match="environment variable OPENAI_API_KEY is not set"):
        load(EXAMPLES / "sidecar-production.yaml")
