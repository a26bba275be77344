"""Issue 14's broken configurations: each is a ConfigError naming the problem (``turnout serve
--check`` exits 2 with it), never a traceback at load or a RecursionError/404 at the first request."""

from __future__ import annotations

from pathlib import Path

import pytest

from router.config import ConfigError, load_config

BASE = """providers: {p: {kind: openai, base_url: "http://127.0.0.1:9/v1", api_key: sk-123456}}
models: {m: {provider: p, model: gpt-4o-mini}}
routes: {r: {chain: [m]}}
"""


@pytest.mark.parametrize(
    ("text", "words"),
    [
        (b"providers: {p: {api_key: \xff\xfe}}\n", "not UTF-8"),
        (b"a: &a [*a]\n", "alias refers to"),
        (b"x: " + b"9" * 5000 + b"\n", "4300 digits"),
        (b"x: " + b"[" * 5000 + b"]" * 5000 + b"\n", "nested more than"),
        (b"providers:\n  p: {kind: openai, api_key: sk-SECRET-0123456789 base_url: [\n", "line 2"),
        (
            (
                BASE
                + "patterns:\n"
                + "  p1: {cascade: {tiers: [m, p2], checks: [{json: true}]}}\n"
                + "  p2: {cascade: {tiers: [m, p1], checks: [{json: true}]}}\n"
            ).encode(),
            "p1 -> p2 -> p1",
        ),
        (
            (
                BASE
                + "rules:\n"
                + "  a: {rules: [{name: x, route: b, when: {metadata: {k: v}}}], default: r}\n"
                + "  b: {rules: [{name: x, route: a, when: {metadata: {k: v}}}], default: r}\n"
            ).encode(),
            "a -> b -> a",
        ),
    ],
)
def test_a_broken_config_is_a_config_error_naming_the_problem(
    tmp_path: Path, text: bytes, words: str
) -> None:
    path = tmp_path / "c.yaml"
    path.write_bytes(text)
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert words in str(info.value)
    assert "SECRET" not in str(info.value)  # a YAML error quotes no line: it may hold a key
