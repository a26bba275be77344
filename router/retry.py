"""Whether to try the same deployment again after a failure, and how long to wait first.

The engine builds one :class:`AttemptState` after each failed attempt and asks
:meth:`RetryPolicy.decide`; the answer is a :class:`RetryDecision`. A "no" means: stop trying this
deployment and fall back to the next one in the chain (which the engine decides).

Rules, in order: an error that is not retryable (its ``retryable`` flag, which already reflects
``x-should-retry``, or its kind: bad request, auth, not found, context length, content policy,
quota...) is never retried; nor once the policy's ``stop`` says so (by default after 3 tries,
i.e. 2 retries). The wait is the provider's ``retry_after`` when ``0 < retry_after <= cap``;
a longer ask means "not this deployment for now", so the request falls back rather than block.
Otherwise it is the policy's ``wait`` with multiplicative jitter; by default exponential backoff
as the OpenAI SDK does (0.5 s * 2^n, at most 8 s, times 0.75-1.0). A wait that would not end
before the request's deadline is not taken.

``stop`` and ``wait`` are the one way to say when and how long, composed like tenacity's:
``stop_after_attempt(3) | stop_after_delay(10)``, ``wait_fixed(1) + wait_exponential(0.5)``.
A config's ``retries: N``, ``backoff_base`` and ``backoff_max`` are
``stop_after_attempt(N + 1)`` and ``wait_exponential(backoff_base, backoff_max)``
(:meth:`RetryPolicy.from_config`).
"""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Literal

from router.errors import ErrorKind, RouterError

__all__ = [
    "NEVER_RETRIED",
    "AttemptState",
    "RetryDecision",
    "RetryPolicy",
    "Stop",
    "Wait",
    "stop_after_attempt",
    "stop_after_delay",
    "stop_after_total_attempts",
    "stop_never",
    "wait_exponential",
    "wait_fixed",
]

# Retrying these on the same deployment cannot help, whatever the error's flag says.
# UNAVAILABLE (breaker open, local limit) is "try elsewhere", not "try here again".
# STREAM_CUT is left to the flag: a cut before any output (StreamCut) is retryable, one after
# output began (StreamInterrupted) is not, and both share the kind.
NEVER_RETRIED: frozenset[ErrorKind] = frozenset(
    {
        ErrorKind.BAD_REQUEST,
        ErrorKind.CONTEXT_LENGTH,
        ErrorKind.CONTENT_POLICY,
        ErrorKind.AUTH,
        ErrorKind.NOT_FOUND,
        ErrorKind.QUOTA,
        ErrorKind.UNAVAILABLE,
        ErrorKind.DEADLINE,
        ErrorKind.EXHAUSTED,
        ErrorKind.UNKNOWN_ROUTE,
    }
)

WaitSourceName = Literal["none", "backoff", "retry-after"]


@dataclass(slots=True)
class AttemptState:
    """Everything a retry decision reads, after one failed attempt of one deployment."""

    attempt: int  # tries of this deployment so far, 1-based (1 after the first failure)
    error: RouterError | None
    started_at: float  # clock time of this deployment's first try
    now: float
    deadline_remaining: float | None = None  # seconds left of the request's budget
    total_attempts: int = 0  # tries across the whole chain so far

    @property
    def elapsed(self) -> float:
        return self.now - self.started_at


@dataclass(slots=True, frozen=True)
class RetryDecision:
    """Retry or not, after how long, why; ``source`` says where the wait came from."""

    retry: bool
    wait: float
    source: WaitSourceName
    reason: str


_NO_ERROR = RetryDecision(False, 0.0, "none", "no error")


# --- composable stop conditions ------------------------------------------------------------------


class Stop:
    """A condition to stop retrying; combine with ``|`` (either) and ``&`` (both)."""

    __slots__ = ()

    def __call__(self, state: AttemptState) -> bool:
        raise NotImplementedError

    def __or__(self, other: Stop) -> Stop:
        return _StopAny(self, other)

    def __and__(self, other: Stop) -> Stop:
        return _StopAll(self, other)


