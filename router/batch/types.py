"""What a batch run takes and gives back, its polling policy, and its errors.

::

    RouterError
    └── BatchError              a batch could not be submitted, polled or read
        ├── BatchResultError    a results file that is not the provider's format (names file and line)
        └── BatchTimeout        the batch did not end in time, even after it was cancelled
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from router.errors import ErrorKind, RouterError
from router.types import ChatRequest, ChatResponse

__all__ = [
    "BatchError",
    "BatchItem",
    "BatchOutcome",
    "BatchResult",
    "BatchResultError",
    "BatchSummary",
    "BatchTimeout",
    "ItemResult",
    "PollPolicy",
]

BatchOutcome = Literal["succeeded", "errored", "expired", "canceled", "missing"]
Source = Literal["batch", "retry"]


class BatchError(RouterError):
    """A batch could not be submitted, polled or read."""

    kind = ErrorKind.SERVER


class BatchResultError(BatchError):
    """A results file that is not in the provider's format; the message names the file and line."""

    kind = ErrorKind.MALFORMED


class BatchTimeout(BatchError):
    """The batch did not reach a terminal state in time, even after it was cancelled."""

    kind = ErrorKind.DEADLINE


@dataclass(slots=True)
class BatchItem:
    """One request of a batch; ``custom_id`` must be unique within the batch."""

    custom_id: str
    request: ChatRequest


@dataclass(frozen=True, slots=True)
class PollPolicy:
    """Exponential backoff with jitter between status polls (seconds).

    The n-th wait (from 0) is ``min(max_interval, initial * factor**n)`` times a factor drawn
    from ``[1 - jitter, 1 + jitter]``. After ``timeout`` the batch is cancelled and polled for
    at most ``cancel_wait`` more; ``max_errors`` failed polls in a row end the run.
    """

    initial: float = 5.0
    factor: float = 2.0
    max_interval: float = 300.0
    jitter: float = 0.2
    timeout: float | None = 26 * 3600.0  # the providers' 24 h window, and some slack
    cancel_wait: float = 3600.0
    max_errors: int = 5

    def __post_init__(self) -> None:
        if self.initial <= 0 or self.factor < 1 or self.max_interval < self.initial:
            raise ValueError("PollPolicy needs initial > 0, factor >= 1 and max_interval >= initial")
        if not 0 <= self.jitter < 1:
            raise ValueError("PollPolicy.jitter must be in [0, 1)")

    def delay(self, attempt: int, rng: random.Random) -> float:
        """The wait before poll number ``attempt + 1``."""
        base = min(self.max_interval, self.initial * self.factor**attempt)
        return base * (1.0 + self.jitter * rng.uniform(-1.0, 1.0)) if self.jitter else base


@dataclass(slots=True)
class ItemResult:
    """How one item was answered: by the batch, by a retry through the router, or not at all."""

    custom_id: str
    request: ChatRequest
    batch_outcome: BatchOutcome  # what the batch said about the item
    source: Source | None = None  # who answered; None if nobody did
    response: ChatResponse | None = None
    batch_error: RouterError | None = None  # why the batch did not answer it
    error: RouterError | None = None  # why the retry did not answer it either

    @property
    def ok(self) -> bool:
        return self.response is not None


@dataclass(slots=True)
class BatchSummary:
    """Counts, cost and polling of one run."""

    batch_id: str
    provider: str
    deployment: str
    status: str  # the provider's final status (completed, failed, expired, cancelled, ended)
    total: int = 0
    succeeded: int = 0  # answered by the batch
    errored: int = 0
    expired: int = 0
    canceled: int = 0
    missing: int = 0  # no result line at all (e.g. the whole batch failed validation)
    retried: int = 0
    retry_succeeded: int = 0
    failed: int = 0  # answered by nobody
    batch_cost_usd: float | None = None  # at batch prices; None when no batch price is known
    retry_cost_usd: float | None = None  # at the answering deployments' prices
    polls: int = 0
    poll_errors: int = 0
    waited_s: float = 0.0
    batch_errors: list[str] = field(default_factory=list)  # why a whole batch failed, per line

    @property
    def cost_usd(self) -> float | None:
        """The whole run's cost; None if a part that cost something has no known price."""
        parts = [(self.batch_cost_usd, self.succeeded), (self.retry_cost_usd, self.retry_succeeded)]
        if any(cost is None and n for cost, n in parts):
            return None
        return sum(cost or 0.0 for cost, _ in parts)

    def format(self) -> str:
        """A few human-readable lines."""

        def usd(v: float | None) -> str:
            return "unknown" if v is None else f"${v:.6f}"

        lines = [
            f"batch {self.batch_id} on {self.deployment} ({self.provider}): {self.status}",
            f"  items {self.total}: {self.succeeded} from the batch, {self.errored} errored, "
            f"{self.expired} expired, {self.canceled} canceled, {self.missing} missing",
            f"  retried {self.retried} through the router: {self.retry_succeeded} answered, "
            f"{self.failed} unanswered in the end",
            f"  cost {usd(self.cost_usd)} "
            f"(batch {usd(self.batch_cost_usd)}, retries {usd(self.retry_cost_usd)})",
            f"  polls {self.polls} ({self.poll_errors} failed), waited {self.waited_s:.1f}s",
        ]
        lines += [f"  batch error: {e}" for e in self.batch_errors]
        return "\n".join(lines)


@dataclass(slots=True)
class BatchResult:
    """Every item's result, in input order, and the run's summary."""

    items: dict[str, ItemResult]
    summary: BatchSummary

    def responses(self) -> dict[str, ChatResponse | None]:
        return {cid: item.response for cid, item in self.items.items()}
