"""Ensemble: ask several models in parallel; a majority vote (classification) or a judge (generation).

    vote = Ensemble(router, ["gpt", "claude", "mistral"], labels=["positive", "negative"], quorum=2)
    result = await vote.run(ChatRequest(model="vote", messages=[...]))
    result.response.content            # the winning label
    result.summary.votes, result.summary.counts, result.summary.failed

Every member is called through :meth:`Router.complete` at once. ``quorum`` members must answer
(default: a majority), so one failed model does not fail the request; fewer than that raises
:class:`~router.errors.AllAttemptsFailed` carrying each member's error. Votes are normalized
(:func:`normalize_label`) before counting; a tie goes to the label voted by the earliest member.
In ``judge`` mode a judge route picks the best of the answers by number.
"""

from __future__ import annotations

import asyncio
import re
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Literal

from router.errors import AllAttemptsFailed, RouterError
from router.outcome import Outcome
from router.patterns._record import PatternCalls, PatternRun, capture, root_error
from router.types import ChatRequest, ChatResponse, Message

if TYPE_CHECKING:
    from router.patterns.service import RouterService

__all__ = ["Ensemble", "EnsembleResult", "EnsembleSummary", "majority", "normalize_label"]

_PREFIX = re.compile(r"^\s*(?:label|answer|class|category|sentiment)\s*[:=-]\s*", re.I)
_EDGES = re.compile(r"^[\W_]+|[\W_]+$")


def normalize_label(text: str, labels: Sequence[str] | None = None) -> str | None:
    """A vote from an answer: its first line, lower-cased, without quotes, punctuation or a
    "Label:" prefix. With ``labels``, the label it names (exactly, or as the only label among its
    words), else None (an abstention)."""
    line = next((ln for ln in text.strip().splitlines() if ln.strip()), "")
    vote = _EDGES.sub("", _PREFIX.sub("", line)).strip().lower()
    vote = re.sub(r"\s+", " ", vote)
    if labels is None:
        return vote or None
    canon = {lab.strip().lower(): lab for lab in labels}
    if vote in canon:
        return canon[vote]
    words = set(re.findall(r"[\w-]+", text.lower()))
    named = [lab for key, lab in canon.items() if key in words]
    return named[0] if len(named) == 1 else None


def majority(votes: Sequence[str | None]) -> tuple[str | None, Counter[str]]:
    """``(winner, counts)``: the most voted label, ties to the earliest voter; None if no votes."""
    counts = Counter(v for v in votes if v is not None)
    if not counts:
        return None, counts
    best = max(counts.values())
    winner = next(v for v in votes if v is not None and counts[v] == best)
    return winner, counts


@dataclass(slots=True)
class EnsembleSummary:
    members: list[str]
    quorum: int
    answered: list[str] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)  # member -> error kind
    votes: dict[str, str | None] = field(default_factory=dict)  # member -> normalized vote
    counts: dict[str, int] = field(default_factory=dict)
    winner: str | None = None  # the label (vote) or the member (judge)
    cost_usd: float | None = None
    latency_s: float = 0.0

    @property
    def quorum_met(self) -> bool:
        return len(self.answered) >= self.quorum


@dataclass(slots=True)
class EnsembleResult:
    response: ChatResponse
    summary: EnsembleSummary
    answers: dict[str, ChatResponse]


JUDGE_SYSTEM = "You compare candidate answers. Reply with the number of the best answer and nothing else."


