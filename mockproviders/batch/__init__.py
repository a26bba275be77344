"""Batch APIs for the mock: OpenAI's Files + Batch API and Anthropic's Message Batches.

Each batch runs through its provider's life cycle on the core's clock (see
:mod:`mockproviders.batch.lifecycle`), with phase durations from the ``batch:`` section of the
mock's configuration (:class:`BatchConfig`). Each item is answered by the same core that
answers single requests. Items can be made to fail by a configuration rule or by a hook::

    def fail_q3(provider: str, custom_id: str, body: Any) -> ItemError | None:
        return ItemError(503) if custom_id == "q3" else None

    core.batches.add_item_hook(fail_q3)
"""

from mockproviders.batch.config import BatchConfig, FailRule, parse_duration
from mockproviders.batch.lifecycle import Batch, Item, Outcome
from mockproviders.batch.service import BatchService, ItemError, ItemHook, StoredFile

__all__ = [
    "Batch",
    "BatchConfig",
    "BatchService",
    "FailRule",
    "Item",
    "ItemError",
    "ItemHook",
    "Outcome",
    "StoredFile",
    "parse_duration",
]
