"""Bad completions: a normal 200 whose content is wrong in a way a client must handle.

They set ``request.patch`` (an :class:`~mockproviders.types.AnswerPatch`) and the mock's core
renders the patched answer, streamed or not, in the provider's own format. Through the proxy the
upstream's answer cannot be patched, so there these faults never apply (``ChaosEngine.can_patch``).
"""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field

from chaos.faults._base import Fault, FaultContext, FaultParams, register
from mockproviders.types import AnswerPatch, Handler, MockRequest, MockResponse

_COMPLETIONS = frozenset({"chat", "messages", "responses"})


class CompletionFault(Fault[FaultParams]):
    """Base: ``patch`` says what to change; ``apply`` hands it to the core."""

    family = "completion"
    endpoints = _COMPLETIONS

    def patch(self) -> AnswerPatch:
        raise NotImplementedError

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        request.patch = self.patch()
        return await call_next(request)


class FinishReasonParams(FaultParams):
    reason: Literal["length", "content_filter"] = "length"


@register
class FinishReason(CompletionFault):
    """The answer stops for ``length`` (Anthropic ``max_tokens``) or ``content_filter`` (``refusal``)."""

    name = "finish_reason"
    Params: ClassVar[type[FaultParams]] = FinishReasonParams

    def patch(self) -> AnswerPatch:
        p: FinishReasonParams = self.params  # type: ignore[assignment]
        return AnswerPatch(finish_reason=p.reason)


@register
class EmptyContent(CompletionFault):
    """A 200 with an empty answer text."""

    name = "empty_content"

    def patch(self) -> AnswerPatch:
        return AnswerPatch(content="")


class BadToolArgumentsParams(FaultParams):
    arguments: str = Field(default='{"city": "Par', description="raw arguments text, not valid JSON")


@register
class BadToolArguments(CompletionFault):
    """Tool calls whose ``arguments`` are not valid JSON. Only requests that offer tools get it."""

    name = "bad_tool_arguments"
    Params: ClassVar[type[FaultParams]] = BadToolArgumentsParams

    def applies_to(self, request: MockRequest) -> bool:
        body = request.json
        return super().applies_to(request) and isinstance(body, dict) and bool(body.get("tools"))

    def patch(self) -> AnswerPatch:
        p: BadToolArgumentsParams = self.params  # type: ignore[assignment]
        return AnswerPatch(tool_arguments=p.arguments)
