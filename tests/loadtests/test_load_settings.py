"""Options (with environment defaults), prompts files and request bodies."""

from __future__ import annotations

import argparse
import ast
from pathlib import Path

import pytest

import loadtests.validation
from loadtests.settings import (
    LoadSettings,
    SettingsError,
    add_arguments,
    build_body,
    load_prompts,
    settings_from_options,
)


def parse(*argv: str) -> LoadSettings:
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return settings_from_options(parser.parse_args(list(argv)))


def test_defaults() -> None:
    settings = parse()
    assert settings == LoadSettings()
    assert settings.primary_model is None
    assert len(settings.prompts) == 8


def test_options_and_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_LOAD_MODEL", "summarization")
    monkeypatch.setenv("TURNOUT_LOAD_STREAM_SHARE", "1")
    monkeypatch.setenv("TURNOUT_LOAD_STREAM_USAGE", "no")
    settings = parse(
        "--primary-model",
        "claude-sonnet",
        "--max-tokens",
        "16",
        "--chat-path",
        "chat/completions",
        "--api-key",
        "k",
        "--require-content",
        "true",
        "--request-timeout",
        "5",
    )
    assert settings.model == "summarization"
    assert settings.primary_model == "claude-sonnet"
    assert (settings.stream_share, settings.stream_usage, settings.require_content) == (1.0, False, True)
    assert (settings.max_tokens, settings.path, settings.api_key, settings.timeout) == (
        16,
        "/chat/completions",
        "k",
        5.0,
    )


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--stream-share", "1.5"], "--stream-share must be between 0 and 1"),
        (["--max-tokens", "0"], "--max-tokens must be at least 1"),
        (["--request-timeout", "0"], "--request-timeout must be positive"),
        (["--model", ""], "--model must not be empty"),
    ],
)
def test_bad_options_name_the_option(argv: list[str], message: str) -> None:
    with pytest.raises(SettingsError, match=message):
        parse(*argv)


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("TURNOUT_LOAD_MAX_TOKENS", "lots", "TURNOUT_LOAD_MAX_TOKENS='lots' is not an integer"),
        ("TURNOUT_LOAD_TIMEOUT", "soon", "TURNOUT_LOAD_TIMEOUT='soon' is not a number"),
        ("TURNOUT_LOAD_STREAM_USAGE", "maybe", "TURNOUT_LOAD_STREAM_USAGE='maybe' is not a boolean"),
    ],
)
def test_bad_environment_values_name_the_variable(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, message: str
) -> None:
    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError, match=message):
        add_arguments(argparse.ArgumentParser())


def test_text_prompts_skip_blank_and_comment_lines(tmp_path: Path) -> None:
    path = tmp_path / "prompts.txt"
    path.write_text("# a comment\nfirst\n\n  second  \n", encoding="utf-8")
    assert load_prompts(path) == (
        [{"role": "user", "content": "first"}],
        [{"role": "user", "content": "  second  "}],
    )
    assert parse("--prompts-file", str(path)).prompts == load_prompts(path)


def test_jsonl_prompts_take_a_prompt_or_messages(tmp_path: Path) -> None:
    path = tmp_path / "prompts.jsonl"
    path.write_text(
        '{"prompt": "hi"}\n\n'
        '{"messages": [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}]}\n',
        encoding="utf-8",
    )
    assert load_prompts(path) == (
        [{"role": "user", "content": "hi"}],
        [{"role": "system", "content": "be brief"}, {"role": "user", "content": "x"}],
    )


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("p.jsonl", '{"prompt": "a"}\n{oops\n', r"p.jsonl:2: not JSON"),
        ("p.jsonl", '{"messages": [{"content": "no role"}]}\n', r"p.jsonl:1: expected"),
        ("p.jsonl", "[1]\n", r"p.jsonl:1: expected"),
        ("p.txt", "# only a comment\n\n", "holds no prompt"),
    ],
)
def test_bad_prompt_files_name_the_line(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    with pytest.raises(SettingsError, match=message):
        load_prompts(path)
    with pytest.raises(SettingsError, match="cannot read prompts file"):
        load_prompts(tmp_path / "absent.txt")


def test_request_bodies() -> None:
    settings = LoadSettings(model="route", max_tokens=8)
    messages = [{"role": "user", "content": "x"}]
    assert build_body(settings, messages, stream=False) == {
        "model": "route",
        "messages": messages,
        "max_tokens": 8,
    }
    assert build_body(settings, messages, stream=True)["stream_options"] == {"include_usage": True}
    no_usage = LoadSettings(stream_usage=False)
    assert "stream_options" not in build_body(no_usage, messages, stream=True)


def test_the_package_talks_http_only_and_its_pure_modules_do_not_import_locust() -> None:
    package = Path(loadtests.validation.__file__).parent
    forbidden = {"router", "mockproviders", "chaos"}
    locust_users = {"users.py", "locustfile.py", "shaped.py", "sweep.py"}
    for path in sorted(package.glob("*.py")):
        tree = ast.parse(path.read_text(encoding="utf-8"))
        roots = set()
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots |= {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                roots.add(node.module.split(".")[0])
        assert not roots & forbidden, f"{path.name} imports {roots & forbidden}"
        if path.name not in locust_users:
            assert not roots & {"locust", "gevent", "requests"}, (
                f"{path.name} must stay importable without Locust"
            )
