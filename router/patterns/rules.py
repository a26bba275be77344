"""Task routing: a model name whose rules pick the route, each decision naming the rule that fired.

    rules = RoutingRules("smart", [
        Rule("long-input", route="long-context", input_tokens_over=8000),
        Rule("code", route="coder", has_code=True),
        Rule("vip", route="premium", metadata={"tier": "vip"}),
        Rule("triage", route="cheap", function=lambda req: "urgent" not in req.messages[-1].text),
    ], default="chat")
    router.use(Planner([rules]))            # or `rules:` in the YAML
    await router.complete(ChatRequest(model="smart", messages=[...]))
    # decisions: "rule long-input fired: 9120 tokens > 8000 → route long-context"

Conditions of one rule must all hold; the first rule that fires wins; ``default`` otherwise.
Input length is estimated at 4 characters a token, as the rate limiter does.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from router.patterns.planner import PlanContext
from router.types import ChatRequest

if TYPE_CHECKING:
    from router.patterns.config import RuleSetConfig, RuleWhen

__all__ = ["RoutingRules", "Rule", "has_code", "input_tokens", "rules_from_config", "user_turns"]

Condition = Callable[[ChatRequest], str | None]  # why it holds, or None


def input_tokens(request: ChatRequest) -> int:
    """The request's input in tokens, estimated at 4 characters a token."""
    chars = sum(len(m.text) for m in request.messages)
    if request.system is not None:
        chars += (
            len(request.system)
            if isinstance(request.system, str)
            else sum(len(p.text) for p in request.system)
        )
    return (chars + 3) // 4


def has_code(request: ChatRequest) -> bool:
    """A fenced code block (```) in any message."""
    return any("```" in m.text for m in request.messages)


def user_turns(request: ChatRequest) -> int:
    return sum(1 for m in request.messages if m.role == "user")


def import_callable(path: str) -> Callable[..., Any]:
    """``module:attr`` (for ``function:`` and ``pydantic:`` in the YAML); a ConfigError if it is not one."""
    from router.config import ConfigError

    module, _, attr = path.partition(":")
    try:
        obj: Any = importlib.import_module(module)
        for part in attr.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise ConfigError(f"cannot import {path}: {exc}") from None
    if not callable(obj):
        raise ConfigError(f"{path} is not callable")
    return obj


class Rule:
    """A named rule: when every given condition holds, the request goes to ``route``."""

    def __init__(
        self,
        name: str,
        *,
        route: str,
        task: str | Sequence[str] | None = None,
        input_tokens_over: int | None = None,
        has_code: bool | None = None,
        turns_over: int | None = None,
        metadata: Mapping[str, str] | None = None,
        function: Callable[[ChatRequest], bool] | None = None,
    ) -> None:
        self.name, self.route = name, route
        conds: list[Condition] = []
        if task is not None:
            tasks = (task,) if isinstance(task, str) else tuple(task)
            conds.append(_task(tasks))
        if input_tokens_over is not None:
            conds.append(_long(input_tokens_over))
        if has_code is not None:
            conds.append(_code(has_code))
        if turns_over is not None:
            conds.append(_turns(turns_over))
        if metadata:
            conds.append(_metadata(dict(metadata)))
        if function is not None:
            conds.append(_function(function))
        if not conds:
            raise ValueError(f"rule {name!r} has no condition")
        self.conditions = conds

    def check(self, request: ChatRequest) -> str | None:
        """Why the rule fires (the conditions' reasons joined), or None if it does not."""
        reasons = []
        for cond in self.conditions:
            why = cond(request)
            if why is None:
                return None
            reasons.append(why)
        return ", ".join(reasons)


def _task(tasks: tuple[str, ...]) -> Condition:
    def cond(r: ChatRequest) -> str | None:
        t = r.metadata.get("task")
        return f"task {t}" if t in tasks else None

    return cond


def _long(limit: int) -> Condition:
    def cond(r: ChatRequest) -> str | None:
        n = input_tokens(r)
        return f"{n} tokens > {limit}" if n > limit else None

    return cond


def _code(want: bool) -> Condition:
    def cond(r: ChatRequest) -> str | None:
        found = has_code(r)
        if found != want:
            return None
        return "a code block" if found else "no code block"

    return cond


def _turns(limit: int) -> Condition:
    def cond(r: ChatRequest) -> str | None:
        n = user_turns(r)
        return f"{n} turns > {limit}" if n > limit else None

    return cond


def _metadata(want: dict[str, str]) -> Condition:
    def cond(r: ChatRequest) -> str | None:
        if all(r.metadata.get(k) == v for k, v in want.items()):
            return ", ".join(f"{k}={v}" for k, v in want.items())
        return None

    return cond


def _function(fn: Callable[[ChatRequest], bool]) -> Condition:
    label = getattr(fn, "__name__", "function")

    def cond(r: ChatRequest) -> str | None:
        return f"{label}() is true" if fn(r) else None

    return cond


class RoutingRules:
    """A plan step: a request naming ``name`` goes where the first firing rule says."""

    def __init__(self, name: str, rules: Sequence[Rule], default: str) -> None:
        self.name, self.rules, self.default = name, list(rules), default

    def names(self) -> list[str]:
        return [self.name]

    def select(self, request: ChatRequest) -> tuple[str, str]:
        """``(route, decision)``."""
        for rule in self.rules:
            why = rule.check(request)
            if why is not None:
                return rule.route, f"rule {rule.name} fired: {why} → route {rule.route}"
        return self.default, f"rules {self.name}: no rule fired → default route {self.default}"

    async def __call__(self, ctx: PlanContext) -> None:
        if ctx.route != self.name:
            return
        ctx.route, note = self.select(ctx.request)
        ctx.chain = None
        ctx.notes.append(note)


def _rule(name: str, when: RuleWhen, route: str) -> Rule:
    fn = import_callable(when.function) if when.function else None
    return Rule(
        name,
        route=route,
        task=when.task,
        input_tokens_over=when.input_tokens_over,
        has_code=when.has_code,
        turns_over=when.turns_over,
        metadata=when.metadata,
        function=fn,
    )


def rules_from_config(sets: Mapping[str, RuleSetConfig]) -> list[RoutingRules]:
    return [
        RoutingRules(name, [_rule(r.name, r.when, r.route) for r in rs.rules], rs.default)
        for name, rs in sets.items()
    ]
