"""Listeners: how the router tells the outside world (audit log, metrics, the sidecar) what it did.

Calls are synchronous and must be cheap; they run on the request path. A listener that raises is
logged and ignored: observing a request never breaks it.
"""

from __future__ import annotations

from collections import Counter, defaultdict
from typing import Any, Protocol, runtime_checkable

from router.types import AttemptRecord, AuditRecord

__all__ = ["BaseListener", "RouterListener", "RouterStats"]


@runtime_checkable
class RouterListener(Protocol):
    def on_attempt(self, route: str, record: AttemptRecord) -> None:
        """One attempt ended (or a deployment was skipped)."""
        ...

    def on_request(self, record: AuditRecord) -> None:
        """A request ended, successfully or not."""
        ...

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        """A deployment's circuit breaker moved (closed, open, half_open)."""
        ...


class BaseListener:
    """No-op defaults; subclass and override what you need."""

    def on_attempt(self, route: str, record: AttemptRecord) -> None:
        return None

    def on_request(self, record: AuditRecord) -> None:
        return None

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        return None


class RouterStats(BaseListener):
    """In-process counters the sidecar (or a test) can read and export: the metrics hooks.

    Plain dicts and lists, no locking (one event loop), bounded: latencies are kept per route in
    a ring of the last ``keep`` values.
    """

    def __init__(self, keep: int = 2048) -> None:
        self.keep = keep
        self.requests: Counter[tuple[str, str]] = Counter()  # (route, outcome)
        self.winners: Counter[tuple[str, str]] = Counter()  # (route, deployment): route distribution
        self.errors: Counter[tuple[str, str]] = Counter()  # (deployment, error kind), per attempt
        self.attempts: Counter[tuple[str, str]] = Counter()  # (deployment, outcome)
        self.fallbacks: Counter[str] = Counter()  # route: requests answered by a later candidate
        self.cost_usd: defaultdict[str, float] = defaultdict(float)  # deployment
        self.tokens: Counter[tuple[str, str]] = Counter()  # (deployment, input|output)
        self.breaker_changes: Counter[tuple[str, str]] = Counter()  # (deployment, new state)
        self.latencies: dict[str, list[float]] = {}

    def on_attempt(self, route: str, record: AttemptRecord) -> None:
        self.attempts[record.model, record.outcome] += 1
        if record.error_kind is not None:
            self.errors[record.model, record.error_kind] += 1
        if record.cost_usd:
            self.cost_usd[record.model] += record.cost_usd
        if record.usage is not None:
            self.tokens[record.model, "input"] += record.usage.input_tokens
            self.tokens[record.model, "output"] += record.usage.output_tokens

    def on_request(self, record: AuditRecord) -> None:
        self.requests[record.route, record.outcome] += 1
        if record.winner is not None:
            self.winners[record.route, record.winner] += 1
            if record.candidates and record.winner != record.candidates[0]:
                self.fallbacks[record.route] += 1
        ring = self.latencies.setdefault(record.route, [])
        ring.append(record.latency_s)
        if len(ring) > self.keep:
            del ring[: len(ring) - self.keep]

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        self.breaker_changes[model, new] += 1

    def snapshot(self) -> dict[str, Any]:
        def flat(c: dict[Any, Any]) -> dict[str, float]:
            return {("/".join(k) if isinstance(k, tuple) else k): v for k, v in c.items()}

        return {
            "requests": flat(self.requests),
            "winners": flat(self.winners),
            "errors": flat(self.errors),
            "attempts": flat(self.attempts),
            "fallbacks": flat(self.fallbacks),
            "cost_usd": flat(self.cost_usd),
            "tokens": flat(self.tokens),
            "breaker_changes": flat(self.breaker_changes),
        }