class _StopAny(Stop):
    __slots__ = ("stops",)

    def __init__(self, *stops: Stop) -> None:
        self.stops = stops

    def __call__(self, state: AttemptState) -> bool:
        return any(s(state) for s in self.stops)

    def __repr__(self) -> str:
        return " | ".join(map(repr, self.stops))


class _StopAll(Stop):
    __slots__ = ("stops",)

    def __init__(self, *stops: Stop) -> None:
        self.stops = stops

    def __call__(self, state: AttemptState) -> bool:
        return all(s(state) for s in self.stops)

    def __repr__(self) -> str:
        return " & ".join(map(repr, self.stops))


class stop_after_attempt(Stop):
    """Stop once this deployment has been tried ``attempts`` times."""

    __slots__ = ("attempts",)

    def __init__(self, attempts: int) -> None:
        if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 1:
            raise ValueError(f"stop_after_attempt needs a whole number of tries >= 1, not {attempts!r}")
        self.attempts = attempts

    def __call__(self, state: AttemptState) -> bool:
        return state.attempt >= self.attempts

    def __repr__(self) -> str:
        return f"stop_after_attempt({self.attempts})"


class stop_after_total_attempts(Stop):
    """Stop once the whole chain has made ``attempts`` tries."""

    __slots__ = ("attempts",)

    def __init__(self, attempts: int) -> None:
        self.attempts = attempts

    def __call__(self, state: AttemptState) -> bool:
        return state.total_attempts >= self.attempts

    def __repr__(self) -> str:
        return f"stop_after_total_attempts({self.attempts})"


class stop_after_delay(Stop):
    """Stop once ``seconds`` have passed since this deployment's first try."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, state: AttemptState) -> bool:
        return state.now - state.started_at >= self.seconds

    def __repr__(self) -> str:
        return f"stop_after_delay({self.seconds})"


class _StopNever(Stop):
    __slots__ = ()

    def __call__(self, state: AttemptState) -> bool:
        return False

    def __repr__(self) -> str:
        return "stop_never"


stop_never: Stop = _StopNever()


# --- composable waits (before jitter) ------------------------------------------------------------


class Wait:
    """Seconds to wait before the next try, before jitter; add waits with ``+``."""

    __slots__ = ()

    def __call__(self, state: AttemptState) -> float:
        raise NotImplementedError

    def __add__(self, other: Wait) -> Wait:
        return _WaitSum(self, other)


class _WaitSum(Wait):
    __slots__ = ("waits",)

    def __init__(self, *waits: Wait) -> None:
        self.waits = waits

    def __call__(self, state: AttemptState) -> float:
        return sum(w(state) for w in self.waits)

    def __repr__(self) -> str:
        return " + ".join(map(repr, self.waits))


class wait_fixed(Wait):
    """The same wait every time."""

    __slots__ = ("seconds",)

    def __init__(self, seconds: float) -> None:
        self.seconds = seconds

    def __call__(self, state: AttemptState) -> float:
        return self.seconds

    def __repr__(self) -> str:
        return f"wait_fixed({self.seconds})"


class wait_exponential(Wait):
    """``base * 2**(attempt - 1)``, at most ``max``."""

    __slots__ = ("base", "max")

    def __init__(self, base: float = 0.5, max: float = 8.0) -> None:  # `max`: tenacity's name
        if not 0 <= base <= max:
            raise ValueError(f"wait_exponential needs 0 <= base <= max, not {base!r}, {max!r}")
        self.base = base
        self.max = max

    def __call__(self, state: AttemptState) -> float:
        # the exponent is clamped so that a huge attempt number cannot overflow a float
        return min(self.base * 2.0 ** min(max(state.attempt - 1, 0), 64), self.max)

    def __repr__(self) -> str:
        return f"wait_exponential({self.base}, {self.max})"


# --- the policy ----------------------------------------------------------------------------------


def _tries_cap(stop: Stop) -> int | None:
    """The most tries ``stop`` allows, when it says so (``stop_after_attempt``, alone or in an
    ``|``): it names the retries in the decisions' reasons ("retry 1/2", "2 retries used")."""
    if isinstance(stop, stop_after_attempt):
        return stop.attempts
    if isinstance(stop, _StopAny):
        caps = [c for c in map(_tries_cap, stop.stops) if c is not None]
        return min(caps) if caps else None
    return None


