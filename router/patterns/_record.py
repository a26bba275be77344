"""How a pattern keeps its own audit record: it catches the records of the router calls it makes
(through a context variable, so concurrent patterns never mix) and publishes one summary record,
route = the pattern's name, holding their attempts, usage, cost and decisions."""

from __future__ import annotations

import contextvars
import weakref
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from router.errors import AllAttemptsFailed, ErrorKind, RouterError
from router.hooks import BaseListener
from router.outcome import Outcome
from router.types import AuditRecord, ChatRequest, ChatResponse, Usage

if TYPE_CHECKING:
    from router.patterns.service import RouterService

_CAPTURE: contextvars.ContextVar[list[AuditRecord] | None] = contextvars.ContextVar(
    "turnout_pattern_records", default=None
)
_INSTALLED: weakref.WeakSet[RouterService] = weakref.WeakSet()


class _Catcher(BaseListener):
    def on_request(self, record: AuditRecord) -> None:
        records = _CAPTURE.get()
        if records is not None:
            records.append(record)


def ensure_catcher(router: RouterService) -> None:
    if router not in _INSTALLED:
        router.add_listener(_Catcher())
        _INSTALLED.add(router)


@contextmanager
def capture() -> Iterator[list[AuditRecord]]:
    """The records of every router request made inside the block (tasks started in it included)."""
    records: list[AuditRecord] = []
    token = _CAPTURE.set(records)
    try:
        yield records
    finally:
        _CAPTURE.reset(token)


def root_error(exc: RouterError) -> RouterError:
    """The error that says what went wrong: the last real one when every attempt failed."""
    if isinstance(exc, AllAttemptsFailed) and exc.errors:
        return next((e for e in reversed(exc.errors) if e.kind is not ErrorKind.UNAVAILABLE), exc.errors[-1])
    return exc


def failure_reason(exc: RouterError) -> str:
    """Why a call failed, in a line."""
    root = root_error(exc)
    if root is exc:
        return f"{exc.kind.value}: {exc.message}"
    tries = len(exc.errors) if isinstance(exc, AllAttemptsFailed) else 1
    return f"{root.kind.value}: {root.message} ({tries} attempt{'s' if tries > 1 else ''})"


def total_cost(records: list[AuditRecord]) -> float | None:
    costs = [r.cost_usd for r in records if r.cost_usd is not None]
    return sum(costs) if costs else None


class PatternRun:
    """One run of a pattern: its start, its sub-records and its decisions, then one summary record."""

    def __init__(
        self,
        router: RouterService,
        name: str,
        candidates: list[str],
        outcome: Outcome[ChatResponse] | None = None,
    ) -> None:
        ensure_catcher(router)
        self.router = router
        self.outcome = outcome  # told the summary record, when the pattern runs as an outcome
        self.name = name
        self.candidates = candidates
        self.request_id = router.new_request_id()
        self.started_wall = router.clock.wall()
        self.started = router.clock.now()
        self.decisions: list[str] = []
        self.records: list[AuditRecord] = []

    def note(self, line: str) -> None:
        self.decisions.append(line)

    def elapsed(self) -> float:
        return self.router.clock.now() - self.started

    def cost(self) -> float | None:
        return total_cost(self.records)

    def publish(
        self, winner: str | None, error_kind: str | None = None, *, saved_usd: float | None = None
    ) -> AuditRecord:
        usage = Usage()
        for r in self.records:
            usage.input_tokens += r.usage.input_tokens
            usage.output_tokens += r.usage.output_tokens
            usage.cached_input_tokens += r.usage.cached_input_tokens
            usage.cache_write_tokens += r.usage.cache_write_tokens
        decisions = list(self.decisions)
        for r in self.records:
            decisions += [f"[{r.route}] {d}" for d in r.decisions]
        record = AuditRecord(
            request_id=self.request_id,
            route=self.name,
            candidates=list(self.candidates),
            started_at=self.started_wall,
            attempts=[a for r in self.records for a in r.attempts],
            winner=winner,
            outcome="success" if error_kind is None else "error",
            error_kind=error_kind,
            latency_s=self.elapsed(),
            usage=usage,
            cost_usd=self.cost(),
            decisions=decisions,
            saved_usd=saved_usd,
        )
        if self.outcome is not None:
            self.outcome.audit = record
        self.router.publish(record)
        return record


async def pattern_outcome(run: Callable[..., Awaitable[Any]], request: ChatRequest) -> Outcome[ChatResponse]:
    """A pattern's ``run(request, outcome=...)`` as an outcome: its answer (or the error that ended
    it) and its summary record, the way the router's planner hands a request to a pattern."""
    out: Outcome[ChatResponse] = Outcome()
    try:
        out.response = (await run(request, outcome=out)).response
    except RouterError as err:
        out.error = err
    return out


class PatternCalls:
    """A pattern's ``complete`` and ``outcome``, from its ``run`` (whose result has a ``response``)."""

    async def run(self, request: ChatRequest, *, outcome: Outcome[ChatResponse] | None = None) -> Any:
        raise NotImplementedError

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """The pattern's answer to ``request``; the error that ended it raised."""
        response: ChatResponse = (await self.run(request)).response
        return response

    async def outcome(self, request: ChatRequest) -> Outcome[ChatResponse]:
        """:meth:`run` as an outcome: the answer or the error, and the summary record."""
        return await pattern_outcome(self.run, request)
