"""Prompt variants: the same task phrased for each model, versioned, chosen with the model.

    summarize = PromptSet("summarize", default=Variant("v1", "Summarize:\\n{input}"),
                          models={"claude": Variant("v3", "<text>{input}</text>\\nSummarize it.")})
    router.use(Planner([PromptVariants([summarize], routes={"summarization": "summarize"})]))

A request on a route with a prompt set (``prompt:`` on the route in YAML), or one whose metadata
``prompt`` names a set, is rewritten for each deployment it is sent to: the variant's template,
rendered with ``{input}`` (the caller's last user message) and ``{metadata.KEY}``, replaces that
message, and the variant's ``system`` (if any) the system prompt. The audit trail records
``prompt variant summarize@v3 for claude``.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from router.errors import BadRequest
from router.patterns.planner import PlanContext
from router.patterns.template import TemplateError, render
from router.types import ChatRequest, Message

if TYPE_CHECKING:
    from router.patterns.config import PromptConfig, PromptVariantConfig

__all__ = ["PromptSet", "PromptVariants", "Variant", "apply_variant"]


@dataclass(frozen=True, slots=True)
class Variant:
    version: str
    template: str = "{input}"
    system: str | None = None


@dataclass(frozen=True, slots=True)
class PromptSet:
    """A task's prompt: a default variant and one per deployment that needs its own phrasing."""

    name: str
    default: Variant
    models: Mapping[str, Variant] = field(default_factory=dict)

    def for_model(self, deployment: str) -> Variant:
        return self.models.get(deployment, self.default)


def apply_variant(request: ChatRequest, variant: Variant) -> ChatRequest:
    """``request`` with its last user message (and system prompt) replaced by the variant's."""
    messages = list(request.messages)
    idx = next((i for i in range(len(messages) - 1, -1, -1) if messages[i].role == "user"), None)
    values = {"input": messages[idx].text if idx is not None else ""}
    values.update({f"metadata.{k}": v for k, v in request.metadata.items()})
    text = render(variant.template, values)
    if idx is None:
        messages.append(Message("user", text))
    else:
        messages[idx] = replace(messages[idx], content=text)
    system = render(variant.system, values) if variant.system is not None else request.system
    return replace(request, messages=messages, system=system)


class PromptVariants:
    """A plan step: rewrites each attempt's request with the deployment's variant."""

    def __init__(self, sets: Iterable[PromptSet], routes: Mapping[str, str] | None = None) -> None:
        self.sets = {s.name: s for s in sets}
        self.routes = dict(routes or {})  # route -> prompt set name

    @classmethod
    def from_config(cls, prompts: Mapping[str, PromptConfig], routes: Mapping[str, str]) -> PromptVariants:
        def v(c: PromptVariantConfig) -> Variant:
            return Variant(c.version, c.template, c.system)

        sets = [
            PromptSet(name, v(p.default), {m: v(c) for m, c in p.models.items()})
            for name, p in prompts.items()
        ]
        return cls(sets, routes)

    def names(self) -> list[str]:
        return []

    async def __call__(self, ctx: PlanContext) -> None:
        name = ctx.request.metadata.get("prompt") or self.routes.get(ctx.route)
        if name is None:
            return
        pset = self.sets.get(name)
        if pset is None:
            ctx.notes.append(f"prompt set {name!r} is not configured; request sent as it is")
            return

        def prepare(deployment: str, request: ChatRequest, decisions: list[str]) -> ChatRequest:
            variant = pset.for_model(deployment)
            note = f"prompt variant {pset.name}@{variant.version} for {deployment}"
            if note not in decisions:
                decisions.append(note)
            try:
                return apply_variant(request, variant)
            except TemplateError as exc:  # a metadata field the template needs is missing
                raise BadRequest(f"prompt {note}: {exc}", model=deployment) from exc

        ctx.prepares.append(prepare)
