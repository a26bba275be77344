"""One error wording for every file turnout reads: `path: problem`, "did you mean" for a misspelt
name, and YAML syntax errors with their line and column (never `in "<unicode string>"`)."""

from __future__ import annotations

from pathlib import Path

import pytest

from chaos.drill.spec import DrillError, parse_drill
from chaos.scenario import ScenarioError, parse_scenario, parse_scenario_text
from mockproviders.config import ConfigError as MockConfigError
from mockproviders.config import load_config as load_mock_config
from mockproviders.config import parse_config as parse_mock_config
from router.config import ConfigError, load_yaml, parse_config
from router.sidecar.settings import SettingsError, parse_settings
from turnout.problems import did_you_mean

ROOT = Path(__file__).resolve().parents[1]
ROUTER = {
    "providers": {"p": {"kind": "openai", "base_url": "http://127.0.0.1:1/v1", "api_key": "k"}},
    "models": {"m": {"provider": "p", "model": "gpt-4o-mini"}},
}


def test_did_you_mean() -> None:
    assert did_you_mean("refused", ["downgrade", "refuse"]) == "; did you mean 'refuse'?"
    assert did_you_mean("zzz", ["downgrade", "refuse"]) == ""


def test_router_config_typos_name_the_likely_field_and_value() -> None:
    """Before: `unknown field (a typo?)` and pydantic's `Input should be 'downgrade' or 'refuse'`."""
    data = {
        **ROUTER,
        "defaults": {"retris": 2},
        "budgets": {"b": {"route": "m", "limit_usd": 1, "action": "refused"}},
    }
    with pytest.raises(ConfigError) as info:
        parse_config(data, source="r.yaml")
    text = str(info.value)
    assert "r.yaml: defaults.retris: unknown field 'retris'; did you mean 'retries'?" in text
    assert (
        "r.yaml: budgets.b.action: 'refused' is not one of 'downgrade', 'refuse'; did you mean 'refuse'?"
        in text
    )


def test_sidecar_settings_typos() -> None:
    """Before: `unknown field`, with no suggestion."""
    with pytest.raises(
        SettingsError, match=r"s.yaml: server.prot: unknown field 'prot'; did you mean 'port'\?"
    ):
        parse_settings({"server": {"prot": 8200}}, source="s.yaml")


def test_scenario_typos() -> None:
    """Before: `unknown field (not allowed here)`."""
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"rules": [{"name": "flap", "fault": "server_error", "wen": {"first": 1}}]}, "c.yaml")
    assert "rules.0.wen (rule 'flap'): unknown field 'wen'; did you mean 'when'?" in str(info.value)


def test_drill_check_typo_is_not_a_raw_union_tag_message() -> None:
    """Before: `Input tag 'succes_rate' found using 'check' does not match any of the expected tags: ...`."""
    data = {
        "name": "typo",
        "chaos": {"rules": []},
        "router": {"config": str(ROOT / "chaos" / "drills" / "router" / "three-providers.yaml")},
        "traffic": {"requests": 4, "concurrency": 1, "routes": {"chat": 1}},
        "hypothesis": {"checks": [{"check": "succes_rate", "min": 0.9}]},
    }
    with pytest.raises(DrillError) as info:
        parse_drill(data, "d.yaml")
    text = str(info.value)
    assert "hypothesis.checks.0: unknown check 'succes_rate'; did you mean 'success_rate'?" in text
    assert "Input tag" not in text


def test_mock_config_typos() -> None:
    with pytest.raises(MockConfigError) as info:
        parse_mock_config({"sed": 3}, "m.yaml")
    assert "sed: unknown field 'sed'; did you mean 'seed'?" in str(info.value)


@pytest.mark.parametrize("kind", ["router", "scenario", "drill", "mock"])
def test_yaml_errors_say_line_and_column_not_unicode_string(kind: str, tmp_path: Path) -> None:
    """Before: the router and mock configs said `in "<unicode string>", line 1, column 4`."""
    path = tmp_path / "bad.yaml"
    path.write_text("a: [1,\nb: 2\n")
    with pytest.raises((ConfigError, ScenarioError, DrillError, MockConfigError)) as info:
        if kind == "router":
            load_yaml(path)
        elif kind == "scenario":
            parse_scenario_text(path.read_text(), str(path))
        elif kind == "drill":
            from chaos.drill.spec import load_drill

            load_drill(path)
        else:
            load_mock_config(path)
    text = str(info.value)
    assert f"{path}: not valid YAML at line 3, column 1: while parsing a flow sequence" in text
    assert "<unicode string>" not in text
