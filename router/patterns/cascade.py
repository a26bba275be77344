"""Cascade: try tiers from cheap to capable; escalate when a confidence check fails.

    cascade = Cascade(router, ["gpt-mini", "claude"], [json_valid(), self_confidence(0.7)], name="careful")
    result = await cascade.run(ChatRequest(model="careful", messages=[...]))
    result.response.content, result.summary.saved_usd

Each tier is a route or deployment, called through :meth:`Router.complete` (so each has its own
fallbacks, retries and breakers). A tier's answer is accepted when every check passes; the last
tier's answer is accepted as it is. A tier that fails (every deployment of it) escalates too, with
the error as the reason. The summary reports every tier, why it escalated, the cost, and the cost
saved against always using the top tier (the top tier's price for the accepted answer's usage,
minus what the cascade spent, judge calls included); the summary audit record carries it as
``saved_usd``, which the sidecar sums in ``turnout_cascade_saved_usd`` and drills in their reports.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING

from router.errors import RouterError
from router.outcome import Outcome
from router.patterns._record import PatternCalls, PatternRun, capture, failure_reason
from router.patterns.checks import Check
from router.types import ChatRequest, ChatResponse

if TYPE_CHECKING:
    from router.patterns.service import RouterService

__all__ = ["Cascade", "CascadeResult", "CascadeSummary", "TierOutcome"]


@dataclass(slots=True)
class TierOutcome:
    tier: str
    model: str | None  # the deployment that answered, None if the tier failed
    accepted: bool
    reason: str
    cost_usd: float | None = None
    latency_s: float = 0.0


@dataclass(slots=True)
class CascadeSummary:
    tiers: list[TierOutcome] = field(default_factory=list)
    winner: str | None = None  # the tier whose answer was accepted
    cost_usd: float | None = None  # everything the cascade spent, judge calls included
    top_tier_cost_usd: float | None = None  # what the top tier would have cost for this answer
    saved_usd: float | None = None  # top_tier_cost_usd - cost_usd (negative: the cascade cost more)

    @property
    def escalations(self) -> list[str]:
        return [f"{t.tier}: {t.reason}" for t in self.tiers if not t.accepted]


@dataclass(slots=True)
class CascadeResult:
    response: ChatResponse
    summary: CascadeSummary


class Cascade(PatternCalls):
    def __init__(
        self, router: RouterService, tiers: Sequence[str], checks: Sequence[Check], *, name: str = "cascade"
    ):
        if len(tiers) < 2:
            raise ValueError("a cascade needs at least two tiers")
        self.router, self.tiers, self.checks, self.name = router, list(tiers), list(checks), name

    async def run(
        self, request: ChatRequest, *, outcome: Outcome[ChatResponse] | None = None
    ) -> CascadeResult:
        """Run on ``request``; ``outcome``, if given, is told the summary record."""
        run = PatternRun(self.router, self.name, self.tiers, outcome)
        summary = CascadeSummary()
        accepted: ChatResponse | None = None
        last_error: RouterError | None = None
        with capture() as run.records:
            for i, tier in enumerate(self.tiers):
                top = i == len(self.tiers) - 1
                tried, response, error = await self._tier(tier, request, top)
                summary.tiers.append(tried)
                if response is not None and tried.accepted:
                    accepted = response
                    run.note(f"cascade: tier {tier} accepted: {tried.reason}")
                    break
                last_error = error or last_error
                if top:
                    run.note(f"cascade: top tier {tier} failed: {tried.reason}")
                else:
                    run.note(f"cascade: tier {tier} escalated: {tried.reason}")
        summary.cost_usd = run.cost()
        if accepted is None:
            assert last_error is not None
            run.publish(None, last_error.kind.value)
            raise last_error
        summary.winner = summary.tiers[-1].tier
        top_model = (self.router.chain_of(self.tiers[-1]) or (self.tiers[-1],))[0]
        summary.top_tier_cost_usd = self.router.price(top_model, accepted.usage)
        if summary.top_tier_cost_usd is not None and summary.cost_usd is not None:
            summary.saved_usd = summary.top_tier_cost_usd - summary.cost_usd
            run.note(
                f"cascade: cost ${summary.cost_usd:.6f}, saved ${summary.saved_usd:.6f} "
                f"vs always {self.tiers[-1]} (${summary.top_tier_cost_usd:.6f})"
            )
        record = run.publish(accepted.model, saved_usd=summary.saved_usd)
        accepted.route, accepted.request_id = self.name, record.request_id
        accepted.cost_usd, accepted.attempts = summary.cost_usd, len(record.attempts)
        accepted.latency_s = record.latency_s
        return CascadeResult(accepted, summary)

    async def _tier(
        self, tier: str, request: ChatRequest, top: bool
    ) -> tuple[TierOutcome, ChatResponse | None, RouterError | None]:
        started = self.router.clock.now()
        try:
            response = await self.router.complete(replace(request, model=tier, stream=False))
        except RouterError as exc:
            took = self.router.clock.now() - started
            return TierOutcome(tier, None, False, failure_reason(exc), None, took), None, exc
        outcome = TierOutcome(tier, response.model, True, "", response.cost_usd, response.latency_s)
        reasons = []
        for check in self.checks:
            verdict = await check(request, response)
            if not verdict.ok:
                if not top:
                    outcome.accepted, outcome.reason = False, verdict.reason
                    return outcome, response, None
                reasons.append(f"{verdict.reason} (top tier: kept)")
            else:
                reasons.append(verdict.reason)
        outcome.reason = "; ".join(reasons) or "no checks"
        return outcome, response, None
