"""The drill's traffic: a plan fixed by the seed, and the loop that sends it.

Request ``i``'s route, prompt and whether it streams are drawn from (seed, i) alone, and so are
an open loop's arrival times, so the same seed sends the same sequence of requests whatever the
timing. A closed loop keeps ``concurrency`` requests in flight; an open loop sends at ``rate``
per second whether or not earlier requests have finished (as real clients do), with uniform or
Poisson spacing.
"""

from __future__ import annotations

import asyncio
import itertools
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from chaos._draw import uniform
from chaos.drill.record import RequestRecord
from chaos.drill.spec import TrafficSpec


@dataclass(frozen=True, slots=True)
class Planned:
    id: int
    route: str
    prompt: int
    stream: bool


class Plan:
    """The request sequence and arrival times for one spec and seed."""

    def __init__(self, spec: TrafficSpec, seed: int) -> None:
        self.spec = spec
        self.seed = seed
        routes = [(name, w) for name, w in spec.routes.items() if w > 0]
        total = sum(w for _, w in routes)
        acc = 0.0
        self._cumulative: list[tuple[float, str]] = []
        for name, w in routes:
            acc += w / total
            self._cumulative.append((acc, name))
        self._arrivals: list[float] = []

    def request(self, i: int) -> Planned:
        u = uniform(self.seed, "drill.route", i)
        route = next((name for edge, name in self._cumulative if u < edge), self._cumulative[-1][1])
        prompt = int(uniform(self.seed, "drill.prompt", i) * len(self.spec.prompts))
        stream = uniform(self.seed, "drill.stream", i) < self.spec.stream_share
        return Planned(i, route, prompt, stream)

    def arrival(self, i: int) -> float:
        """Seconds after the start at which an open loop sends request ``i``."""
        rate = self.spec.rate or 1.0
        if self.spec.arrivals == "uniform":
            return i / rate
        while len(self._arrivals) <= i:
            n = len(self._arrivals)
            prev = self._arrivals[-1] if self._arrivals else 0.0
            gap = -math.log(1.0 - uniform(self.seed, "drill.arrival", n)) / rate
            self._arrivals.append(prev + gap if n else 0.0)
        return self._arrivals[i]


Send = Callable[[Planned, RequestRecord], Awaitable[None]]
"""Sends one request and fills in its record (outcome, text, winner...)."""


class Progress:
    """What the traffic loop reports to: a no-op by default (tqdm wraps it in the runner)."""

    def done(self, record: RequestRecord, elapsed: float) -> None:
        return None


async def drive(
    spec: TrafficSpec,
    plan: Plan,
    send: Send,
    *,
    t0: float,
    clock: Callable[[], float] = time.monotonic,
    progress: Progress | None = None,
) -> list[RequestRecord]:
    """Send the planned traffic; every request gets exactly one record, in the order sent."""
    records: list[RequestRecord] = []
    report = progress or Progress()

    async def one(p: Planned) -> None:
        rec = RequestRecord(id=p.id, route=p.route, stream=p.stream, prompt=p.prompt, start=clock() - t0)
        records.append(rec)
        try:
            async with asyncio.timeout(spec.timeout):
                await send(p, rec)
        except TimeoutError:
            rec.outcome, rec.message = "timeout", f"no outcome within the drill's {spec.timeout:g}s cap"
        rec.end = clock() - t0
        report.done(rec, rec.end)

    def more(i: int, at: float) -> bool:
        if spec.requests is not None:
            return i < spec.requests
        return spec.duration is not None and at < spec.duration

    if spec.rate is None:
        counter = itertools.count()

        async def worker() -> None:
            while more(i := next(counter), clock() - t0):
                await one(plan.request(i))

        await asyncio.gather(*(worker() for _ in range(spec.workers)))
    else:
        tasks: list[asyncio.Task[None]] = []
        i = 0
        while more(i, plan.arrival(i)):
            delay = t0 + plan.arrival(i) - clock()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(plan.request(i))))
            i += 1
        await asyncio.gather(*tasks)
    records.sort(key=lambda r: r.id)
    return records
