"""A batch's life cycle as a pure function of the clock: no background task, no timers.

A batch created at ``t0`` with ``n`` items and phase durations ``V`` (validating), ``P`` (per
item), ``F`` (finalizing) lives like this::

    t0 ─ validating ─ t0+V ─ in_progress (item i done at t0+V+(i+1)·P) ─ +n·P ─ finalizing ─ +F ─ completed

A cancel at ``c`` stops processing at ``c`` (``cancelling``), and ends the batch at ``c+C``
(``cancelled``); reaching ``t0+expires`` before the end stops it as ``expired``. Items not
answered by then end as ``canceled`` / ``expired``. A batch whose input failed validation ends
as ``failed`` at ``t0+V``.

Whenever a batch is looked at, :meth:`Batch.settle` answers the items that are due by then
(through the ``answer`` callback, the same core that answers single requests). So a test on a
fake clock advances the clock and looks: every transition is exact and nothing sleeps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, Literal

from mockproviders.batch.config import BatchConfig

__all__ = ["Answer", "Batch", "Item", "Outcome", "Status"]

Status = Literal[
    "validating", "in_progress", "finalizing", "completed", "failed", "expired", "cancelling", "cancelled"
]
TERMINAL: frozenset[str] = frozenset({"completed", "failed", "expired", "cancelled"})
OutcomeKind = Literal["succeeded", "errored", "canceled", "expired"]


@dataclass(slots=True)
class Outcome:
    """How one item ended: the HTTP status and body it got, or why it got none."""

    kind: OutcomeKind
    status: int | None  # None for canceled / expired items
    body: Any  # the provider's answer or error body; None for canceled / expired
    request_id: str
    at: float


@dataclass(slots=True)
class Item:
    index: int  # 0-based position in the input
    custom_id: str
    body: Any  # the request body as the caller sent it (OpenAI `body`, Anthropic `params`)
    line: int = 0  # 1-based line of the input file (OpenAI), 0 otherwise
    outcome: Outcome | None = None


# (provider, item, request id, answered-at time) -> (HTTP status, body)
Answer = Callable[[str, Item, str, float], tuple[int, Any]]


@dataclass(slots=True)
class Batch:
    """One batch of either provider; the provider modules render it in their own shape."""

    id: str
    provider: Literal["openai", "anthropic"]
    created_at: float
    items: list[Item]
    timing: BatchConfig  # the phase durations in force when the batch was created
    endpoint: str = ""
    input_file_id: str = ""
    metadata: dict[str, str] | None = None
    validation_errors: list[dict[str, Any]] = field(default_factory=list)  # OpenAI: the batch fails
    cancel_at: float | None = None
    output_file_id: str | None = None
    error_file_id: str | None = None
    files_made: bool = False

    # -- the timeline -----------------------------------------------------------------------

    @property
    def validated_at(self) -> float:
        return self.created_at + self.timing.validating

    def item_due(self, index: int) -> float:
        return self.validated_at + (index + 1) * self.timing.per_item

    @property
    def processed_at(self) -> float:
        return self.validated_at + len(self.items) * self.timing.per_item

    @property
    def finalized_at(self) -> float:
        return self.processed_at + self.timing.finalizing

    @property
    def expires_at(self) -> float:
        return self.created_at + self.timing.expires

    @property
    def stop_at(self) -> float | None:
        """When processing stops early (cancel or expiry), or None if it runs to the end."""
        stops = [t for t in (self.cancel_at, self.expires_at) if t is not None and t < self.finalized_at]
        return min(stops) if stops else None

    @property
    def cancelled_at(self) -> float | None:
        return None if self.cancel_at is None else self.cancel_at + self.timing.cancelling

    def status(self, now: float) -> Status:
        if self.validation_errors:
            return "failed" if now >= self.validated_at else "validating"
        stop = self.stop_at
        if stop is not None and now >= stop:
            if self.cancel_at is not None and stop == self.cancel_at:
                assert self.cancelled_at is not None
                return "cancelled" if now >= self.cancelled_at else "cancelling"
            return "expired"
        if now < self.validated_at:
            return "validating"
        if now < self.processed_at:
            return "in_progress"
        if now < self.finalized_at:
            return "finalizing"
        return "completed"

    def ended_at(self, now: float) -> float | None:
        """When the batch reached its terminal state, or None if it has not yet."""
        status = self.status(now)
        if status == "failed":
            return self.validated_at
        if status == "cancelled":
            return self.cancelled_at
        if status == "expired":
            return self.expires_at
        if status == "completed":
            return self.finalized_at
        return None

    def is_terminal(self, now: float) -> bool:
        return self.status(now) in TERMINAL

    def cancel(self, now: float) -> bool:
        """Ask to cancel at ``now``; False if the batch already ended or is being cancelled."""
        if self.cancel_at is not None or self.is_terminal(now):
            return False
        self.cancel_at = now
        return True

    # -- the items ----------------------------------------------------------------------------

    def settle(self, now: float, answer: Answer, request_id: Callable[[Item], str]) -> None:
        """Answer every item due by ``now``; once the batch has ended, close the unanswered ones."""
        if self.validation_errors:
            return
        stop = self.stop_at
        limit = now if stop is None else min(now, stop)
        for item in self.items:
            if item.outcome is not None:
                continue
            due = self.item_due(item.index)
            if due > limit:
                break
            rid = request_id(item)
            status, body = answer(self.provider, item, rid, due)
            kind: OutcomeKind = "succeeded" if status < 400 else "errored"
            item.outcome = Outcome(kind, status, body, rid, due)
        if stop is not None and now >= stop:
            kind = "canceled" if stop == self.cancel_at else "expired"
            for item in self.items:
                if item.outcome is None:
                    item.outcome = Outcome(kind, None, None, request_id(item), stop)

    def counts(self) -> dict[str, int]:
        """Items by outcome so far: processing, succeeded, errored, canceled, expired."""
        out = {"processing": 0, "succeeded": 0, "errored": 0, "canceled": 0, "expired": 0}
        for item in self.items:
            out["processing" if item.outcome is None else item.outcome.kind] += 1
        return out
