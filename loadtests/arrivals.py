"""Open-loop arrivals: when requests are due, whatever the answers to earlier ones are doing.

A closed loop of N users sends the next request only when the last one returned, so a slow
server slows the load down and its overload hides (coordinated omission). Here the offered load
is an arrival rate: :class:`Arrivals` draws the times requests are due, Poisson (exponential
gaps) or constant, seeded. :class:`Dispatcher` hands those times to a pool of users: each user
takes the next due time, sleeps until it and sends. When every user is busy, a due request waits
for one; that wait (the *lag*) is measured and reported, never silently dropped, so the latency a
caller would have seen is not hidden. Pure Python: time and sleep are injected (no Locust, no
gevent here).
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

__all__ = ["ArrivalKind", "Arrivals", "Dispatcher", "Slot", "StepPlan"]

ArrivalKind = Literal["poisson", "constant"]
ARRIVAL_KINDS: tuple[ArrivalKind, ...] = ("poisson", "constant")


class Arrivals:
    """Due times at ``rate`` per second from ``start``: exponential gaps (``poisson``) or equal ones."""

    def __init__(
        self, rate: float, kind: ArrivalKind = "poisson", *, seed: int = 0, start: float = 0.0
    ) -> None:
        if rate <= 0 or not math.isfinite(rate):
            raise ValueError(f"an arrival rate must be a positive number, not {rate}")
        if kind not in ARRIVAL_KINDS:
            raise ValueError(f"arrivals must be one of {', '.join(ARRIVAL_KINDS)}, not {kind!r}")
        self.rate = rate
        self.kind = kind
        self._rng = random.Random(seed)
        self._start = start
        self._count = 0
        self._next = start

    def take(self) -> float:
        """The next due time (each call returns a later one)."""
        self._count += 1
        if self.kind == "poisson":
            self._next += self._rng.expovariate(self.rate)
        else:  # from the count, not a running sum, so no rounding drifts into the times
            self._next = self._start + self._count / self.rate
        return self._next


@dataclass(frozen=True, slots=True)
class StepPlan:
    """One load step as a worker runs it: ``rate`` per second for ``warmup`` + ``duration`` seconds;
    requests due in the warmup are tagged ``warmup``, the others ``tag``."""

    tag: str
    rate: float
    warmup: float
    duration: float
    kind: ArrivalKind = "poisson"
    seed: int = 0


@dataclass(frozen=True, slots=True)
class Slot:
    """A request to send now: its row tag, when it was due, and how late it is (seconds)."""

    tag: str
    due: float
    lag: float


class Dispatcher:
    """The arrivals of the current step, shared by one process's users.

    ``take`` blocks (through the injected ``wait`` and ``sleep``) until a request is due and
    returns it; between steps it waits for :meth:`begin`. The counters say what was sent and
    what is still being served, for the controller to know when a step has drained.
    """

    def __init__(
        self,
        now: Callable[[], float],
        sleep: Callable[[float], None],
        wait: Callable[[], None],
        wake: Callable[[], None],
        idle: Callable[[], None] = lambda: None,
    ) -> None:
        self._now, self._sleep, self._wait, self._wake, self._idle = now, sleep, wait, wake, idle
        self._arrivals: Arrivals | None = None
        self._plan: StepPlan | None = None
        self._start = self._end = 0.0
        self.inflight = 0
        self.sent: dict[str, int] = {}

    def begin(self, plan: StepPlan) -> None:
        """Start a step now (replacing any step still running)."""
        self._start = self._now()
        self._end = self._start + plan.warmup + plan.duration
        self._plan = plan
        self._arrivals = Arrivals(plan.rate, plan.kind, seed=plan.seed, start=self._start)
        self._wake()

    def stop(self) -> None:
        """No more arrivals until the next :meth:`begin` (requests already due still go)."""
        self._arrivals = None
        self._idle()

    @property
    def running(self) -> bool:
        return self._arrivals is not None

    def take(self) -> Slot:
        while True:
            arrivals, plan = self._arrivals, self._plan
            if arrivals is None or plan is None:
                self._wait()
                continue
            due = arrivals.take()
            if due >= self._end:
                self.stop()
                continue
            wait = due - self._now()
            if wait > 0:
                self._sleep(wait)
            if self._plan is not plan:  # another step began while this user slept
                continue
            tag = "warmup" if due < self._start + plan.warmup else plan.tag
            self.sent[tag] = self.sent.get(tag, 0) + 1
            return Slot(tag, due, max(0.0, self._now() - due))
