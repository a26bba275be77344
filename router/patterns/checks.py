"""Confidence checks for a cascade tier: small objects, one async method, one :class:`Verdict`.

    json_valid()                      the answer parses as JSON (code fences allowed)
    pydantic_schema(Answer)           ... and validates against a pydantic model
    length(min_chars=20)              length heuristics
    self_confidence(0.7)              "confidence: 0.82" / "Confidence: 82%" in the answer
    scorer(fn, threshold=0.5)         a custom scorer or classifier: fn(request, response) -> float
    judge(router, "claude", 7)        a judge model scores the answer 0-10

A check that fails escalates the cascade to its next tier, with the verdict's reason recorded.
"""

from __future__ import annotations

import inspect
import json
import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from pydantic import BaseModel, ValidationError

from router.errors import RouterError
from router.types import ChatRequest, ChatResponse, Message

if TYPE_CHECKING:
    from router.patterns.config import CheckConfig
    from router.patterns.service import RouterService

__all__ = [
    "Check",
    "Verdict",
    "check_from_config",
    "json_valid",
    "judge",
    "length",
    "parse_confidence",
    "pydantic_schema",
    "scorer",
    "self_confidence",
    "strip_fences",
]


@dataclass(frozen=True, slots=True)
class Verdict:
    ok: bool
    reason: str
    score: float | None = None


class Check(Protocol):
    name: str

    async def __call__(self, request: ChatRequest, response: ChatResponse) -> Verdict: ...


_FENCE = re.compile(r"^\s*```[\w-]*\s*\n(.*?)\n\s*```\s*$", re.S)


def strip_fences(text: str) -> str:
    """The body of a single fenced code block, or the text as it is."""
    m = _FENCE.match(text)
    return m.group(1) if m else text.strip()


class json_valid:
    """The answer is valid JSON."""

    name = "json"

    async def __call__(self, request: ChatRequest, response: ChatResponse) -> Verdict:
        try:
            json.loads(strip_fences(response.content))
        except ValueError as exc:
            if isinstance(exc, json.JSONDecodeError):
                return Verdict(False, f"invalid JSON at line {exc.lineno} col {exc.colno}: {exc.msg}")
            return Verdict(False, f"invalid JSON: {exc}")
        return Verdict(True, "valid JSON")


class pydantic_schema:
    """The answer is JSON that validates against ``model``."""

    def __init__(self, model: type[BaseModel]) -> None:
        self.model = model
        self.name = f"schema {model.__name__}"

    async def __call__(self, request: ChatRequest, response: ChatResponse) -> Verdict:
        try:
            self.model.model_validate_json(strip_fences(response.content))
        except ValidationError as exc:
            first = exc.errors()[0]
            where = ".".join(str(p) for p in first["loc"]) or "the answer"
            return Verdict(
                False, f"{self.name}: {exc.error_count()} error(s), first at {where}: {first['msg']}"
            )
        return Verdict(True, f"matches {self.name}")


class length:
    """The answer's length in characters is within bounds."""

    def __init__(self, min_chars: int | None = None, max_chars: int | None = None) -> None:
        self.min_chars, self.max_chars = min_chars, max_chars
        self.name = "length"

    async def __call__(self, request: ChatRequest, response: ChatResponse) -> Verdict:
        n = len(response.content.strip())
        if self.min_chars is not None and n < self.min_chars:
            return Verdict(False, f"answer too short: {n} chars < {self.min_chars}", n)
        if self.max_chars is not None and n > self.max_chars:
            return Verdict(False, f"answer too long: {n} chars > {self.max_chars}", n)
        return Verdict(True, f"{n} chars", n)


_CONFIDENCE = re.compile(
    r"confidence\s*(?:level|score)?\s*[:=is ]+\s*(\d+(?:\.\d+)?)\s*(%|/\s*10\b|/\s*100\b)?", re.I
)


