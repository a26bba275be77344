"""Drill files: the shipped ones load; bad ones are rejected naming the file, the field and why."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from drill_helpers import drill_data

from chaos.drill.spec import DrillError, load_drill, parse_drill, shipped
from chaos.drill.timeref import TimeRef, Windows, scale_scenario
from chaos.scenario import load_scenario


def test_every_shipped_drill_loads_and_some_are_quick() -> None:
    drills = {name: load_drill(path) for name, path in shipped().items()}
    assert {"provider-outage", "rate-limit-storm", "stream-cuts", "slow-first-tokens"} <= set(drills)
    assert {"mixed-faults-5pct", "brownout"} <= set(drills)
    assert any(d.spec.quick for d in drills.values())
    for name, d in drills.items():
        assert d.name == name  # the file stem is the drill's name
        assert d.scenario.rules


def test_library_reference_is_time_scaled() -> None:
    d = load_drill(shipped()["provider-outage"])
    assert d.windows().overall == (0.5, 3.5)  # the 10-70 s outage at 1/20


def test_mock_url_is_filled_in_at_run_time() -> None:
    d = parse_drill(drill_data())
    providers = d.router_config_data("http://127.0.0.1:4242")["providers"]
    assert providers["openai"]["base_url"] == "http://127.0.0.1:4242/openai/v1"


def _error(data: Any, source: str = "d.yaml") -> str:
    with pytest.raises(DrillError) as info:
        parse_drill(data, source)
    return str(info.value)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        ({"name": None}, "name: "),
        ({"extra": 1}, "extra: unknown field"),
        ({"traffic": {"routes": {"chat": 1}}}, "traffic: give exactly one of requests or duration"),
        (
            {"traffic": {"requests": 5, "concurrency": 2, "rate": 3, "routes": {"chat": 1}}},
            "traffic: give concurrency (closed loop) or rate (open loop), not both",
        ),
        (
            {"traffic": {"requests": 5, "routes": {"nope": 1}}},
            "traffic.routes.nope: not a route, pattern, rule set or model",
        ),
        (
            {"hypothesis": {"checks": [{"check": "nope"}]}},
            "hypothesis.checks.0: unknown check 'nope'",
        ),
        (
            {"hypothesis": {"checks": [{"check": "success_rate"}]}},
            "hypothesis.checks.0.success_rate.min: required field is missing",
        ),
        (
            {"hypothesis": {"checks": [{"check": "success_rate", "min": 1.5}]}},
            "hypothesis.checks.0.success_rate.min: Input should be less than or equal to 1 (got 1.5)",
        ),
        (
            {"hypothesis": {"checks": [{"check": "success_rate", "min": 0.9, "phases": ["later"]}]}},
            "names unknown phase 'later'",
        ),
        (
            {"hypothesis": {"checks": [{"check": "breaker_opened", "model": "gpt-9", "within": "1s"}]}},
            "hypothesis.checks.0.model: 'gpt-9' is not a model",
        ),
        (
            {"hypothesis": {"checks": [{"check": "fallback_rate"}]}},
            "fallback_rate needs min, max or both",
        ),
        ({"chaos": "library:no-such-scenario"}, "no shipped scenario named 'no-such-scenario'"),
        ({"chaos": {"rules": [{"name": "x", "fault": "nope"}]}}, "unknown fault 'nope'"),
        (
            {"router": {"config": {"providers": {}, "models": {}}, "mode": "library"}},
            "traffic.routes.chat: not a route, pattern, rule set or model",
        ),
        ({"router": {"config": "missing.yaml"}}, "cannot read the router configuration"),
    ],
)
def test_bad_drills_name_the_file_and_the_field(change: dict[str, Any], expected: str) -> None:
    data = drill_data()
    for k, v in change.items():
        if v is None:
            del data[k]
        else:
            data[k] = v
    message = _error(data)
    assert message.startswith("d.yaml")
    assert expected in message


def test_phase_and_check_time_references_are_checked() -> None:
    data = drill_data(
        hypothesis={
            "phases": {"late": {"start": "rule:nope.end + 1s"}},
            "checks": [{"check": "breaker_opened", "model": "gpt-4o-mini", "within": "1s"}],
        }
    )
    message = _error(data)
    assert "hypothesis.phases.late: rule:nope.end + 1s names no windowed chaos rule" in message
    # the default `after: faults.start` needs a fault window, and this scenario has none
    assert "hypothesis.checks.0.after: faults.start: the chaos scenario has no windowed rule" in message


def test_unreadable_and_malformed_files(tmp_path: Path) -> None:
    with pytest.raises(DrillError, match="cannot read the drill file"):
        load_drill(tmp_path / "absent.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: [unclosed\n", encoding="utf-8")
    with pytest.raises(DrillError, match=r"bad.yaml: not valid YAML at line 2"):
        load_drill(bad)
    bad.write_text("- a list\n", encoding="utf-8")
    with pytest.raises(DrillError, match="must be a mapping"):
        load_drill(bad)


@pytest.mark.parametrize(
    ("text", "anchor", "edge", "offset"),
    [
        ("2.5s", None, "start", 2.5),
        (3, None, "start", 3.0),
        ("faults.start", "faults", "start", 0.0),
        ("faults.end + 2s", "faults", "end", 2.0),
        ("rule:a.b-c.end - 500ms", "rule:a.b-c", "end", -0.5),
    ],
)
def test_time_references_parse(text: Any, anchor: str | None, edge: str, offset: float) -> None:
    ref = TimeRef.parse(text)
    assert (ref.anchor, ref.edge, ref.offset) == (anchor, edge, offset)
    assert TimeRef.parse(str(ref)) == ref


def test_bad_time_reference() -> None:
    with pytest.raises(ValueError, match=r"expected 'faults\.start'"):
        TimeRef.parse("faults.middle")


def test_windows_and_scaling_of_a_scenario() -> None:
    scenario = load_scenario(shipped()["brownout"].parent.parent / "scenarios" / "brownout.yaml")
    w = Windows.of(scenario)
    assert w.rules["anthropic-overloaded"] == (10.0, 100.0)
    scaled = Windows.of(scale_scenario(scenario, 0.1))
    assert scaled.rules["anthropic-overloaded"] == pytest.approx((1.0, 10.0))
    assert scaled.overall == pytest.approx((1.0, 10.0))
    assert TimeRef.parse("rule:anthropic-overloaded-in-stream.end + 1s").resolve(scaled) == pytest.approx(8.0)
    assert TimeRef.parse("faults.start").resolve(Windows({}, (None, None))) is None


def test_an_unset_variable_in_the_router_config_names_its_field(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TURNOUT_T_NONE", raising=False)
    data = drill_data()
    data["router"]["overrides"]["providers"] = {"openai": {"api_key": "${TURNOUT_T_NONE}"}}
    field = r"<drill>: router\.config\.providers\.openai\.api_key"
    with pytest.raises(DrillError, match=rf"{field}: environment variable TURNOUT_T_NONE is not set"):
        parse_drill(data).router_config_data("http://127.0.0.1:9")
    monkeypatch.setenv("TURNOUT_T_NONE", "k")
    config = parse_drill(data).router_config_data("http://127.0.0.1:9")
    assert config["providers"]["openai"]["api_key"] == "k"
    assert config["providers"]["openai"]["base_url"].startswith("http://127.0.0.1:9/")
