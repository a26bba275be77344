"""Scenario files: the shipped library loads; mistakes are named by file, field path and expectation."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from hypothesis import given, settings
from hypothesis import strategies as st

from chaos import REGISTRY, Rule, Scenario, ScenarioError, library, load_scenario, parse_scenario
from chaos.targeting import Match
from mockproviders.types import MockRequest


def test_the_library_has_the_promised_scenarios_and_all_load() -> None:
    names = set(library())
    assert {
        "provider-outage",
        "rate-limit-storm",
        "brownout",
        "flapping-primary",
        "stream-cuts",
        "slow-first-tokens",
        "mixed-faults-5pct",
    } <= names
    for path in library().values():
        scenario = load_scenario(path)
        assert scenario.rules and scenario.description


def test_a_full_scenario_round_trips(tmp_path: Path) -> None:
    text = """
name: demo
seed: 9
mock: {default: {text: "hello there"}}
rules:
  - name: flap
    fault: server_error
    params: {status: 503, retry_after: 1.5}
    match: {provider: [openai, mistral], model: "gpt-4o*", headers: {X-Tenant: blue}}
    when: {sequence: "fail 3, pass 1", window: {start: 1s, end: 2m}}
limits:
  - {match: {provider: anthropic}, rpm: 5, tpm: 1000, window: 30s}
"""
    path = tmp_path / "demo.yaml"
    path.write_text(text)
    s = load_scenario(path)
    assert s.seed == 9 and s.mock is not None and s.mock.default is not None
    r = s.rules[0]
    assert r.params.model_dump()["status"] == 503 and r.params.model_dump()["retry_after"] == 1.5
    assert r.match.headers == {"x-tenant": ["blue"]}
    assert s.limits[0].window == 30
    again = parse_scenario(yaml.safe_load(yaml.safe_dump(s.to_dict())))
    assert again.to_dict() == s.to_dict()


def _error(data: object, source: str = "bad.yaml") -> str:
    with pytest.raises(ScenarioError) as info:
        parse_scenario(data, source)
    return str(info.value)


def test_unknown_fault_lists_the_known_ones() -> None:
    msg = _error({"rules": [{"name": "x", "fault": "explode"}]})
    assert msg.startswith("bad.yaml: invalid scenario")
    assert "rules.0.fault (rule 'x'): unknown fault 'explode'" in msg
    assert all(name in msg for name in REGISTRY.names())


def test_bad_param_names_the_dotted_path_and_the_expectation() -> None:
    msg = _error(
        {
            "rules": [
                {"name": "a", "fault": "reset"},
                {"name": "b", "fault": "cut", "params": {"after_tokens": "x"}},
            ]
        }
    )
    assert "rules.1.params.after_tokens (rule 'b')" in msg and "valid integer" in msg and "'x'" in msg
    msg = _error({"rules": [{"name": "a", "fault": "latency", "params": {"dealy": 1}}]})
    assert "rules.0.params.dealy (rule 'a'): unknown field" in msg
    assert "rules.0.params.delay (rule 'a'): required field is missing" in msg


def test_other_mistakes() -> None:
    assert "seed: Input should be a valid integer" in _error({"seed": "abc"})
    assert "two rules are named 'a'" in _error(
        {"rules": [{"name": "a", "fault": "reset"}, {"name": "a", "fault": "reset"}]}
    )
    assert "limits.0: Value error" not in _error({"limits": [{"match": {}}]})
    assert "a limit needs rpm, tpm, concurrent or a mix" in _error({"limits": [{"match": {}}]})
    assert "mock.rules.0.answer: required field is missing" in _error({"mock": {"rules": [{"match": {}}]}})
    assert "the top level must be a mapping" in _error([1, 2]) or "a scenario must be a mapping" in _error(
        [1, 2]
    )


def test_file_errors_name_the_file(tmp_path: Path) -> None:
    with pytest.raises(ScenarioError, match=r"missing\.yaml: cannot read"):
        load_scenario(tmp_path / "missing.yaml")
    bad = tmp_path / "broken.yaml"
    bad.write_text("rules:\n  - {name: a\n")
    with pytest.raises(ScenarioError, match=r"broken.yaml: not valid YAML at line \d+"):
        load_scenario(bad)


def test_targeting_matches_each_field() -> None:
    req = MockRequest(
        provider="openai", endpoint="chat", method="POST", path="/v1/chat/completions",
        headers={"x-tenant": "blue"}, body=b"", index=0, received_at=0.0, model="gpt-4o-mini", api_key="sk-1",
    )  # fmt: skip
    assert Match().matches(req)
    assert Match.model_validate(
        {"provider": "openai", "model": "gpt-4o*", "api_key": ["sk-1", "sk-2"]}
    ).matches(req)
    assert Match.model_validate({"headers": {"X-Tenant": ["red", "blue"]}}).matches(req)
    assert not Match.model_validate({"headers": {"x-tenant": "red"}}).matches(req)
    assert not Match.model_validate({"provider": "anthropic"}).matches(req)
    assert not Match.model_validate({"endpoint": "embeddings"}).matches(req)
    assert not Match.model_validate({"model": "gpt-5"}).matches(req)
    assert Match.model_validate({"path": "/v1/chat/*"}).matches(req)


_VALID_RULE = {"name": "ok", "fault": "server_error", "params": {"status": 502}}
_MUTATIONS = st.sampled_from(
    [
        ("fault", "nope"),
        ("name", ""),
        ("name", "has space"),
        ("params", {"status": 418}),
        ("params", {"status": 503, "retry_after": "soon"}),
        ("match", {"provider": "google"}),
        ("match", {"endpoint": 3}),
        ("when", {"probability": 2}),
        ("when", {"every": 0}),
        ("when", {"sequence": "fail three"}),
        ("when", {"sequence": "sometimes"}),
        ("when", {"window": {"start": 10, "end": 5}}),
        ("when", {"brownout": {"ramp_up": 1, "ramp_down": 1, "peak": 0}}),
        ("extra", 1),
    ]
)


@settings(max_examples=40, deadline=None)
@given(good=st.integers(0, 3), mutation=_MUTATIONS, where=st.integers(0, 3))
def test_an_invalid_rule_rejects_the_whole_file(good: int, mutation: tuple[str, object], where: int) -> None:
    rules: list[dict[str, object]] = [{**_VALID_RULE, "name": f"ok{i}"} for i in range(good)]
    key, value = mutation
    bad = {**_VALID_RULE, "name": "bad", key: value}
    position = min(where, len(rules))
    rules.insert(position, bad)
    with pytest.raises(ScenarioError) as info:
        parse_scenario({"rules": rules}, "s.yaml")
    msg = str(info.value)
    assert msg.startswith("s.yaml: invalid scenario")
    assert f"rules.{position}" in msg  # the path points at the bad rule, not a good one


def test_rules_validate_params_per_fault() -> None:
    r = Rule.model_validate(
        {"name": "a", "fault": "stall", "params": {"after_tokens": 2, "duration": "250ms"}}
    )
    assert r.to_dict()["params"] == {"after_tokens": 2, "duration": 0.25}
    assert isinstance(Scenario(rules=[r]).rules[0].build_fault(), REGISTRY["stall"])
    with pytest.raises(KeyError, match="known faults"):
        REGISTRY["nope"]