class Ensemble(PatternCalls):
    def __init__(
        self,
        router: RouterService,
        members: Sequence[str],
        *,
        mode: Literal["vote", "judge"] = "vote",
        quorum: int | None = None,
        labels: Sequence[str] | None = None,
        judge: str | None = None,
        normalize: Callable[[str, Sequence[str] | None], str | None] = normalize_label,
        name: str = "ensemble",
    ) -> None:
        if len(members) < 2:
            raise ValueError("an ensemble needs at least two members")
        self.quorum = quorum if quorum is not None else len(members) // 2 + 1
        if not 1 <= self.quorum <= len(members):
            raise ValueError(f"quorum must be between 1 and {len(members)}")
        if mode == "judge" and judge is None:
            raise ValueError("judge mode needs a judge route")
        self.router, self.members, self.mode, self.name = router, list(members), mode, name
        self.labels = list(labels) if labels is not None else None
        self.judge, self.normalize = judge, normalize

    async def run(
        self, request: ChatRequest, *, outcome: Outcome[ChatResponse] | None = None
    ) -> EnsembleResult:
        """Run on ``request``; ``outcome``, if given, is told the summary record."""
        run = PatternRun(self.router, self.name, self.members, outcome)
        summary = EnsembleSummary(list(self.members), self.quorum)
        with capture() as run.records:
            outcomes = await asyncio.gather(
                *(self.router.complete(replace(request, model=m, stream=False)) for m in self.members),
                return_exceptions=True,
            )
            answers: dict[str, ChatResponse] = {}
            errors: list[RouterError] = []
            for member, out in zip(self.members, outcomes, strict=True):
                if isinstance(out, ChatResponse):
                    answers[member] = out
                elif isinstance(out, RouterError):
                    errors.append(out)
                    summary.failed[member] = root_error(out).kind.value
                else:  # not a router error: a bug or a cancellation, not a vote to lose quietly
                    assert isinstance(out, BaseException)
                    raise out
            summary.answered = list(answers)
            run.note(
                f"ensemble: {len(answers)} of {len(self.members)} answered, quorum {self.quorum}"
                + (
                    f"; failed: {', '.join(f'{m} ({k})' for m, k in summary.failed.items())}"
                    if errors
                    else ""
                )
            )
            if not summary.quorum_met:
                summary.cost_usd, summary.latency_s = run.cost(), run.elapsed()
                run.note("ensemble: quorum not met")
                run.publish(None, "exhausted")
                raise AllAttemptsFailed(
                    f"ensemble {self.name!r}: {len(answers)} of {len(self.members)} members answered, "
                    f"quorum is {self.quorum}",
                    errors=errors,
                )
            if self.mode == "vote":
                chosen = self._vote(answers, summary, run)
            else:
                chosen = await self._judge(request, answers, summary, run)
        summary.cost_usd, summary.latency_s = run.cost(), run.elapsed()
        run.note(f"ensemble: cost ${summary.cost_usd or 0:.6f}, latency {summary.latency_s:.3f}s")
        if chosen is None:
            run.publish(None, "exhausted")
            raise AllAttemptsFailed(f"ensemble {self.name!r}: no member gave a usable vote", errors=[])
        record = run.publish(chosen.model)
        chosen.route, chosen.request_id = self.name, record.request_id
        chosen.cost_usd, chosen.attempts, chosen.latency_s = (
            summary.cost_usd,
            len(record.attempts),
            summary.latency_s,
        )
        return EnsembleResult(chosen, summary, answers)

    def _vote(
        self, answers: dict[str, ChatResponse], summary: EnsembleSummary, run: PatternRun
    ) -> ChatResponse | None:
        for member, resp in answers.items():
            summary.votes[member] = self.normalize(resp.content, self.labels)
        winner, counts = majority([summary.votes[m] for m in answers])
        summary.counts, summary.winner = dict(counts), winner
        shown = ", ".join(f"{m}={v}" for m, v in summary.votes.items())
        if winner is None:
            run.note(f"ensemble: no valid vote ({shown})")
            return None
        run.note(f"ensemble: votes {shown} → {winner} ({counts[winner]} of {len(answers)})")
        voter = next(m for m in answers if summary.votes[m] == winner)
        return replace(answers[voter], content=winner)

    async def _judge(
        self,
        request: ChatRequest,
        answers: dict[str, ChatResponse],
        summary: EnsembleSummary,
        run: PatternRun,
    ) -> ChatResponse:
        assert self.judge is not None
        members = list(answers)
        question = request.messages[-1].text if request.messages else ""
        listing = "\n\n".join(f"[{i}] {answers[m].content}" for i, m in enumerate(members, 1))
        ask = ChatRequest(
            model=self.judge,
            system=JUDGE_SYSTEM,
            messages=[Message("user", f"Request:\n{question}\n\nCandidates:\n{listing}\n\nBest:")],
            max_tokens=8,
            temperature=0,
            metadata=dict(request.metadata),
        )
        pick = members[0]
        try:
            verdict = await self.router.complete(ask)
            m = re.search(r"\d+", verdict.content)
            if m is not None and 1 <= int(m.group()) <= len(members):
                pick = members[int(m.group()) - 1]
                run.note(f"ensemble: judge {self.judge} picked [{m.group()}] {pick}")
            else:
                run.note(
                    f"ensemble: judge {self.judge} named no candidate ({verdict.content[:40]!r}); kept {pick}"
                )
        except RouterError as exc:
            run.note(f"ensemble: judge {self.judge} failed ({exc.kind.value}); kept {pick}")
        summary.winner = pick
        return replace(answers[pick])