@dataclass(slots=True, frozen=True)
class RetryPolicy:
    """Retries of one deployment: the engine's single entry point is :meth:`decide`.

    ``stop`` says when to stop trying the deployment (by default after 3 tries: 2 retries);
    ``wait`` how long to wait before the next try, before jitter (by default the OpenAI SDK's
    exponential backoff, 0.5 s doubling up to 8 s). ``jitter`` multiplies every such wait by a
    factor drawn uniformly from ``(low, high)``; ``rng`` makes it reproducible. A provider's
    ``retry_after`` is used as it is, without jitter, up to ``retry_after_cap``.
    """

    stop: Stop = field(default_factory=lambda: stop_after_attempt(3))
    wait: Wait = field(default_factory=lambda: wait_exponential(0.5, 8.0))
    jitter: tuple[float, float] = (0.75, 1.0)
    retry_after_cap: float = 60.0
    rng: random.Random | None = field(default=None, compare=False, repr=False)

    def __post_init__(self) -> None:
        low, high = self.jitter
        if not 0 <= low <= high:
            raise ValueError(f"jitter needs 0 <= low <= high, not {self.jitter!r}")
        if not self.retry_after_cap >= 0:
            raise ValueError(f"retry_after_cap must be >= 0, not {self.retry_after_cap!r}")

    @classmethod
    def from_config(
        cls,
        *,
        retries: int,
        backoff_base: float,
        backoff_max: float,
        retry_after_cap: float = 60.0,
        rng: random.Random | None = None,
        also_stop: Stop | None = None,
    ) -> RetryPolicy:
        """The policy a config's fields say: ``retries`` retries after the first try (then
        ``also_stop``, if any, can stop earlier), backoff from ``backoff_base`` to ``backoff_max``."""
        if isinstance(retries, bool) or not isinstance(retries, int) or retries < 0:
            raise ValueError(f"retries must be a whole number >= 0, not {retries!r}")
        stop: Stop = stop_after_attempt(retries + 1)
        if also_stop is not None:
            stop = stop | also_stop
        return cls(
            stop=stop,
            wait=wait_exponential(backoff_base, backoff_max),
            retry_after_cap=retry_after_cap,
            rng=rng,
        )

    def backoff(self, state: AttemptState) -> float:
        """The jittered wait for ``state`` (ignores ``retry_after`` and the deadline)."""
        base = self.wait(state)
        low, high = self.jitter
        if low == high:
            return base * low
        r = self.rng.random() if self.rng is not None else random.random()
        return base * (low + (high - low) * r)

    def decide(self, state: AttemptState) -> RetryDecision:
        """Retry this deployment after ``wait`` seconds, or not (then fall back)."""
        err = state.error
        if err is None:
            return _NO_ERROR
        kind = err.kind
        if not err.retryable or kind in NEVER_RETRIED:
            return RetryDecision(False, 0.0, "none", f"{kind.value} is not retryable")
        cap = _tries_cap(self.stop)
        if self.stop(state):
            if cap is not None and state.attempt >= cap:
                return RetryDecision(
                    False, 0.0, "none", f"{kind.value}: {cap - 1} retries used, falling back"
                )
            return RetryDecision(False, 0.0, "none", f"{kind.value}: stopped by {self.stop!r}")
        wait: float
        source: WaitSourceName
        ra = err.retry_after
        if ra is not None and ra > 0:
            if ra > self.retry_after_cap:
                return RetryDecision(
                    False,
                    0.0,
                    "none",
                    f"{kind.value}: provider asked to wait {ra:g}s, more than the "
                    f"{self.retry_after_cap:g}s cap; falling back",
                )
            wait, source = ra, "retry-after"
        else:
            wait, source = self.backoff(state), "backoff"
        left = state.deadline_remaining
        if left is not None and wait >= left:
            return RetryDecision(
                False,
                0.0,
                "none",
                f"{kind.value}: waiting {wait:.3g}s would pass the deadline ({left:.3g}s left)",
            )
        of = f"/{cap - 1}" if cap is not None else ""
        return RetryDecision(
            True,
            wait,
            source,
            f"{kind.value}: retry {state.attempt}{of} after {wait:.3g}s ({source})",
        )
