"""What a drill observed: one record per request sent, with its attempts and upstream calls.

Times are seconds since the drill started (the moment the chaos engine's clock was reset and the
first request went out), on one monotonic clock shared by the traffic, the router listener and
the mock taps (they all run in this process).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

Outcome = Literal["success", "error", "truncated", "timeout", "crash"]
CLEAN: frozenset[str] = frozenset({"success", "error"})
"""Outcomes that count as "answered or failed cleanly"; the others are lost requests."""


@dataclass(slots=True)
class Upstream:
    """One HTTP request the mock received on behalf of a drill request (seen by the drill's tap)."""

    drill_id: int | None  # None: the request carried no drill tag
    t: float
    provider: str
    model: str | None
    stream: bool
    t_end: float | None = None
    status: int | None = None  # None when the connection was dropped instead of answered
    fault: str | None = None  # the chaos rule that fired (or a real rate limit's label)
    fault_kind: str | None = None  # the fault's name
    aborted: str | None = None  # "reset" or "close"; "abandoned": the client left before the answer
    retry_after: float | None = None  # seconds, from a 429's headers
    terminated: bool | None = None  # a stream: its terminator was sent
    delivered: str | None = None  # answer text the mock sent (after any stream fault); None: no answer
    prefill: str | None = None  # the text the request asked to continue (a cut stream's continuation)


@dataclass(slots=True)
class Attempt:
    """One attempt (or skip) as the router's audit record tells it."""

    model: str
    provider: str
    outcome: str  # success | error | skipped | cancelled
    error_kind: str | None = None
    status: int | None = None
    latency_s: float = 0.0
    ttft_s: float | None = None
    wait_s: float = 0.0
    wait_source: str = "none"
    cost_usd: float | None = None
    continued_from: int | None = None  # a stream's continuation: characters carried over


@dataclass(slots=True)
class RequestRecord:
    """One drill request from start to outcome."""

    id: int
    route: str
    stream: bool
    prompt: int  # index into the traffic's prompts
    start: float
    end: float = 0.0
    outcome: Outcome = "crash"
    error_kind: str | None = None
    message: str | None = None
    ttft: float | None = None
    winner: str | None = None  # deployment that answered
    fallback: bool = False  # answered by a deployment other than the route's first
    text: str = ""
    complete: bool | None = None  # the answer matched what the mock sent (None: unknown)
    request_id: str | None = None
    cost_usd: float | None = None
    saved_usd: float | None = None  # a cascade's saving against always its top tier (audit record)
    audited: bool = False  # the router's audit record for it was found
    attempts: list[Attempt] = field(default_factory=list)
    upstream: list[Upstream] = field(default_factory=list)

    @property
    def latency(self) -> float:
        return self.end - self.start

    @property
    def ok(self) -> bool:
        return self.outcome == "success"

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["latency"] = round(self.latency, 6)
        out["text_chars"] = len(self.text)
        del out["text"]
        for up in out["upstream"]:  # the answer text itself would make the journal huge
            delivered = up.pop("delivered")
            up["delivered_chars"] = None if delivered is None else len(delivered)
            prefill = up.pop("prefill")
            up["prefill_chars"] = None if prefill is None else len(prefill)
        return out


@dataclass(frozen=True, slots=True)
class BreakerEvent:
    t: float
    model: str
    old: str
    new: str
    replica: int = 0  # which router, when the drill runs several sharing state


@dataclass(frozen=True, slots=True)
class AttemptEvent:
    """An attempt's end as the router's listener saw it (with the time it arrived)."""

    t: float
    route: str
    model: str
    outcome: str


@dataclass(slots=True)
class Observations:
    """Everything a drill gathered, ready for the checks."""

    requests: list[RequestRecord]
    breaker_events: list[BreakerEvent] = field(default_factory=list)
    attempt_events: list[AttemptEvent] = field(default_factory=list)
    untagged: list[Upstream] = field(default_factory=list)  # mock requests no drill request claimed
    phases: dict[str, tuple[float, float]] = field(default_factory=dict)  # name -> [start, end)
    duration: float = 0.0
    totals: dict[str, int] = field(default_factory=dict)  # counts from each independent source
    windows: dict[str, tuple[float | None, float | None]] = field(default_factory=dict)
    faults_span: tuple[float | None, float | None] = (None, None)

    def in_phase(self, phase: str) -> list[RequestRecord]:
        """Requests that started within the phase (``all`` is the whole drill)."""
        if phase == "all":
            return list(self.requests)
        start, end = self.phases[phase]
        return [r for r in self.requests if start <= r.start < end]
