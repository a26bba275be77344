"""Batches: run chat requests through the OpenAI Batch API or Anthropic Message Batches.

Half the price, answers within a day. :class:`BatchRunner` submits the requests in the provider's
own batch format (through the adapters' ``to_wire``), polls with backoff on the router's clock,
reads the results back into :class:`~router.types.ChatResponse` (``from_wire``), and sends every
item the batch did not answer through :meth:`Router.complete`, so each item ends answered by the
batch, by a retry, or with the error that stopped both. See :mod:`router.batch.runner`.
"""

from router.batch.client import BatchState
from router.batch.runner import BatchRunner, batch_rates
from router.batch.types import (
    BatchError,
    BatchItem,
    BatchOutcome,
    BatchResult,
    BatchResultError,
    BatchSummary,
    BatchTimeout,
    ItemResult,
    PollPolicy,
)

__all__ = [
    "BatchError",
    "BatchItem",
    "BatchOutcome",
    "BatchResult",
    "BatchResultError",
    "BatchRunner",
    "BatchState",
    "BatchSummary",
    "BatchTimeout",
    "ItemResult",
    "PollPolicy",
    "batch_rates",
]
