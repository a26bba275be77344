"""One YAML reader and one ``${VAR}`` filler for the router's configuration and the drills."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from router.config import ConfigError, load_yaml
from turnout.yamlfile import YAMLFileError, read_yaml, substitute_env, unset_placeholder


def test_a_variable_is_filled_from_the_environment_then_its_default(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("TURNOUT_T_KEY", "sk-1")
    monkeypatch.delenv("TURNOUT_T_NONE", raising=False)
    doc = {"a": ["x-${TURNOUT_T_KEY}", "${TURNOUT_T_NONE:-dflt}"], "n": 3}
    assert substitute_env(doc, source="f.yaml") == {"a": ["x-sk-1", "dflt"], "n": 3}


def test_an_unset_variable_names_the_file_the_field_and_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TURNOUT_T_NONE", raising=False)
    doc = {"providers": {"openai": {"keys": ["ok", "${TURNOUT_T_NONE}"]}}}
    with pytest.raises(YAMLFileError) as info:
        substitute_env(doc, source="f.yaml")
    assert (
        str(info.value) == "f.yaml: providers.openai.keys[1]: environment variable TURNOUT_T_NONE is not set"
    )


def test_unset_variables_can_be_collected_and_fixed_names_win(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TURNOUT_T_NONE", raising=False)
    monkeypatch.setenv("MOCK_URL", "http://elsewhere")
    unset: list[str] = []
    doc = {"k": "${TURNOUT_T_NONE}", "u": "${MOCK_URL}/v1"}
    out = substitute_env(doc, source="f.yaml", fixed={"MOCK_URL": "http://127.0.0.1:1"}, unset=unset)
    assert out == {"k": unset_placeholder("TURNOUT_T_NONE"), "u": "http://127.0.0.1:1/v1"}
    assert unset == ["TURNOUT_T_NONE (k)"]


@pytest.mark.parametrize(
    ("content", "words"),
    [
        (b"a: [1, 2\n", "line 2"),
        (b"a: \xff\n", "not UTF-8 text (byte 3)"),
        (b"a: &x [*x]\n", "an alias refers to a mapping or list that holds it"),
        (b"a: " + b"[" * 100 + b"]" * 100 + b"\n", "nested more than 64 levels deep"),
    ],
)
def test_a_file_that_cannot_be_used_is_one_error_starting_with_its_name(
    tmp_path: Path, content: bytes, words: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(content)
    with pytest.raises(YAMLFileError, match=f"^{re.escape(str(path))}: .*{re.escape(words)}"):
        read_yaml(path)
    with pytest.raises(ConfigError, match=re.escape(words)):  # the router's loader says the same
        load_yaml(path)


def test_an_unreadable_file_says_what_it_was(tmp_path: Path) -> None:
    with pytest.raises(YAMLFileError, match=r"nope\.yaml: cannot read the drill file: "):
        read_yaml(tmp_path / "nope.yaml", what="the drill file")
    with pytest.raises(YAMLFileError, match=r"nope\.yaml: cannot read: "):
        read_yaml(tmp_path / "nope.yaml")
