"""The chaos engine: rules, seed, clock, counters and journal; an Interceptor for the mock's chain.

For each request the engine (1) numbers it (its own arrival counter, reset with the engine),
(2) if per-request fault headers are enabled and present, applies that fault, (3) otherwise
evaluates every rule in order (target, then trigger; see :mod:`chaos.rules`) and applies the
first that fires, (4) lets the request through the real rate limits, if any, and (5) records
the outcome in its journal. A fault sets ``request.annotations`` (``fault``: the rule's name,
``fault_kind``: the fault's name) which the mock copies into its own journal too.

Per-request fault headers (off unless ``header_faults=True``)::

    x-turnout-fault: rate_limit
    x-turnout-fault-params: {"retry_after": 3}
"""

from __future__ import annotations

from collections import deque
from collections.abc import AsyncIterator, Callable, Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from chaos.faults import Fault, FaultContext
from chaos.faults._bodies import error_response
from chaos.limits import Limit, RateLimits
from chaos.rules import Rule
from chaos.triggers import Trigger, TriggerState
from mockproviders.clock import SystemClock
from mockproviders.types import AbortConnection, Clock, Handler, MockRequest, MockResponse, StreamEvent
from turnout import safejson

if TYPE_CHECKING:
    from chaos.scenario import Scenario

FAULT_HEADER = "x-turnout-fault"
FAULT_PARAMS_HEADER = "x-turnout-fault-params"


@dataclass(slots=True)
class _Compiled:
    rule: Rule
    fault: Fault[Any]
    trigger: Trigger
    matched: int = 0
    injected: int = 0


@dataclass(slots=True)
class _Decision:
    name: str
    fault: Fault[Any]
    entry: dict[str, Any] = field(default_factory=dict)


