"""What the router hands back for one request: its answer (or the error that ended it) and its
audit record, the decision trail of that request and no other's.

:meth:`Router.complete_outcome <router.Router.complete_outcome>`, ``embed_outcome`` and
``stream_outcome`` return these; :meth:`Router.complete` and the others are those calls with the
answer unwrapped (the error raised). The sidecar uses the outcome calls, so it reads the record of
the request it serves from the call itself. Listeners (:mod:`router.hooks`) are told as before.

A request a pattern answers (:mod:`router.patterns`, named as a model) carries the pattern's
summary record. ``audit`` is None only when a planner's own delegate answered with a bare
:class:`~router.types.ChatResponse`.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Generic, TypeVar

from router.errors import RouterError
from router.types import AuditRecord, StreamEvent

__all__ = ["Outcome", "StreamOutcome"]

R = TypeVar("R")


@dataclass(slots=True)
class Outcome(Generic[R]):
    """One request, ended: ``response`` or ``error`` (exactly one is set), and its ``audit`` record."""

    response: R | None = None
    error: RouterError | None = None
    audit: AuditRecord | None = None

    def result(self) -> R:
        """The response, or the error that ended the request raised."""
        if self.error is not None:
            raise self.error
        assert self.response is not None
        return self.response


class StreamOutcome:
    """One streamed request: its ``events`` (iterate them once, as :meth:`Router.stream`'s) and its
    ``audit`` record, set as soon as the request has one (before the first event, or with the
    error that refused it) and complete once the iteration has ended, however it ended."""

    __slots__ = ("audit", "events")

    events: AsyncIterator[StreamEvent]  # set by the router that made it

    def __init__(self) -> None:
        self.audit: AuditRecord | None = None
