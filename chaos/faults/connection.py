"""Faults before any byte of the answer: reset, refuse, hang, latency.

**Refused, honestly.** A request that reached us arrived on a socket we already accepted, so it
cannot be *refused*. The ``refuse`` fault therefore resets that connection (the client sees the
same connection error class as for a refused connect: ``APIConnectionError`` in the OpenAI and
Anthropic SDKs, which they retry) and is journaled as ``refuse``. A true refusal (nothing
listening) is what stopping the listener does; the drill runner does that for outages.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import ClassVar, Literal

from pydantic import Field

from chaos.faults._base import Fault, FaultContext, FaultParams, register
from mockproviders.types import AbortConnection, Handler, MockRequest, MockResponse
from turnout.durations import Duration


@register
class Reset(Fault[FaultParams]):
    """The connection is reset (TCP RST) before any byte of the answer."""

    name = "reset"
    family = "connection"

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        raise AbortConnection("reset", "chaos: reset")


@register
class Refuse(Fault[FaultParams]):
    """ "The target is down": per request this can only be a reset (see the module docstring)."""

    name = "refuse"
    family = "connection"

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        raise AbortConnection("reset", "chaos: refuse (per request, a reset)")


class HangParams(FaultParams):
    max: Duration = Field(default=600.0, description="give up holding after this long, then close")
    then: Literal["close", "reset"] = "close"


@register
class Hang(Fault[HangParams]):
    """No answer at all: hold the request until the client gives up (its timeout), then drop it."""

    name = "hang"
    family = "connection"
    Params: ClassVar[type[FaultParams]] = HangParams

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        p: HangParams = self.params
        if request.hold is not None:
            # The client's own timeout ends the hold; ``max`` bounds it in real time in case the
            # client has none (holding a socket for ever would leak it).
            with contextlib.suppress(TimeoutError):
                async with asyncio.timeout(p.max):
                    await request.hold()
        else:
            await ctx.clock.sleep(p.max)
        raise AbortConnection(p.then, "chaos: hang")


class LatencyParams(FaultParams):
    delay: Duration = Field(description="fixed delay before the answer's headers")
    jitter: Duration = Field(default=0.0, description="plus a seeded random part in [0, jitter)")


@register
class Latency(Fault[LatencyParams]):
    """Added latency before the headers: ``delay`` plus seeded jitter, then the normal answer."""

    name = "latency"
    family = "connection"
    Params: ClassVar[type[FaultParams]] = LatencyParams

    async def apply(self, request: MockRequest, call_next: Handler, ctx: FaultContext) -> MockResponse:
        p: LatencyParams = self.params
        await ctx.clock.sleep(p.delay + p.jitter * ctx.draw("jitter"))
        return await call_next(request)
