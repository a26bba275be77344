"""Budgets: spending limits per route, per task or per caller API key over a period, enforced
before a request runs.

    budgets = Budgets([Budget("summaries", limit_usd=5.0, period="day", route="summarization",
                              downgrade=("mistral-small",))])
    router.use(Planner([budgets]))               # or `budgets:` in the YAML

Spend is the audit record's ``cost_usd`` of each request on the route (or with metadata ``task``,
or sent with the API key ``api_key``: the sidecar caller's bearer token, ``ChatRequest.caller_key``
in the library), summed per period (``hour``, ``day``, ``month``, UTC, on the router's clock) in a
store with the :class:`router.state.StateStore` methods ``add_spend`` / ``get_spend`` (an in-process
:class:`MemorySpend` by default). Once a period's spend, plus the estimates of this process's
requests still in flight, reaches the limit, each new request is either sent down the cheaper
``downgrade`` chain or refused with :class:`~router.errors.BudgetExceeded` (HTTP 402). A request
is admitted only while that sum is below the limit, so the limit is exceeded by at most one
request's cost (exactly so when requests cost no more than their estimate). A request's estimate
(its full ``max_tokens``) is exchanged for its real cost the moment it finishes, before the store
write lands, so the next request is judged on what was really spent.

A ``downgrade`` budget switches to its cheaper chain once the spend already recorded reaches the
limit (estimates of requests in flight do not count: they would switch, and switch back, long
before the limit), and stays switched for the rest of the period.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal, Protocol

from router.errors import BudgetExceeded
from router.patterns.planner import Finish, PlanContext
from router.patterns.rules import input_tokens
from router.state.memory import MemorySpend
from router.types import AuditRecord, ChatRequest, Usage
from turnout.logs import get_logger

if TYPE_CHECKING:
    from router.patterns.config import BudgetConfig
    from router.patterns.service import RouterService

__all__ = ["Budget", "Budgets", "MemorySpend", "SpendStore", "period_bounds", "usd"]

log = get_logger("turnout.router")

Period = Literal["hour", "day", "month"]
_PERIOD_WORD = {"hour": "this hour", "day": "today", "month": "this month"}
_DEFAULT_OUTPUT = 512  # output tokens assumed when neither the request nor the deployment caps them


def usd(amount: float) -> str:
    """Dollars with the digits that matter: ``$12.50``, ``$0.001``, ``$0.000141`` (never ``$0.00``
    for a sub-cent amount that is not zero)."""
    if amount == 0 or abs(amount) >= 0.995:
        return f"${amount:.2f}"
    digits = max(2, -math.floor(math.log10(abs(amount))) + 2)  # three significant digits
    text = f"{amount:.{digits}f}".rstrip("0")
    return "$" + (text + "0" if len(text.partition(".")[2]) < 2 else text)


def period_bounds(wall: float, period: Period) -> tuple[int, int]:
    """``(start, end)`` epoch seconds of the UTC period holding ``wall``."""
    t = dt.datetime.fromtimestamp(wall, dt.UTC)
    if period == "hour":
        start = t.replace(minute=0, second=0, microsecond=0)
        end = start + dt.timedelta(hours=1)
    elif period == "day":
        start = t.replace(hour=0, minute=0, second=0, microsecond=0)
        end = start + dt.timedelta(days=1)
    else:
        start = t.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
        end = (
            start.replace(year=start.year + 1, month=1)
            if start.month == 12
            else start.replace(month=start.month + 1)
        )
    return int(start.timestamp()), int(end.timestamp())


class SpendStore(Protocol):
    """The budget part of :class:`router.state.StateStore`."""

    async def add_spend(self, key: str, amount: float, period_start: int) -> float: ...

    async def get_spend(self, key: str, period_start: int) -> float: ...


@dataclass(frozen=True, slots=True)
class Budget:
    """A limit on a route (``route``), a task (metadata ``task``) or a caller's API key
    (``api_key``); no ``downgrade``: refuse."""

    name: str
    limit_usd: float
    period: Period = "day"
    route: str | None = None
    task: str | None = None
    downgrade: tuple[str, ...] = ()
    api_key: str | None = None

    def applies(self, route: str, request: ChatRequest) -> bool:
        if self.route is not None:
            return self.route == route
        if self.api_key is not None:
            return request.caller_key == self.api_key
        return self.task is not None and request.metadata.get("task") == self.task

    @property
    def subject(self) -> str:
        if self.route is not None:
            return f"route {self.route}"
        if self.api_key is not None:  # never the key itself: these words reach callers and logs
            if len(self.api_key) >= 12:
                return f"API key …{self.api_key[-4:]}"
            return f"the API key of budget {self.name}"
        return f"task {self.task}"


def _hms(seconds: float) -> str:
    s = max(0, int(seconds))
    return f"{s // 3600}h{s % 3600 // 60:02d}m" if s >= 3600 else f"{s // 60}m{s % 60:02d}s"


class Budgets:
    """A plan step enforcing every budget that applies to the request."""

    def __init__(self, budgets: Iterable[Budget], store: SpendStore | None = None) -> None:
        self.budgets = list(budgets)
        self.store: SpendStore = store if store is not None else MemorySpend()
        self.reserved: dict[tuple[str, int], float] = {}  # estimates of requests in flight
        self.pending: dict[tuple[str, int], float] = {}  # costs of finished requests not yet stored
        self.downgraded: set[tuple[str, int]] = set()  # budgets switched to their cheaper chain
        self._locks: dict[str, asyncio.Lock] = {}
        self._writes: set[asyncio.Task[None]] = set()

    @classmethod
    def from_config(cls, budgets: Mapping[str, BudgetConfig], store: SpendStore | None = None) -> Budgets:
        return cls(
            (
                Budget(name, b.limit_usd, b.period, b.route, b.task, tuple(b.downgrade), b.api_key)
                for name, b in budgets.items()
            ),
            store,
        )

    def names(self) -> list[str]:
        return []

    def estimate(self, router: RouterService, chain: Sequence[str], request: ChatRequest) -> float:
        """What the request may cost: the dearest deployment of ``chain`` at full output."""
        tokens_in = input_tokens(request)
        worst = 0.0
        for name in chain:
            try:
                cap = router.deployment(name).deployment.max_tokens
            except KeyError:
                continue
            out = request.max_tokens or cap or _DEFAULT_OUTPUT
            worst = max(worst, router.price(name, Usage(tokens_in, out)) or 0.0)
        return worst

    async def spent(self, name: str, wall: float) -> float:
        """A budget's spend in the period holding ``wall``: stored, plus finished requests whose
        write is still on its way (not counting requests in flight)."""
        budget = next(b for b in self.budgets if b.name == name)
        start = period_bounds(wall, budget.period)[0]
        return await self.store.get_spend(name, start) + self.pending.get((name, start), 0.0)

    async def flush(self) -> None:
        """Wait for spend writes still on their way to the store."""
        while self._writes:
            await asyncio.gather(*list(self._writes), return_exceptions=True)

    async def __call__(self, ctx: PlanContext) -> None:
        for budget in self.budgets:
            if budget.applies(ctx.route, ctx.request):
                await self._enforce(budget, ctx)
                if ctx.refuse is not None:
                    return

    async def _enforce(self, budget: Budget, ctx: PlanContext) -> None:
        router = ctx.router
        wall = router.clock.wall()
        start, end = period_bounds(wall, budget.period)
        key = (budget.name, start)
        lock = self._locks.setdefault(budget.name, asyncio.Lock())
        async with lock:  # read, decide and reserve as one step, so concurrent requests see each other
            spent = await self.store.get_spend(budget.name, start) + self.pending.get(key, 0.0)
            committed = spent + self.reserved.get(key, 0.0)
            when = _PERIOD_WORD[budget.period]
            if not budget.downgrade and committed >= budget.limit_usd:
                words = f"{budget.subject} spent {usd(committed)} of {usd(budget.limit_usd)} {when}"
                ctx.notes.append(f"budget: {words} → refused")
                ctx.refuse = BudgetExceeded(
                    f"budget {budget.name!r}: {words}; refused until the period ends in {_hms(end - wall)}",
                    budget=budget.name,
                    spent=committed,
                    limit=budget.limit_usd,
                    retry_after=max(1.0, end - wall),
                )
                return
            if budget.downgrade and (key in self.downgraded or spent >= budget.limit_usd):
                if key not in self.downgraded:
                    self.downgraded = {k for k in self.downgraded if k[1] == start} | {key}
                if ctx.current_chain() != budget.downgrade:
                    ctx.chain = budget.downgrade
                    words = f"{budget.subject} spent {usd(spent)} of {usd(budget.limit_usd)} {when}"
                    ctx.notes.append(f"budget: {words} → downgrade to {', '.join(budget.downgrade)}")
            estimate = self.estimate(router, ctx.current_chain(), ctx.request)
            self.reserved[key] = self.reserved.get(key, 0.0) + estimate
        ctx.finishes.append(self._settle(budget.name, key, estimate))

    def _settle(self, name: str, key: tuple[str, int], estimate: float) -> Finish:
        def finish(audit: AuditRecord) -> None:
            # The estimate is exchanged for the real cost now, not when the store write lands:
            # the caller's next request must not be judged on this one's full max_tokens.
            _take(self.reserved, key, estimate)
            cost = audit.cost_usd or 0.0
            if cost <= 0:
                return
            self.pending[key] = self.pending.get(key, 0.0) + cost
            task = asyncio.ensure_future(self._write(name, key, cost))
            self._writes.add(task)
            task.add_done_callback(self._writes.discard)

        return finish

    async def _write(self, name: str, key: tuple[str, int], cost: float) -> None:
        try:
            await self.store.add_spend(name, cost, key[1])
        except Exception:
            log.exception("budget %s: could not record %s of spend", name, usd(cost))
        finally:  # at worst counted twice for a moment (a reader between the write and this), never missed
            _take(self.pending, key, cost)


def _take(amounts: dict[tuple[str, int], float], key: tuple[str, int], amount: float) -> None:
    left = amounts.get(key, 0.0) - amount
    if left > 1e-12:
        amounts[key] = left
    else:
        amounts.pop(key, None)
