"""Run requests as one provider batch, and retry what the batch did not answer through the router.

::

    runner = BatchRunner(router, "gpt-4o-mini", poll=PollPolicy(initial=30))
    result = await runner.run([BatchItem("q1", ChatRequest(model="summarize", messages=[...])), ...])
    print(result.summary.format())
    result.items["q1"].response, result.items["q1"].source   # "batch" or "retry"

The run: translate each request with the deployment's adapter (``to_wire``), submit, poll with
exponential backoff and jitter on the router's clock, and on a terminal state (completed,
failed, expired, cancelled / ended) read the results back (``from_wire``). Every item the batch
did not answer (errored, expired, canceled, missing) is then sent through :meth:`Router.complete`
with its own ``model`` (a route: the normal fallback chain), or ``retry_model`` if given.
"""

from __future__ import annotations

import asyncio
import random
import warnings
from collections.abc import Sequence
from dataclasses import replace

import aiohttp

from router.adapters import PROVIDERS, Deployment
from router.batch.client import BatchAPI, BatchState, batch_api, batch_class
from router.batch.types import (
    BatchError,
    BatchItem,
    BatchResult,
    BatchSummary,
    BatchTimeout,
    ItemResult,
    PollPolicy,
)
from router.batch.wire import ItemOutcome
from router.clock import Clock
from router.cost import Rates
from router.errors import RouterError
from router.router import Router
from router.types import ChatResponse

__all__ = ["BatchRunner", "batch_rates"]

_PROBE = 1_000_000


def batch_rates(kind: str, model: str) -> Rates | None:
    """Per-token batch prices from genai-prices, or None when it knows none for ``model``.

    genai-prices answers the standard price when a model has no batch variant, so a batch
    price that is not below the standard one is taken as unknown.
    """
    spec = PROVIDERS.get(kind)
    provider_id = spec.price_id if spec is not None else None
    if provider_id is None:
        return None
    try:
        from genai_prices import Usage as GUsage
        from genai_prices import calc_price

        def price(batch: bool, **tokens: int) -> float:
            context = {"processing": "batch"} if batch else None
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                usage = GUsage(**tokens)
                return float(
                    calc_price(usage, model, provider_id=provider_id, price_context=context).total_price
                )

        standard = price(False, input_tokens=_PROBE)
        rates = [
            price(True, input_tokens=_PROBE),
            price(True, output_tokens=_PROBE),
            price(True, input_tokens=_PROBE, cache_read_tokens=_PROBE),
            price(True, input_tokens=_PROBE, cache_write_tokens=_PROBE),
        ]
    except (LookupError, ValueError, TypeError, ArithmeticError):
        return None
    if rates[0] >= standard:
        return None
    inp, out, cached, write = (r / _PROBE for r in rates)
    return Rates(inp, out, cached, write)


