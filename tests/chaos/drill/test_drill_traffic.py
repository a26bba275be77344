"""The traffic plan (fixed by the seed) and the join of the router's view with the mock's."""

from __future__ import annotations

from collections import Counter
from typing import Any

from drill_helpers import req, up

from chaos.drill.runner import join, resolve_phases
from chaos.drill.spec import TrafficSpec, load_drill, shipped
from chaos.drill.traffic import Plan


def spec(**kw: Any) -> TrafficSpec:
    base: dict[str, Any] = {"requests": 400, "routes": {"a": 3, "b": 1}, "stream_share": 0.25}
    return TrafficSpec.model_validate(base | kw)


def test_the_plan_is_fixed_by_the_seed() -> None:
    one, two, other = Plan(spec(), 1), Plan(spec(), 1), Plan(spec(), 2)
    assert [one.request(i) for i in range(50)] == [two.request(i) for i in range(50)]
    assert [one.request(i) for i in range(50)] != [other.request(i) for i in range(50)]


def test_the_plan_follows_weights_and_stream_share() -> None:
    plan = Plan(spec(), 7)
    reqs = [plan.request(i) for i in range(400)]
    routes = Counter(r.route for r in reqs)
    assert 250 < routes["a"] < 350 and routes["a"] + routes["b"] == 400
    assert 60 < sum(r.stream for r in reqs) < 140
    assert {r.prompt for r in reqs} == set(range(len(spec().prompts)))


def test_open_loop_arrivals() -> None:
    uniform = Plan(spec(rate=4.0), 1)
    assert [uniform.arrival(i) for i in range(3)] == [0.0, 0.25, 0.5]
    poisson = Plan(spec(rate=4.0, arrivals="poisson"), 1)
    times = [poisson.arrival(i) for i in range(200)]
    assert times == sorted(times) and times[0] == 0.0
    assert 30 < times[-1] < 70  # about 200 / 4 s
    assert Plan(spec(rate=4.0, arrivals="poisson"), 1).arrival(199) == times[-1]


class _Target:
    def __init__(self, audits: dict[int, Any]) -> None:
        self.audits = audits

    def audit_for(self, rec: Any) -> Any:
        return self.audits.get(rec.id)


class _Audit:
    def __init__(self, winner: str, candidates: list[str]) -> None:
        self.winner, self.candidates, self.attempts = winner, candidates, []
        self.cost_usd, self.error_kind, self.saved_usd = 0.001, None, None


def test_join_decides_completeness_from_what_the_mock_sent() -> None:
    whole = req(0, winner="gpt", text="Hello there")
    cut = req(1, winner="gpt", text="Hello")
    unterminated = req(2, winner="gpt", text="Hello there", stream=True)
    upstream = [
        up(0, 0.0, delivered="Hello there", model="gpt-id"),
        up(1, 0.0, delivered="Hello there", model="gpt-id"),
        up(2, 0.0, delivered="Hello there", model="gpt-id", terminated=False),
        up(7, 0.0),  # a request the drill did not send
        up(None, 0.0),  # type: ignore[arg-type]
    ]
    for r in (whole, cut, unterminated):
        r.complete = None
    audits = {i: _Audit("gpt", ["other", "gpt"]) for i in range(3)}
    untagged = join([whole, cut, unterminated], upstream, _Target(audits), {"gpt": "gpt-id"})  # type: ignore[arg-type]
    assert (whole.complete, cut.complete, unterminated.complete) == (True, False, False)
    assert whole.fallback and whole.audited and whole.cost_usd == 0.001
    assert len(untagged) == 2


def test_default_phases_follow_the_fault_windows() -> None:
    drill = load_drill(shipped()["provider-outage"])
    phases = resolve_phases(drill, 5.0)
    assert phases["before"] == (0.0, 0.5) and phases["during"] == (0.5, 3.5) and phases["after"] == (3.5, 5.0)
    assert phases["outage"] == (0.7, 3.5) and phases["recovered"] == (4.5, 5.0)
    short = resolve_phases(drill, 2.0)  # a drill cut short: phases are clipped to it
    assert short["during"] == (0.5, 2.0) and short["after"] == (2.0, 2.0)
