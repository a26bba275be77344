"""The README's snippets work as written: its Python runs against the mock, its command lines parse
(the files they name exist) and `serve --check` passes. The pytest-plugin example is run by
tests/mockproviders/test_pytest_plugin.py; `make demo` and `make test` are what CI runs."""

from __future__ import annotations

import asyncio
import os
import re
import shlex
import sys
from pathlib import Path

import pytest

from mockproviders.server import MockServer
from turnout.cli import build_parser, main

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
BLOCKS = re.findall(r"```(\w+)\n(.*?)```", README, flags=re.S)


def _blocks(lang: str) -> list[str]:
    return [body for kind, body in BLOCKS if kind == lang]


def _commands() -> list[list[str]]:
    lines = [line for body in _blocks("sh") for line in body.replace("\\\n", " ").splitlines()]
    return [shlex.split(line, comments=True) for line in lines if line.startswith("turnout ")]


def test_the_readme_has_the_snippets_these_tests_read() -> None:
    assert len(_commands()) >= 6
    assert any("Router.from_file" in body for body in _blocks("python"))


@pytest.mark.parametrize("argv", _commands(), ids=lambda argv: " ".join(argv[1:3]))
def test_each_command_line_parses_and_names_real_files(argv: list[str]) -> None:
    """Before: synopses such as `[--seed N]` and files that do not exist (`router.yaml`)."""
    args, extra = build_parser().parse_known_args(argv[1:])  # exits 2 on anything it cannot read
    assert not extra or hasattr(args, "passthrough"), extra  # only `sweep` hands options on (to Locust)
    assert args.command == argv[1]
    for word in argv[2:]:
        if word.endswith(".yaml"):
            assert list(ROOT.glob(word)), f"{word} names no file of the repository"


def test_the_check_command_passes_as_written(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(ROOT)
    checks = [argv for argv in _commands() if "--check" in argv]
    assert checks
    for argv in checks:
        assert main(argv[1:]) == 0, capsys.readouterr().err


async def test_the_library_snippet_runs_as_a_script_against_the_mock(tmp_path: Path) -> None:
    """Before: `'async with' outside async function`, and no word of the mock it needs."""
    (snippet,) = [body for body in _blocks("python") if "Router.from_file" in body]
    assert "turnout mock --port 8100" in snippet  # it says what must be running
    script = tmp_path / "snippet.py"
    script.write_text(snippet, encoding="utf-8")
    async with MockServer() as mock:  # on a free port; the example config reads TURNOUT_MOCK_URL
        env = {**os.environ, "TURNOUT_MOCK_URL": mock.url.rstrip("/")}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(script),
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
    assert proc.returncode == 0, err.decode()
    first, streamed = out.decode().splitlines()[:2]
    assert first.startswith("claude-sonnet anthropic 1 ")  # model, provider, attempts, cost, text
    assert streamed.strip()


def test_the_memory_transport_snippet_runs_without_a_socket_or_real_time(
    capsys: pytest.CaptureFixture[str],
) -> None:
    (snippet,) = [body for body in _blocks("python") if "MemoryTransport(" in body]
    exec(compile(snippet, "README.md", "exec"), {"__name__": "readme"})  # asyncio.run inside
    *_, last = capsys.readouterr().out.splitlines()
    kind, partial, now, requests = last.split()
    assert (kind, partial, requests) == ("stall", "'Hel'", "2")  # refused, retried, stalled
    assert 5.0 <= float(now) < 6.0  # the idle limit plus one jittered backoff, on the fake clock


async def test_the_sidecar_snippet_runs_against_a_sidecar_over_the_mock(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from router import Router
    from router.sidecar import Built, SidecarSettings, create_app
    from router.sidecar.server import SidecarServer

    (snippet,) = [body for body in _blocks("python") if "anthropic.Anthropic(base_url=" in body]
    assert "turnout serve --config examples/configs/sidecar-mock.yaml" in snippet
    async with MockServer() as mock:
        monkeypatch.setenv("TURNOUT_MOCK_URL", mock.url.rstrip("/"))
        router = Router.from_file(ROOT / "examples" / "configs" / "sidecar-mock.yaml")
        server = SidecarServer(create_app(SidecarSettings(), lambda: Built(router)))
        await server.start_server()
        try:
            address = str(server.make_url("/")).removeprefix("http://").rstrip("/")
            script = tmp_path / "snippet.py"  # the same code, on this test's free port
            script.write_text(snippet.replace("127.0.0.1:8200", address), encoding="utf-8")
            proc = await asyncio.create_subprocess_exec(
                sys.executable,
                str(script),
                cwd=ROOT,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.PIPE,
            )
            out, err = await asyncio.wait_for(proc.communicate(), timeout=60)
        finally:
            await server.close()
    assert proc.returncode == 0, err.decode()
    assert len([line for line in out.decode().splitlines() if line.strip()]) >= 3