class BatchRunner:
    """Runs chat requests as batches on one openai or anthropic deployment of ``router``'s config."""

    def __init__(
        self,
        router: Router,
        deployment: str,
        *,
        poll: PollPolicy | None = None,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        prices: Rates | None = None,
        retry: bool = True,
        retry_model: str | None = None,
        retry_concurrency: int = 8,
        http_timeout: float = 60.0,
    ) -> None:
        if deployment not in router.config.models:
            known = ", ".join(sorted(router.config.models)) or "none"
            raise ValueError(f"unknown deployment {deployment!r} (defined: {known})")
        self.router = router
        self.deployment: Deployment = router.deployment(deployment).deployment
        self.custom_id = batch_class(self.deployment).CUSTOM_ID  # ValueError: the kind has no batch API
        self.poll = poll or PollPolicy()
        self.clock = clock or router.clock
        self.rng = rng or random.Random()
        self.rates = (
            prices if prices is not None else batch_rates(self.deployment.kind, self.deployment.model)
        )
        self.retry = retry
        self.retry_model = retry_model
        self.retry_concurrency = max(1, retry_concurrency)
        self.http_timeout = http_timeout

    # -- the run ----------------------------------------------------------------------------

    async def run(self, items: Sequence[BatchItem]) -> BatchResult:
        """Submit ``items`` as one batch, wait for it, read it, retry the rest; never loses an item."""
        known = self._check(items)
        async with aiohttp.ClientSession(skip_auto_headers=("User-Agent",)) as session:
            api = batch_api(session, self.deployment, timeout=self.http_timeout)
            state = await api.submit(items)
            summary = BatchSummary(state.id, self.deployment.provider, self.deployment.name, state.status)
            summary.total = len(items)
            state = await self._wait(api, state, summary)
            outcomes, summary.batch_errors = await api.results(state, known)
        summary.status = state.status
        results = self._collect(items, outcomes, summary)
        if self.retry:
            await self._retry_all(results, summary)
        summary.failed = sum(1 for r in results.values() if r.response is None)
        return BatchResult(results, summary)

    def _check(self, items: Sequence[BatchItem]) -> dict[str, BatchItem]:
        if not items:
            raise ValueError("a batch needs at least one item")
        known: dict[str, BatchItem] = {}
        for i, item in enumerate(items):
            if item.custom_id in known:
                raise ValueError(f"items[{i}]: custom_id {item.custom_id!r} is used twice")
            if self.custom_id is not None and not self.custom_id.match(item.custom_id):
                raise ValueError(
                    f"items[{i}]: custom_id {item.custom_id!r} must match {self.custom_id.pattern}"
                )
            known[item.custom_id] = item
        return known

    async def _wait(self, api: BatchAPI, state: BatchState, summary: BatchSummary) -> BatchState:
        """Poll until ``state`` is terminal; cancel after the policy's timeout."""
        start = self.clock.now()
        attempt = errors = 0
        cancelled_at: float | None = None
        while not state.terminal:
            elapsed = self.clock.now() - start
            if cancelled_at is None and self.poll.timeout is not None and elapsed >= self.poll.timeout:
                cancelled_at = self.clock.now()
                try:
                    state = await api.cancel(state.id)
                except RouterError as exc:
                    if not exc.retryable:
                        raise
                continue
            if cancelled_at is not None and self.clock.now() - cancelled_at >= self.poll.cancel_wait:
                raise BatchTimeout(
                    f"batch {state.id} still {state.status!r} {self.clock.now() - cancelled_at:.0f}s "
                    "after it was cancelled",
                    provider=self.deployment.provider,
                    model=self.deployment.name,
                )
            wait = self.poll.delay(attempt, self.rng)
            attempt += 1
            await self.clock.sleep(wait)
            summary.waited_s += wait
            summary.polls += 1
            try:
                state = await api.retrieve(state.id)
            except RouterError as exc:
                summary.poll_errors += 1
                errors += 1
                if not exc.retryable or errors >= self.poll.max_errors:
                    raise BatchError(
                        f"polling batch {state.id} failed ({errors} in a row): {exc.message}",
                        provider=exc.provider,
                        model=exc.model,
                        status=exc.status,
                    ) from exc
                continue
            errors = 0
            summary.status = state.status
        return state

    def _collect(
        self, items: Sequence[BatchItem], outcomes: dict[str, ItemOutcome], summary: BatchSummary
    ) -> dict[str, ItemResult]:
        results: dict[str, ItemResult] = {}
        batch_cost = 0.0
        for item in items:
            found = outcomes.get(item.custom_id)
            if found is None:
                why = "; ".join(summary.batch_errors) or "no result line for this request"
                err = RouterError(
                    f"batch {summary.batch_id} ({summary.status}): {why}",
                    provider=self.deployment.provider,
                    model=self.deployment.name,
                )
                found = ItemOutcome("missing", error=err)
            result = ItemResult(item.custom_id, item.request, found.outcome, batch_error=found.error)
            if found.response is not None:
                response = self._stamp(found.response, item)
                if response.cost_usd is not None:
                    batch_cost += response.cost_usd
                result.source, result.response = "batch", response
            setattr(summary, found.outcome, getattr(summary, found.outcome) + 1)
            results[item.custom_id] = result
        summary.batch_cost_usd = batch_cost if self.rates is not None else None
        return results

    def _stamp(self, response: ChatResponse, item: BatchItem) -> ChatResponse:
        response.route = f"batch:{self.deployment.name}"
        response.request_id = self.router.new_request_id()
        response.cost_usd = self.rates.cost(response.usage) if self.rates is not None else None
        return response

    async def _retry_all(self, results: dict[str, ItemResult], summary: BatchSummary) -> None:
        todo = [r for r in results.values() if r.response is None]
        if not todo:
            return
        gate = asyncio.Semaphore(self.retry_concurrency)
        costs: list[float | None] = []

        async def one(result: ItemResult) -> None:
            request = result.request
            request = replace(request, stream=False, model=self.retry_model or request.model)
            async with gate:
                try:
                    result.response = await self.router.complete(request)
                except RouterError as exc:
                    result.error = exc
                    return
            result.source = "retry"
            costs.append(result.response.cost_usd)

        await asyncio.gather(*(one(r) for r in todo))
        summary.retried = len(todo)
        summary.retry_succeeded = len(costs)
        known = [c for c in costs if c is not None]
        summary.retry_cost_usd = sum(known) if len(known) == len(costs) else None