def parse_confidence(text: str) -> float | None:
    """A self-reported confidence in [0, 1]: "confidence: 0.8", "Confidence: 80%", "confidence 8/10"."""
    m = None
    for m in _CONFIDENCE.finditer(text):  # noqa: B007 - the last one reported wins
        pass
    if m is None:
        return None
    value, unit = float(m.group(1)), (m.group(2) or "").replace(" ", "")
    if unit == "%" or unit == "/100":
        value /= 100
    elif unit == "/10":
        value /= 10
    elif value > 1:
        value /= 100 if value <= 100 else value
    return min(max(value, 0.0), 1.0)


class self_confidence:
    """The model's own reported confidence is at least ``minimum``."""

    def __init__(self, minimum: float) -> None:
        self.minimum = minimum
        self.name = "confidence"

    async def __call__(self, request: ChatRequest, response: ChatResponse) -> Verdict:
        value = parse_confidence(response.content)
        if value is None:
            return Verdict(False, "no self-reported confidence in the answer")
        if value < self.minimum:
            return Verdict(False, f"self-reported confidence {value:.2f} < {self.minimum:.2f}", value)
        return Verdict(True, f"self-reported confidence {value:.2f}", value)


Scorer = Callable[[ChatRequest, ChatResponse], "float | bool | Awaitable[float | bool]"]


class scorer:
    """A custom scorer or classifier: ``fn(request, response)`` (sync or async) returns a score or a
    bool; below ``threshold`` (or False) escalates."""

    def __init__(self, fn: Scorer, threshold: float = 0.5, name: str | None = None) -> None:
        self.fn, self.threshold = fn, threshold
        self.name: str = name or getattr(fn, "__name__", None) or "scorer"

    async def __call__(self, request: ChatRequest, response: ChatResponse) -> Verdict:
        value: Any = self.fn(request, response)
        if inspect.isawaitable(value):
            value = await value
        score = float(value)
        if score < self.threshold:
            return Verdict(False, f"{self.name} scored {score:g} < {self.threshold:g}", score)
        return Verdict(True, f"{self.name} scored {score:g}", score)


JUDGE_SYSTEM = (
    "You grade answers. Given a request and an answer, reply with one integer from 0 (useless) "
    "to 10 (perfect) and nothing else."
)
_NUMBER = re.compile(r"\b(10|\d)(?:\.\d+)?\b")


class judge:
    """A judge model scores the answer 0-10 through the router; below ``min_score`` escalates."""

    def __init__(self, router: RouterService, route: str, min_score: float = 7.0) -> None:
        self.router, self.route, self.min_score = router, route, min_score
        self.name = f"judge {route}"

    async def __call__(self, request: ChatRequest, response: ChatResponse) -> Verdict:
        question = request.messages[-1].text if request.messages else ""
        ask = ChatRequest(
            model=self.route,
            system=JUDGE_SYSTEM,
            messages=[Message("user", f"Request:\n{question}\n\nAnswer:\n{response.content}\n\nScore:")],
            max_tokens=8,
            temperature=0,
            metadata=dict(request.metadata),
        )
        try:
            graded = await self.router.complete(ask)
        except RouterError as exc:
            return Verdict(False, f"{self.name} failed ({exc.kind.value}); escalating to be safe")
        m = _NUMBER.search(graded.content)
        if m is None:
            return Verdict(False, f"{self.name} gave no score ({graded.content[:40]!r})")
        score = float(m.group(1))
        if score < self.min_score:
            return Verdict(False, f"{self.name} scored {score:g}/10 < {self.min_score:g}", score)
        return Verdict(True, f"{self.name} scored {score:g}/10", score)


def check_from_config(c: CheckConfig, router: RouterService) -> Check:
    from router.patterns.rules import import_callable

    if c.json_valid:
        return json_valid()
    if c.pydantic is not None:
        return pydantic_schema(import_callable(c.pydantic))  # type: ignore[arg-type]
    if c.min_length is not None or c.max_length is not None:
        return length(c.min_length, c.max_length)
    if c.confidence is not None:
        return self_confidence(c.confidence)
    if c.judge is not None:
        return judge(router, c.judge.route, c.judge.min_score)
    assert c.function is not None
    return scorer(import_callable(c.function), c.threshold)
