"""What the planner, its steps and the patterns use of a router: :class:`RouterService`.

A narrow Protocol instead of :class:`router.Router` itself, so that planning and the patterns
depend on these few calls only (a :class:`~router.Router` is one; a test may pass a small fake).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from router.clock import Clock
from router.hooks import RouterListener
from router.types import AuditRecord, ChatRequest, ChatResponse, Usage

if TYPE_CHECKING:
    from router._runtime import DeploymentRuntime

__all__ = ["RouterService"]


class RouterService(Protocol):
    """The router as the planner and the patterns see it."""

    @property
    def clock(self) -> Clock:
        """The router's clock (a pattern's timings, a budget's period)."""
        ...

    async def complete(self, request: ChatRequest) -> ChatResponse:
        """Answer ``request`` through the router (a pattern's tiers, members, stages, judges)."""
        ...

    def chain_of(self, name: str) -> tuple[str, ...] | None:
        """The deployments a route (or a single deployment) tries, in order; None if unknown."""
        ...

    def price(self, deployment: str, usage: Usage) -> float | None:
        """What ``usage`` costs on ``deployment`` (USD), or None when no price is known."""
        ...

    def deployment(self, name: str) -> DeploymentRuntime:
        """A deployment's runtime (its provider, its breaker's state)."""
        ...

    def new_request_id(self) -> str:
        """An id for a record made outside the engine (a pattern's summary)."""
        ...

    def publish(self, audit: AuditRecord) -> None:
        """Hand a record made outside the engine to the router's listeners."""
        ...

    def add_listener(self, listener: RouterListener) -> None: ...
