"""A circuit breaker per deployment: stop sending to a deployment that keeps failing.

::

    closed ──(failures within window ≥ threshold, or trip())──► open
    open ──(retry_at passed; next allow() grants one probe)──► half_open
    half_open ──(probe succeeds)──► closed      (failures and cooldown reset)
    half_open ──(probe fails, or trip())──► open   (cooldown * backoff, at most max_cooldown)
    half_open ──(probe released without a verdict)──► half_open, next allow() grants a new probe

The engine decides which errors count (it does not count 400s, auth errors and the like) and
calls :meth:`on_failure` only for those. Transitions happen inside the calls, never on a timer,
so an open breaker whose cooldown has passed still reads ``"open"`` until the next ``allow()``.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Callable
from typing import Any, Literal

from router.clock import SYSTEM_CLOCK, Clock
from router.errors import ErrorKind

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]

_CLOSED: BreakerState = "closed"
_OPEN: BreakerState = "open"
_HALF_OPEN: BreakerState = "half_open"


class CircuitBreaker:
    """Failure counting, cooldown and single-probe recovery for one deployment."""

    __slots__ = (
        "_asked_until",
        "_base_cooldown",
        "_cooldown",
        "_failures",
        "_last_kind",
        "_probe",
        "_retry_at",
        "_state",
        "backoff",
        "clock",
        "failures",
        "max_cooldown",
        "on_change",
        "opened",
        "window",
    )

    def __init__(
        self,
        failures: int = 5,
        window: float = 30.0,
        cooldown: float = 15.0,
        clock: Clock = SYSTEM_CLOCK,
        max_cooldown: float = 300.0,
        backoff: float = 2.0,
        on_change: Callable[[str, str], None] | None = None,
    ) -> None:
        if failures < 1:
            raise ValueError(f"breaker failures must be >= 1, not {failures!r}")
        if not window > 0:
            raise ValueError(f"breaker window must be > 0 seconds, not {window!r}")
        if not 0 <= cooldown <= max_cooldown:
            raise ValueError(
                f"breaker needs 0 <= cooldown <= max_cooldown, not {cooldown!r}, {max_cooldown!r}"
            )
        if not backoff >= 1:
            raise ValueError(f"breaker backoff must be >= 1, not {backoff!r}")
        self.failures = failures
        self.window = window
        self.clock = clock
        self.max_cooldown = max_cooldown
        self.backoff = backoff
        self.on_change = on_change
        self.opened = 0  # how many times it opened, for metrics
        self._base_cooldown = cooldown
        self._cooldown = cooldown  # grows after each failed probe
        # Only the last `failures` failure times matter: the breaker opens when the oldest of
        # them is still inside the window. A bounded deque keeps that O(1) in time and memory.
        self._failures: deque[float] = deque(maxlen=failures)
        self._state: BreakerState = _CLOSED
        self._retry_at: float | None = None
        self._probe = False  # a half-open probe is in flight
        self._last_kind: ErrorKind | None = None
        self._asked_until = 0.0  # the latest time a provider asked to wait until (trip())

    # --- reading ---------------------------------------------------------------------------------

    @property
    def state(self) -> BreakerState:
        return self._state

    @property
    def retry_at(self) -> float | None:
        """Clock time from which an open breaker lets a probe through; ``None`` unless open."""
        return self._retry_at if self._state is _OPEN else None

    @property
    def asked(self) -> bool:
        """Open because a provider asked to wait (:meth:`trip`), not for a failure cooldown."""
        return self._state is _OPEN and self._asked_until >= self._retry_at  # type: ignore[operator]

    @property
    def cooldown(self) -> float:
        """The cooldown the next opening (after a failed probe: the current one) uses."""
        return self._cooldown

    def recent_failures(self) -> int:
        """Failures counted within the window, as of now."""
        edge = self.clock.now() - self.window
        return sum(1 for t in self._failures if t > edge)

    def snapshot(self) -> dict[str, Any]:
        """The breaker's state as JSON-able data, for the state endpoint and metrics."""
        now = self.clock.now()
        retry_at = self.retry_at
        return {
            "state": self._state,
            "failures": self.recent_failures(),
            "threshold": self.failures,
            "window_s": self.window,
            "cooldown_s": self._cooldown,
            "retry_at": retry_at,
            "retry_in_s": None if retry_at is None else max(0.0, retry_at - now),
            "probe_in_flight": self._probe,
            "opened": self.opened,
            "last_failure_kind": None if self._last_kind is None else self._last_kind.value,
        }

    # --- the protocol ----------------------------------------------------------------------------

    def allow(self) -> bool:
        """May a request go to this deployment now? Grants at most one half-open probe."""
        if self._state is _CLOSED:
            return True
        if self._state is _OPEN:
            if self.clock.now() < self._retry_at:  # type: ignore[operator]  # set whenever open
                return False
            self._probe = True
            self._set(_HALF_OPEN)
            return True
        if self._probe:
            return False
        self._probe = True  # the previous probe was released without a verdict
        return True

    def on_success(self) -> None:
        """A request that ``allow()`` let through succeeded."""
        if self._state is _HALF_OPEN:
            self._failures.clear()
            self._cooldown = self._base_cooldown
            self._probe = False
            self._retry_at = None
            self._set(_CLOSED)
        # closed: successes do not erase recent failures (the window does);
        # open: a late success of a request sent before opening proves nothing about now.

    def on_failure(self, kind: ErrorKind | None = None) -> None:
        """A request that ``allow()`` let through failed in a way that counts against the deployment."""
        if kind is not None:
            self._last_kind = kind
        state = self._state
        if state is _CLOSED:
            now = self.clock.now()
            self._failures.append(now)
            if len(self._failures) == self.failures and self._failures[0] > now - self.window:
                self._open(now + self._cooldown)
        elif state is _HALF_OPEN:
            # Any failure while half-open re-opens: the probe's, or a straggler's from before.
            self._cooldown = min(self._cooldown * self.backoff, self.max_cooldown)
            self._open(self.clock.now() + self._cooldown)
        # open: failures of requests sent before it opened add nothing.

    def release_probe(self) -> None:
        """The half-open probe ended without a verdict (cancelled): let another one through."""
        if self._state is _HALF_OPEN:
            self._probe = False

    def trip(self, until: float) -> None:
        """Open until clock time ``until`` at least (a provider asked to wait); never shortens
        a cooldown already running. A time already past changes nothing."""
        if until <= self.clock.now():
            return
        if until > self._asked_until:
            self._asked_until = until
        if self._state is _OPEN:
            if until > self._retry_at:  # type: ignore[operator]
                self._retry_at = until
            return
        self._open(until)

    def reset(self) -> None:
        """Back to closed with no history (an operator's action)."""
        self._failures.clear()
        self._cooldown = self._base_cooldown
        self._probe = False
        self._retry_at = None
        self._set(_CLOSED)

    # --- internals -------------------------------------------------------------------------------

    def _open(self, retry_at: float) -> None:
        # Deadlines only move later: a new opening never ends before a previous one would have.
        if self._retry_at is None or retry_at > self._retry_at:
            self._retry_at = retry_at
        self._probe = False
        self._failures.clear()
        self.opened += 1
        self._set(_OPEN)

    def _set(self, new: BreakerState) -> None:
        old = self._state
        if old is new:
            return
        self._state = new
        if self.on_change is not None:
            self.on_change(old, new)

    def __repr__(self) -> str:
        return f"CircuitBreaker(state={self._state!r}, retry_at={self.retry_at!r})"
