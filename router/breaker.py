"""A deployment's health: eject it on provider failures that are not partial, bring it back fast.

One :class:`CircuitBreaker` per deployment (and a second one per deployment for the health of its
streams once output began: :attr:`~router._runtime.DeploymentRuntime.stream_breaker`). It is an
outlier detector in the manner of Envoy's (consecutive 5xx, success rate, bounded ejection), a
failure-rate window with a minimum number of calls as resilience4j's, and a single half-open probe.

::

    closed ──(ejected: a run of failures, or a failure rate; or trip())──► open
    open ──(retry_at passed; next allow() grants one probe)──► half_open
    half_open ──(probe succeeds)──► closed   (window, run and ejection time reset)
    half_open ──(probe fails, or trip())──► open   (ejection * backoff, at most max_cooldown)
    half_open ──(probe released without a verdict)──► half_open, next allow() grants a new probe
    open ──(recovered(): a request sent past it in panic mode succeeded)──► closed

**When it ejects.** Only on the provider's failures (the engine decides what counts: 5xx, 529,
timeouts, connection failures, malformed replies; never a caller's mistake), on any of:

- a run of ``failures`` consecutive failures (no success between them): a dead provider is
  ejected after that many calls, which at high traffic is milliseconds;
- a run of at least ``min(4, failures)`` failures that has lasted ``failing_for`` seconds with
  no success: a dead provider at low traffic is ejected within about a second (a single
  request's retries are at most 3 attempts, so it takes two requests' failures);
- a failure *rate* of at least ``failure_rate`` over the last ``window`` seconds, once the window
  holds ``min_calls`` calls: a brownout.

A few percent of random errors trigger none of these (10 % errors make a run of 10 about once in
ten billion calls), so partial faults stay partial: the retry absorbs them.

**How long.** ``cooldown`` seconds first; a failed probe multiplies it by ``backoff``, at most
``max_cooldown``, and a successful probe resets it. Recovery after any outage is therefore at
most ``max_cooldown`` plus one probe, however long the outage lasted.

Transitions happen inside the calls, never on a timer, so an open breaker whose time has passed
still reads ``"open"`` until the next ``allow()``; :meth:`snapshot` says when the probe is due.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, Literal

from router.clock import SYSTEM_CLOCK, Clock
from router.errors import ErrorKind

__all__ = ["BreakerState", "CircuitBreaker"]

BreakerState = Literal["closed", "open", "half_open"]

_CLOSED: BreakerState = "closed"
_OPEN: BreakerState = "open"
_HALF_OPEN: BreakerState = "half_open"

_BUCKETS = 10  # the rate window is kept as this many buckets: O(1) per call, bounded memory
_MIN_RUN = 4  # a run must be at least this long (or `failures`, if smaller) to eject by its age


class CircuitBreaker:
    """Health, ejection and single-probe recovery for one deployment (see the module docstring)."""

    __slots__ = (
        "_asked_until",
        "_base_cooldown",
        "_calls",
        "_cooldown",
        "_epochs",
        "_fails",
        "_last_kind",
        "_last_reason",
        "_probe",
        "_retry_at",
        "_run",
        "_run_since",
        "_state",
        "_width",
        "backoff",
        "clock",
        "failing_for",
        "failure_rate",
        "failures",
        "max_cooldown",
        "min_calls",
        "on_change",
        "opened",
        "window",
    )

    def __init__(
        self,
        failures: int = 10,
        window: float = 10.0,
        cooldown: float = 2.0,
        clock: Clock = SYSTEM_CLOCK,
        max_cooldown: float = 4.0,
        backoff: float = 2.0,
        on_change: Callable[[str, str], None] | None = None,
        *,
        failure_rate: float = 0.5,
        min_calls: int = 20,
        failing_for: float = 0.5,
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
        if not 0 < failure_rate <= 1:
            raise ValueError(f"breaker failure_rate must be in (0, 1], not {failure_rate!r}")
        if min_calls < 1:
            raise ValueError(f"breaker min_calls must be >= 1, not {min_calls!r}")
        if not failing_for >= 0:
            raise ValueError(f"breaker failing_for must be >= 0 seconds, not {failing_for!r}")
        self.failures = failures
        self.window = window
        self.clock = clock
        self.max_cooldown = max_cooldown
        self.backoff = backoff
        self.on_change = on_change
        self.failure_rate = failure_rate
        self.min_calls = min_calls
        self.failing_for = failing_for
        self.opened = 0  # how many times it opened, for metrics
        self._base_cooldown = cooldown
        self._cooldown = cooldown  # grows after each failed probe, back to the base on success
        self._state: BreakerState = _CLOSED
        self._retry_at: float | None = None
        self._probe = False  # a half-open probe is in flight
        self._last_kind: ErrorKind | None = None
        self._last_reason: str | None = None  # why it last opened
        self._asked_until = 0.0  # the latest time a provider asked to wait until (trip())
        self._run = 0  # consecutive failures, no success between them
        self._run_since = 0.0  # clock time of the run's first failure
        # The rate window: per bucket, its epoch (which bucket-sized slice of time it counts)
        # and its calls and failures.
        self._width = window / _BUCKETS
        self._epochs = [-1] * _BUCKETS
        self._calls = [0] * _BUCKETS
        self._fails = [0] * _BUCKETS

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
        """Open because a provider asked to wait (:meth:`trip`), not for an ejection."""
        return self._state is _OPEN and self._asked_until >= self._retry_at  # type: ignore[operator]

    @property
    def cooldown(self) -> float:
        """The ejection time the next opening (after a failed probe: the current one) uses."""
        return self._cooldown

    def window_counts(self) -> tuple[int, int]:
        """``(calls, failures)`` counted within the rate window, as of now."""
        oldest = int(self.clock.now() / self._width) - _BUCKETS + 1
        calls = fails = 0
        for i in range(_BUCKETS):
            if self._epochs[i] >= oldest:
                calls += self._calls[i]
                fails += self._fails[i]
        return calls, fails

    def recent_failures(self) -> int:
        """Failures counted within the window, as of now."""
        return self.window_counts()[1]

    def snapshot(self) -> dict[str, Any]:
        """The breaker's state as JSON-able data, for the state endpoint and metrics."""
        now = self.clock.now()
        calls, fails = self.window_counts()
        retry_at = self.retry_at
        probe_in: float | None = None
        if self._state is _OPEN:
            probe_in = max(0.0, retry_at - now)  # type: ignore[operator]
        elif self._state is _HALF_OPEN and not self._probe:
            probe_in = 0.0
        return {
            "state": self._state,
            "failures": fails,
            "calls": calls,
            "failure_rate": round(fails / calls, 4) if calls else 0.0,
            "consecutive_failures": self._run,
            "threshold": self.failures,
            "rate_threshold": self.failure_rate,
            "min_calls": self.min_calls,
            "window_s": self.window,
            "cooldown_s": self._cooldown,
            "retry_at": retry_at,
            "retry_in_s": probe_in if self._state is _OPEN else None,
            # when the next probe may go: 0.0 means the next request to come is the probe
            "next_probe_in_s": probe_in,
            "probe_in_flight": self._probe,
            "opened": self.opened,
            "opened_because": self._last_reason,
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
        state = self._state
        if state is _CLOSED:
            self._run = 0
            self._count(False)
        elif state is _HALF_OPEN:
            self._close()
        # open: a late success of a request sent before opening proves nothing about now.

    def on_failure(self, kind: ErrorKind | None = None) -> None:
        """A request that ``allow()`` let through failed in a way that counts against the deployment."""
        if kind is not None:
            self._last_kind = kind
        state = self._state
        if state is _CLOSED:
            now = self.clock.now()
            if self._run == 0:
                self._run_since = now
            self._run += 1
            run = self._run
            self._count(True, now)
            if run >= self.failures:
                self._eject(now, f"{run} consecutive failures")
            elif run >= _MIN_RUN and now - self._run_since >= self.failing_for:
                self._eject(now, f"{run} failures in a row for {now - self._run_since:.3g}s")
            else:
                calls, fails = self.window_counts()
                if calls >= self.min_calls and fails >= self.failure_rate * calls:
                    self._eject(now, f"{fails} of {calls} calls failed in {self.window:g}s")
        elif state is _HALF_OPEN:
            # Any failure while half-open re-opens: the probe's, or a straggler's from before.
            self._cooldown = min(self._cooldown * self.backoff, self.max_cooldown)
            self._last_reason = "the probe failed"
            self._open(self.clock.now() + self._cooldown)
        # open: failures of requests sent before it opened add nothing.

    def release_probe(self) -> None:
        """The half-open probe ended without a verdict (cancelled): let another one through."""
        if self._state is _HALF_OPEN:
            self._probe = False

    def recovered(self) -> None:
        """A request sent while it was open or half-open (panic mode: every deployment of its
        chain was ejected) succeeded: the deployment is back, close now."""
        if self._state is not _CLOSED:
            self._close()
        else:
            self.on_success()

    def trip(self, until: float) -> None:
        """Open until clock time ``until`` at least (a provider asked to wait, or a peer ejected
        it); never shortens an ejection already running. A time already past changes nothing."""
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
        """Back to closed with no history (an operator's action, or the peers closed it)."""
        self._close()

    # --- internals -------------------------------------------------------------------------------

    def _count(self, failed: bool, now: float | None = None) -> None:
        epoch = int((self.clock.now() if now is None else now) / self._width)
        i = epoch % _BUCKETS
        if self._epochs[i] != epoch:
            self._epochs[i] = epoch
            self._calls[i] = 0
            self._fails[i] = 0
        self._calls[i] += 1
        if failed:
            self._fails[i] += 1

    def _forget(self) -> None:
        self._run = 0
        for i in range(_BUCKETS):
            self._epochs[i] = -1
            self._calls[i] = self._fails[i] = 0

    def _eject(self, now: float, reason: str) -> None:
        self._last_reason = reason
        self._open(now + self._cooldown)

    def _close(self) -> None:
        self._forget()
        self._cooldown = self._base_cooldown
        self._probe = False
        self._retry_at = None
        self._set(_CLOSED)

    def _open(self, retry_at: float) -> None:
        # Deadlines only move later: a new opening never ends before a previous one would have.
        if self._retry_at is None or retry_at > self._retry_at:
            self._retry_at = retry_at
        self._probe = False
        self._forget()
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
