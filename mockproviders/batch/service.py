"""The batch store and its front door: files and batches of one :class:`~mockproviders.core.MockCore`.

The core sends every request whose endpoint is ``files`` or ``batches`` here, after the checks all
requests get (API key, version header, rate limit), so batch calls are journaled and can be
faulted like any other. Each provider module (:mod:`.openai`, :mod:`.anthropic`) renders the
same :class:`~mockproviders.batch.lifecycle.Batch` records in its own wire format.

Items are answered by the core's own :meth:`~mockproviders.core.MockCore.answer_body`, so an
item's answer is the single request's answer for the same body. An item fails instead when a
hook added with :meth:`BatchService.add_item_hook` says so, or a ``batch.fail`` rule of the
configuration matches its ``custom_id``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from mockproviders.batch.lifecycle import Batch, Item
from mockproviders.errors import error_payload
from mockproviders.tokens import stable_hash
from mockproviders.types import MockRequest, MockResponse

if TYPE_CHECKING:
    from mockproviders.core import MockCore

__all__ = ["BatchService", "ItemError", "ItemHook", "StoredFile"]


@dataclass(frozen=True, slots=True)
class ItemError:
    """Make an item fail with ``status`` (the provider's error type and message by default)."""

    status: int = 500
    type: str | None = None
    message: str | None = None


# (provider, custom_id, request body) -> an error for the item, or None to answer it normally
ItemHook = Callable[[str, str, Any], ItemError | None]


@dataclass(slots=True)
class StoredFile:
    """An OpenAI file: uploaded input, or a batch's output or error file."""

    id: str
    filename: str
    purpose: str
    data: bytes
    created_at: float


class BatchService:
    """All batches and files of one core; reset with the core."""

    def __init__(self, core: MockCore) -> None:
        self.core = core
        self.batches: dict[str, Batch] = {}
        self.files: dict[str, StoredFile] = {}
        self._hooks: list[ItemHook] = []
        self._count = 0

    # -- scripting --------------------------------------------------------------------------

    def add_item_hook(self, hook: ItemHook) -> None:
        """Consult ``hook`` for every item before answering it (first hook to answer wins)."""
        self._hooks.append(hook)

    def remove_item_hook(self, hook: ItemHook) -> None:
        self._hooks = [h for h in self._hooks if h is not hook]

    def reset(self) -> None:
        self.batches.clear()
        self.files.clear()
        self._count = 0

    # -- shared helpers for the provider modules --------------------------------------------

    def now(self) -> float:
        return self.core.clock.now()

    def new_hex(self, kind: str) -> str:
        """A fresh id body (hex), deterministic for the core's seed and creation order."""
        self._count += 1
        return f"{stable_hash(self.core.seed, kind, self._count):016x}"

    def settle(self, batch: Batch) -> Batch:
        """Bring ``batch`` up to the clock: answer the items due, close those that never will be."""

        def request_id(item: Item) -> str:
            h = f"{stable_hash('batch-item', batch.id, item.index):016x}"
            return f"req_011C{h}{h[:8]}" if batch.provider == "anthropic" else f"req_{h}{h[::-1]}"

        batch.settle(self.now(), self._answer, request_id)
        return batch

    def _answer(self, provider: str, item: Item, rid: str, at: float) -> tuple[int, Any]:
        failure = self._failure(provider, item)
        if failure is not None:
            body = error_payload(
                provider,  # type: ignore[arg-type]
                failure.status,
                failure.type,
                failure.message,
                request_id=rid,
            )
            return failure.status, body
        try:
            return self.core.answer_body(provider, item.body, request_id=rid, created=at)
        except Exception as exc:  # a mock bug must fail one item, not every later look at the batch
            message = f"the mock could not answer this item: {type(exc).__name__}: {exc}"
            return 500, error_payload(provider, 500, None, message, request_id=rid)  # type: ignore[arg-type]

    def _failure(self, provider: str, item: Item) -> ItemError | None:
        for hook in self._hooks:
            found = hook(provider, item.custom_id, item.body)
            if found is not None:
                return found
        rule = self.core.config.batch.failure_for(provider, item.custom_id)
        if rule is not None:
            return ItemError(rule.status, rule.type, rule.message)
        return None

    # -- the front door ---------------------------------------------------------------------

    async def handle(self, req: MockRequest) -> MockResponse:
        """Answer a ``files`` or ``batches`` request of either provider."""
        if req.provider == "anthropic":
            from mockproviders.batch import anthropic

            return anthropic.handle(self, req)
        from mockproviders.batch import openai

        return openai.handle(self, req)
