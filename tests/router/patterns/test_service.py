"""The patterns need only the narrow RouterService of a router: a small fake one runs a cascade."""

from __future__ import annotations

from typing import Any

from router.clock import FakeClock
from router.errors import ServerError
from router.patterns import Cascade, RouterService
from router.patterns.checks import length
from router.types import AuditRecord, ChatRequest, ChatResponse, Message, Usage


class FakeService:
    """Answers each route with a fixed text; records what the cascade publishes."""

    def __init__(self, answers: dict[str, str]) -> None:
        self.clock = FakeClock()
        self.answers = answers
        self.asked: list[str] = []
        self.published: list[AuditRecord] = []
        self.listeners: list[Any] = []

    async def complete(self, request: ChatRequest) -> ChatResponse:
        self.asked.append(request.model)
        await self.clock.sleep(0.5)
        if request.model not in self.answers:
            raise ServerError(f"{request.model} is down", provider="fake", model=request.model)
        return ChatResponse(
            content=self.answers[request.model],
            model=request.model,
            provider="fake",
            provider_model=request.model,
            finish_reason="stop",
            usage=Usage(10, 5),
        )

    def chain_of(self, name: str) -> tuple[str, ...] | None:
        return (name,) if name in self.answers else None

    def price(self, deployment: str, usage: Usage) -> float | None:
        return 0.001 * usage.total_tokens if deployment == "top" else None

    def deployment(self, name: str) -> Any:
        raise AssertionError("a cascade has no use for a deployment's runtime")

    def new_request_id(self) -> str:
        return f"fake-{len(self.published) + 1}"

    def publish(self, audit: AuditRecord) -> None:
        self.published.append(audit)

    def add_listener(self, listener: Any) -> None:
        self.listeners.append(listener)


async def test_a_cascade_runs_on_a_fake_service() -> None:
    fake = FakeService({"cheap": "no", "top": "a long enough answer"})
    service: RouterService = fake  # the Protocol is all a pattern asks for
    result = await Cascade(service, ["cheap", "top"], [length(min_chars=5)], name="careful").run(
        ChatRequest("careful", [Message("user", "hi")])
    )
    assert fake.asked == ["cheap", "top"]
    assert result.response.content == "a long enough answer" and result.summary.winner == "top"
    assert len(result.summary.escalations) == 1 and result.summary.escalations[0].startswith("cheap: ")
    assert result.summary.top_tier_cost_usd == 0.015  # the fake's price for the top tier's usage
    [record] = fake.published
    assert record.route == "careful" and record.winner == "top" and record.request_id == "fake-1"
    assert record.latency_s == 1.0  # two tiers of 0.5 s on the service's clock


async def test_a_failed_pattern_outcome_carries_its_error_and_its_summary_record() -> None:
    fake = FakeService({})
    out = await Cascade(fake, ["cheap", "top"], [length(min_chars=5)], name="careful").outcome(
        ChatRequest("careful", [Message("user", "hi")])
    )
    assert isinstance(out.error, ServerError) and out.response is None
    assert out.audit is not None and out.audit is fake.published[-1]
    assert out.audit.route == "careful" and out.audit.outcome == "error" and out.audit.error_kind == "server"
