"""Points in a drill's time: seconds from its start, or the start or end of the chaos windows.

A time reference in a drill file is one of::

    3s                      # 3 s after the drill started (a number or a duration string)
    faults.start            # when the first scheduled fault window opens
    faults.end + 2s         # 2 s after the last window closes
    rule:openai-down.end    # the end of one rule's window (or brownout)

Windows come from each rule's ``when: window`` or ``when: brownout``; a rule with neither
(a probability, a sequence) is active for the whole drill. ``faults.start`` is the earliest
window start and ``faults.end`` the latest end; both are None when no rule has a window, and
``end`` is None when a window never closes (a phase bounded by it then runs to the drill's end).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Annotated, Any

from pydantic import PlainSerializer, PlainValidator

from chaos.scenario import Scenario
from turnout.durations import parse_duration

_REF = re.compile(
    r"^(?:(?P<anchor>faults|rule:(?P<rule>[A-Za-z0-9_.:@-]+))\.(?P<edge>start|end))"
    r"\s*(?:(?P<sign>[+-])\s*(?P<offset>\S+))?$"
)


@dataclass(frozen=True, slots=True)
class TimeRef:
    """A parsed reference: ``anchor`` None (plain seconds), ``"faults"`` or ``"rule:NAME"``."""

    anchor: str | None
    edge: str  # "start" or "end"
    offset: float

    @classmethod
    def parse(cls, value: Any) -> TimeRef:
        """From a number, a duration string or an anchored expression; ValueError says why."""
        if isinstance(value, TimeRef):
            return value
        if isinstance(value, str):
            m = _REF.match(value.strip())
            if m is not None:
                offset = parse_duration(m.group("offset")) if m.group("offset") else 0.0
                if m.group("sign") == "-":
                    offset = -offset
                return cls(m.group("anchor"), m.group("edge"), offset)
            if value.strip().startswith(("faults", "rule:")):
                raise ValueError(
                    f"expected 'faults.start', 'faults.end', 'rule:NAME.start' or 'rule:NAME.end', "
                    f"optionally followed by '+ 2s' or '- 1s', got {value!r}"
                )
        return cls(None, "start", parse_duration(value))

    def __str__(self) -> str:
        if self.anchor is None:
            return f"{self.offset:g}s"
        sign = f" {'+' if self.offset >= 0 else '-'} {abs(self.offset):g}s" if self.offset else ""
        return f"{self.anchor}.{self.edge}{sign}"

    def describe(self) -> str:
        """In a reader's words: ``the first fault``, ``the end of the faults (recovery) + 2 s``,
        ``rule flap's start``."""
        if self.anchor is None:
            return f"{self.offset:g} s into the drill"
        if self.anchor == "faults":
            where = "the first fault" if self.edge == "start" else "the end of the faults (recovery)"
        else:
            where = f"rule {self.rule_name()}'s {self.edge}"
        sign = f" {'+' if self.offset >= 0 else '-'} {abs(self.offset):g} s" if self.offset else ""
        return where + sign

    def rule_name(self) -> str | None:
        return self.anchor[5:] if self.anchor is not None and self.anchor.startswith("rule:") else None

    def resolve(self, windows: Windows) -> float | None:
        """Seconds since the drill's start, or None when the anchor has no such edge."""
        if self.anchor is None:
            return self.offset
        if self.anchor == "faults":
            span = windows.overall
        else:
            span = windows.rules.get(self.anchor[5:], (None, None))
        base = span[0] if self.edge == "start" else span[1]
        return None if base is None else max(0.0, base + self.offset)


@dataclass(frozen=True, slots=True)
class Windows:
    """Each windowed rule's (start, end) and the overall span, in seconds since the start."""

    rules: dict[str, tuple[float | None, float | None]]
    overall: tuple[float | None, float | None]

    @classmethod
    def of(cls, scenario: Scenario) -> Windows:
        rules: dict[str, tuple[float | None, float | None]] = {}
        for rule in scenario.rules:
            w, b = rule.when.window, rule.when.brownout
            if w is not None:
                rules[rule.name] = (w.start, w.end)
            elif b is not None:
                rules[rule.name] = (b.start, b.start + b.ramp_up + b.hold + b.ramp_down)
        if not rules:
            return cls(rules, (None, None))
        start = min(s for s, _ in rules.values() if s is not None)
        ends = [e for _, e in rules.values()]
        end = None if any(e is None for e in ends) else max(e for e in ends if e is not None)
        return cls(rules, (start, end))


TimeRefField = Annotated[TimeRef, PlainValidator(TimeRef.parse), PlainSerializer(str, return_type=str)]
"""A pydantic field type for a :class:`TimeRef` written as text or a number."""


def scale_scenario(scenario: Scenario, factor: float) -> Scenario:
    """The scenario with every window and brownout time multiplied by ``factor`` (fault
    parameters such as delays and retry-after are left alone: they are what clients meet)."""
    if factor == 1.0:
        return scenario
    data = scenario.to_dict()
    for rule in data.get("rules", []):
        when = rule.get("when", {})
        for key in ("window", "brownout"):
            block = when.get(key)
            if isinstance(block, dict):
                for field in ("start", "end", "ramp_up", "hold", "ramp_down"):
                    if block.get(field) is not None:
                        block[field] = round(float(block[field]) * factor, 6)
    return Scenario.model_validate(data)
