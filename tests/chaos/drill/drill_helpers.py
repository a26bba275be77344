"""Helpers for the drill tests: synthetic observations and small drill files."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from chaos.drill.record import Attempt, Observations, RequestRecord, Upstream

ROUTER = str(Path(__file__).resolve().parents[3] / "chaos" / "drills" / "router" / "three-providers.yaml")


def req(
    i: int,
    start: float = 0.0,
    latency: float = 0.1,
    *,
    outcome: str = "success",
    winner: str | None = "gpt-4o-mini",
    fallback: bool = False,
    route: str = "chat",
    stream: bool = False,
    **kw: Any,
) -> RequestRecord:
    """A synthetic request record."""
    r = RequestRecord(id=i, route=route, stream=stream, prompt=0, start=start, end=start + latency)
    r.outcome = outcome  # type: ignore[assignment]
    r.winner = winner if outcome == "success" else None
    r.fallback = fallback
    r.audited = kw.pop("audited", True)
    for k, v in kw.items():
        setattr(r, k, v)
    return r


def up(
    drill_id: int, t: float, *, status: int | None = 200, model: str = "gpt-4o-mini", **kw: Any
) -> Upstream:
    return Upstream(drill_id=drill_id, t=t, provider="openai", model=model, stream=False, status=status, **kw)


def attempt(model: str = "gpt-4o-mini", outcome: str = "success") -> Attempt:
    return Attempt(model=model, provider="openai", outcome=outcome)


def obs(requests: list[RequestRecord], **kw: Any) -> Observations:
    kw.setdefault("duration", 10.0)
    kw.setdefault("phases", {"before": (0.0, 2.0), "during": (2.0, 6.0), "after": (6.0, 10.0)})
    return Observations(requests=requests, **kw)


def drill_data(**over: Any) -> dict[str, Any]:
    """A small valid drill as data: 3 s of light traffic, OpenAI failing a third of the time."""
    data: dict[str, Any] = {
        "name": "tiny",
        "seed": 11,
        "chaos": {
            "rules": [
                {
                    "name": "openai-503",
                    "fault": "server_error",
                    "params": {"status": 503},
                    "match": {"provider": "openai"},
                    "when": {"probability": 0.3},
                }
            ]
        },
        "router": {
            "config": ROUTER,
            "overrides": {"defaults": {"breaker": {"failures": 1000}}},
        },
        "traffic": {"requests": 24, "concurrency": 2, "stream_share": 0.5, "routes": {"chat": 1}},
        "hypothesis": {
            "checks": [
                {"check": "success_rate", "min": 0.99},
                {"check": "no_truncated_success"},
                {"check": "nothing_lost"},
            ]
        },
    }
    for key, value in over.items():
        data[key] = value
    return data