class ChaosEngine:
    """Holds the fault rules, the seed and the clock; is the mock's fault Interceptor.

    >>> engine = ChaosEngine([Rule(name="storm", fault="rate_limit", when={"probability": 0.2})], seed=7)
    """

    def __init__(
        self,
        rules: Iterable[Rule] = (),
        *,
        seed: int = 0,
        limits: Iterable[Limit] = (),
        clock: Clock | None = None,
        header_faults: bool = False,
        journal_size: int = 100_000,
    ) -> None:
        self.seed = seed
        self.clock: Clock = clock or SystemClock()
        self.header_faults = header_faults
        # Whether the host can apply ``request.patch`` (the mock can; the proxy cannot rewrite an
        # upstream's answer). Where it cannot, completion faults are not applicable at all, so the
        # journal never claims a fault that did not happen.
        self.can_patch = True
        self.limits = RateLimits(limits, self.clock)
        self._rules: list[_Compiled] = []
        self._journal: deque[dict[str, Any]] = deque(maxlen=journal_size)
        self._index = 0
        self._start = self.clock.now()
        self.scenario: Scenario | None = None
        for rule in rules:
            self.add_rule(rule)

    @classmethod
    def from_scenario(cls, scenario: Scenario, **kwargs: Any) -> ChaosEngine:
        """An engine with the scenario's rules, limits and seed (``kwargs`` as for the constructor)."""
        engine = cls(**kwargs)
        engine.load(scenario)
        return engine

    # -- rules ------------------------------------------------------------------------------

    @property
    def rules(self) -> list[Rule]:
        return [c.rule for c in self._rules]

    def get_rule(self, name: str) -> Rule:
        return self._find(name).rule

    def add_rule(self, rule: Rule) -> None:
        """Append a rule; ValueError if its name is taken."""
        if any(c.rule.name == rule.name for c in self._rules):
            raise ValueError(f"a rule named {rule.name!r} already exists")
        self._rules.append(_Compiled(rule, rule.build_fault(), rule.build_trigger()))

    def replace_rule(self, rule: Rule) -> bool:
        """Replace the rule of the same name in place (its counters restart), or append it.
        Returns True if it replaced one."""
        compiled = _Compiled(rule, rule.build_fault(), rule.build_trigger())
        for i, c in enumerate(self._rules):
            if c.rule.name == rule.name:
                self._rules[i] = compiled
                return True
        self._rules.append(compiled)
        return False

    def remove_rule(self, name: str) -> None:
        """Remove a rule by name; KeyError if there is none."""
        self._rules.remove(self._find(name))

    def clear_rules(self) -> None:
        self._rules.clear()

    def _find(self, name: str) -> _Compiled:
        for c in self._rules:
            if c.rule.name == name:
                return c
        raise KeyError(f"no rule named {name!r}")

    # -- state ------------------------------------------------------------------------------

    def load(self, scenario: Scenario) -> None:
        """Take the scenario's seed, rules and limits, then :meth:`reset`."""
        self.scenario = scenario
        self.seed = scenario.seed
        self._rules = [_Compiled(r, r.build_fault(), r.build_trigger()) for r in scenario.rules]
        self.limits = RateLimits(scenario.limits, self.clock)
        self.reset()

    def reset(self) -> None:
        """Journal, counters, rate-limit buckets, request numbering and time zero start afresh."""
        self._journal.clear()
        self._index = 0
        self._start = self.clock.now()
        self.limits.reset()
        for c in self._rules:
            c.matched = c.injected = 0

    def elapsed(self) -> float:
        """Seconds since the engine started or was reset, on its clock."""
        return self.clock.now() - self._start

    @property
    def journal(self) -> list[dict[str, Any]]:
        """One entry per request: index, time, target, the rule and fault applied, the outcome."""
        return list(self._journal)

    def counters(self) -> dict[str, dict[str, int]]:
        """Per rule: ``matched`` (requests its target selected) and ``injected`` (faults applied)."""
        return {c.rule.name: {"matched": c.matched, "injected": c.injected} for c in self._rules}

    # -- the interceptor --------------------------------------------------------------------

    def _decide(self, request: MockRequest, index: int, elapsed: float) -> _Decision | None:
        chosen: _Compiled | None = None
        for c in self._rules:
            if not c.rule.match.matches(request) or not self._applicable(c.fault, request):
                continue
            state = TriggerState(self.seed, c.rule.name, index, c.matched, elapsed)
            c.matched += 1
            if chosen is None and c.trigger.fires(state):
                chosen = c
        if chosen is None:
            return None
        chosen.injected += 1
        return _Decision(chosen.rule.name, chosen.fault)

    def _applicable(self, fault: Fault[Any], request: MockRequest) -> bool:
        return fault.applies_to(request) and (self.can_patch or fault.family != "completion")

    def _header_decision(self, request: MockRequest) -> _Decision | MockResponse | None:
        fault_name = request.headers.get(FAULT_HEADER)
        if not self.header_faults or not fault_name:
            return None
        try:
            raw = request.headers.get(FAULT_PARAMS_HEADER)
            params = safejson.loads(raw, what=FAULT_PARAMS_HEADER) if raw else {}
            rule = Rule.model_validate({"name": "header", "fault": fault_name.strip(), "params": params})
        except (ValueError, ValidationError) as exc:
            text = str(exc).splitlines()
            detail = (
                "; ".join(line.strip() for line in text[1:3]) if isinstance(exc, ValidationError) else text[0]
            )
            message = f"{FAULT_HEADER}: {detail}"
            return error_response(request.provider, 400, "invalid_request_error", message)
        fault = rule.build_fault()
        if not self._applicable(fault, request):
            message = f"{FAULT_HEADER}: {rule.fault} cannot happen to this request"
            return error_response(request.provider, 400, "invalid_request_error", message)
        return _Decision(f"header:{rule.fault}", fault)

    async def __call__(self, request: MockRequest, call_next: Handler) -> MockResponse:
        index = self._index
        self._index += 1
        elapsed = self.elapsed()
        entry: dict[str, Any] = {
            "index": index,
            "time": round(elapsed, 6),
            "provider": request.provider,
            "endpoint": request.endpoint,
            "method": request.method,
            "path": request.path,
            "model": request.model,
            "stream": request.stream,
            "rule": None,
            "fault": None,
            "status": None,
            "aborted": None,
        }
        self._journal.append(entry)
        decision: _Decision | MockResponse | None = self._header_decision(request)
        if isinstance(decision, MockResponse):
            entry["status"] = decision.status
            return decision
        if decision is None:
            decision = self._decide(request, index, elapsed)
        limited = self._limited(entry, call_next)
        try:
            if decision is None:
                response = await limited(request)
            else:
                entry["rule"], entry["fault"] = decision.name, decision.fault.name
                request.annotations.update(fault=decision.name, fault_kind=decision.fault.name)
                ctx = FaultContext(decision.name, self.seed, index, self.clock)
                response = await decision.fault.apply(request, limited, ctx)
        except AbortConnection as exc:
            entry["aborted"] = exc.mode
            raise
        entry["status"] = response.status
        if decision is not None and response.stream is not None:
            response.stream = _watch(response.stream, entry)
        return response

    def _limited(self, entry: dict[str, Any], call_next: Handler) -> Handler:
        if not self.limits.limits:
            return call_next

        async def through_limits(request: MockRequest) -> MockResponse:
            refusal, headers, label = self.limits.check(request)
            if refusal is not None:
                if entry["rule"] is None:
                    entry["rule"], entry["fault"] = label, "real_rate_limit"
                request.annotations.update(fault=label, fault_kind="real_rate_limit")
                return refusal
            try:
                response = await call_next(request)
            except BaseException:
                self.limits.release(request)
                raise
            # The scenario's limit governs this answer: its headers replace the upstream's own
            # (the mock's defaults), so a client learns the limit before it hits it.
            response.headers.update(headers)
            if response.stream is not None and self.limits.counts_inflight:
                response.stream = _release_after(response.stream, lambda: self.limits.release(request))
            else:
                self.limits.release(request)
            return response

        return through_limits


async def _release_after(
    events: AsyncIterator[StreamEvent], release: Callable[[], None]
) -> AsyncIterator[StreamEvent]:
    """Passes a stream through and calls ``release`` once it has ended, however it ends."""
    try:
        async for event in events:
            yield event
    finally:
        release()


async def _watch(events: AsyncIterator[StreamEvent], entry: dict[str, Any]) -> AsyncIterator[StreamEvent]:
    """Records in the journal entry a stream the fault cut (``aborted``) or ended with an error."""
    try:
        async for event in events:
            if event.kind == "error":
                entry["stream_error"] = True
            yield event
    except AbortConnection as exc:
        entry["aborted"] = exc.mode
        raise
