"""Prometheus metrics for the sidecar: a router listener plus the sidecar's own counters.

Each app owns its :class:`CollectorRegistry` (so tests and reloads never collide on a global
registry). Metric names, all prefixed ``turnout_``:

==========================================  ========================  ===================================
name                                        labels                    what
==========================================  ========================  ===================================
requests_total                              route, model, outcome     requests finished (model = winner;
                                                                      route "(unknown)": no such route)
request_duration_seconds (histogram)        route, model              end-to-end router latency
time_to_first_token_seconds (histogram)     route, model              streamed requests
attempts_total                              route, model, outcome     tries of one deployment
attempt_duration_seconds (histogram)        model                     one try's latency
errors_total                                model, kind               failed tries, by error kind
fallbacks_total                             route, from_model,        moves to the next model
                                            to_model
retries_total                               route, model              another try on the same model
stream_continuations_total                  route, outcome            streams cut after output began:
                                                                      continued, failed, impossible
tokens_total                                route, model, direction   input / output tokens
cost_usd_total                              route, model              dollars, per try that had a price
cascade_saved_usd (gauge)                   route                     running total a cascade saved against
                                                                      its top tier (negative: it cost more)
breaker_state                               model                     0 closed, 1 half-open, 2 open
breaker_transitions_total                   model, state              breaker moves
ratelimit_headroom_ratio                    model, limit              remaining / capacity of a limiter
state_store_up                              backend                   1 shared state reachable, 0 local
state_store_errors_total                    backend                   failed calls to the state store
sidecar_inflight_requests                   -                         requests being served
sidecar_rejections_total                    reason                    4xx the sidecar answered itself
sidecar_answers_total                       front_end, status         answers by API shape (chat,
                                                                      messages, responses) and status
sidecar_overhead_seconds (histogram)        -                         sidecar + router time, no upstream
config_reloads_total                        outcome                   reloads, ok or failed
==========================================  ========================  ===================================
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator, Mapping
from typing import Any

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from router.sidecar.alerts import LATENCY_BUCKETS
from router.types import AttemptRecord, AuditRecord

UNKNOWN_ROUTE = "(unknown)"  # the route label of requests naming no route: never the client's string
BREAKER_VALUES = {"closed": 0.0, "half_open": 1.0, "half-open": 1.0, "open": 2.0}
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30)
OVERHEAD_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.1)


class _FromSnapshot(Collector):
    """Breaker states and limiter headroom, read from the current router's snapshot at scrape time."""

    def __init__(self, snapshot: Callable[[], Mapping[str, Any] | None]) -> None:
        self._snapshot = snapshot

    def collect(self) -> Iterator[GaugeMetricFamily | CounterMetricFamily]:
        breaker = GaugeMetricFamily(
            "turnout_breaker_state", "Circuit breaker: 0 closed, 1 half-open, 2 open", labels=["model"]
        )
        room = GaugeMetricFamily(
            "turnout_ratelimit_headroom_ratio",
            "Remaining capacity of each rate limiter, from 0 (exhausted) to 1 (idle)",
            labels=["model", "limit"],
        )
        snap = self._snapshot() or {}
        for model, state in breaker_states(snap):
            breaker.add_metric([model], state)
        for model, limit, ratio in headroom(snap):
            room.add_metric([model, limit], ratio)
        yield breaker
        yield room
        store = snap.get("state")
        if isinstance(store, Mapping):  # router.state: is the shared store reachable?
            backend = str(store.get("backend", "memory"))
            up = GaugeMetricFamily(
                "turnout_state_store_up",
                "1 while the state store answers, 0 while serving on local state",
                labels=["backend"],
            )
            up.add_metric([backend], 1.0 if store.get("up") else 0.0)
            errors = CounterMetricFamily(
                "turnout_state_store_errors", "Failed calls to the state store", labels=["backend"]
            )
            errors.add_metric([backend], float(store.get("errors") or 0))
            yield up
            yield errors


def _deployments(snapshot: Mapping[str, Any]) -> Iterator[tuple[str, Mapping[str, Any]]]:
    deployments = snapshot.get("deployments")
    if isinstance(deployments, Mapping):
        for name, state in deployments.items():
            if isinstance(state, Mapping):
                yield str(name), state


def breaker_states(snapshot: Mapping[str, Any]) -> Iterator[tuple[str, float]]:
    """(model, 0/1/2) for each deployment's breaker in a router snapshot; its stream health as
    ``NAME#stream``."""
    for name, state in _deployments(snapshot):
        breaker = state.get("breaker")
        if isinstance(breaker, Mapping):
            yield name, BREAKER_VALUES.get(str(breaker.get("state")), 2.0)
        streams = state.get("stream_health")
        if isinstance(streams, Mapping):
            yield f"{name}#stream", BREAKER_VALUES.get(str(streams.get("state")), 2.0)


def headroom(snapshot: Mapping[str, Any]) -> Iterator[tuple[str, str, float]]:
    """(model, limit, remaining/capacity) for each configured limit in a router snapshot."""
    for name, state in _deployments(snapshot):
        lim = state.get("limiter")
        if not isinstance(lim, Mapping):
            continue
        for limit, cap_key, left_key in (
            ("requests", "rpm", "requests_available"),
            ("tokens", "tpm", "tokens_available"),
        ):
            cap, left = lim.get(cap_key), lim.get(left_key)
            if isinstance(cap, int | float) and isinstance(left, int | float) and cap > 0:
                yield name, limit, max(0.0, min(1.0, left / cap))


class Metrics:
    """The sidecar's metrics; also a router listener (``on_attempt``, ``on_request``, ...)."""

    def __init__(self, snapshot: Callable[[], Mapping[str, Any] | None] = lambda: None) -> None:
        self.registry = r = CollectorRegistry(auto_describe=True)
        # Registered first, so every read of the registry (a scrape, get_sample_value) applies the
        # updates the request path deferred before any metric is read.
        self._deferred: list[_Deferred] = []
        r.register(_Flush(self.flush))
        self.requests = Counter(
            "turnout_requests_total", "Requests finished", ["route", "model", "outcome"], registry=r
        )
        self.duration = Histogram(
            "turnout_request_duration_seconds",
            "End-to-end router latency of a request",
            ["route", "model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.ttft = Histogram(
            "turnout_time_to_first_token_seconds",
            "Time to first token of streamed requests",
            ["route", "model"],
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.attempts = Counter(
            "turnout_attempts_total", "Tries of one deployment", ["route", "model", "outcome"], registry=r
        )
        self.attempt_duration = Histogram(
            "turnout_attempt_duration_seconds",
            "Latency of one try",
            ["model"],
            buckets=LATENCY_BUCKETS,
            registry=r,
        )
        self.errors = Counter(
            "turnout_errors_total", "Failed tries by error kind", ["model", "kind"], registry=r
        )
        self.fallbacks = Counter(
            "turnout_fallbacks_total",
            "Moves to the next model",
            ["route", "from_model", "to_model"],
            registry=r,
        )
        self.retries = Counter(
            "turnout_retries_total", "Retries on the same model", ["route", "model"], registry=r
        )
        self.continuations = Counter(
            "turnout_stream_continuations_total",
            "Streams that failed after output began, by what became of them",
            ["route", "outcome"],
            registry=r,
        )
        self.tokens = Counter("turnout_tokens_total", "Tokens", ["route", "model", "direction"], registry=r)
        self.cost = Counter("turnout_cost_usd_total", "Cost in US dollars", ["route", "model"], registry=r)
        self.cascade_saved = Gauge(
            "turnout_cascade_saved_usd",
            "Running total of what cascades saved against always using their top tier, in US dollars",
            ["route"],
            registry=r,
        )
        self.breaker_changes = Counter(
            "turnout_breaker_transitions_total",
            "Circuit breaker moves, by new state",
            ["model", "state"],
            registry=r,
        )
        self.inflight = Gauge(
            "turnout_sidecar_inflight_requests",
            "Requests being served",
            registry=r,
            multiprocess_mode="livesum",  # --workers: the host's total, of workers alive
        )
        self.rejections = Counter(
            "turnout_sidecar_rejections_total", "Requests the sidecar refused itself", ["reason"], registry=r
        )
        self.answers = Counter(
            "turnout_sidecar_answers_total",
            "Answers of the hot endpoints, by front end (chat, messages, responses) and HTTP status",
            ["front_end", "status"],
            registry=r,
        )
        self.overhead = Histogram(
            "turnout_sidecar_overhead_seconds",
            "Time spent in the sidecar and router, upstream time excluded",
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.reloads = Counter(
            "turnout_config_reloads_total", "Configuration reloads", ["outcome"], registry=r
        )
        r.register(_FromSnapshot(snapshot))
        # What /metrics shows: this registry, or with `turnout serve --workers N` (prometheus-client's
        # multiprocess mode) every worker's counters, histograms and gauges summed, plus this
        # worker's scrape-time gauges (router/sidecar/workers.py).
        self.scrape = r
        path = os.environ.get("PROMETHEUS_MULTIPROC_DIR")
        if path:
            from prometheus_client import multiprocess

            self.scrape = CollectorRegistry(auto_describe=True)
            self.scrape.register(_Flush(self.flush))
            multiprocess.MultiProcessCollector(self.scrape, path)
            self.scrape.register(_FromSnapshot(snapshot))
        d = self._deferred
        self._requests = _Children(self.requests, d)
        self._duration = _Children(self.duration, d)
        self._ttft = _Children(self.ttft, d)
        self._attempts = _Children(self.attempts, d)
        self._attempt_duration = _Children(self.attempt_duration, d)
        self._errors = _Children(self.errors, d)
        self._fallbacks = _Children(self.fallbacks, d)
        self._retries = _Children(self.retries, d)
        self._continuations = _Children(self.continuations, d)
        self._tokens = _Children(self.tokens, d)
        self._cost = _Children(self.cost, d)
        self._breaker_changes = _Children(self.breaker_changes, d)
        self._answers = _Children(self.answers, d)
        self._overhead = _Deferred(self.overhead)
        d.append(self._overhead)

    def observe_overhead(self, seconds: float) -> None:
        """One request's sidecar + router time (``sidecar_overhead_seconds``)."""
        self._overhead.observe(seconds)

    def answered(self, front_end: str, status: int) -> None:
        """One answer of a hot endpoint (``sidecar_answers_total``)."""
        self._answers(front_end, str(status)).inc()

    def flush(self) -> None:
        """Apply the deferred updates to the Prometheus metrics (done before each read)."""
        for child in self._deferred:
            child.flush()

    # RouterListener -------------------------------------------------------------------------------
    def on_attempt(self, route: str, attempt: AttemptRecord) -> None:
        model = attempt.model
        self._attempts(route, model, attempt.outcome).inc()
        if attempt.outcome == "skipped":
            return
        self._attempt_duration(model).observe(attempt.latency_s)
        if attempt.outcome == "error":
            self._errors(model, attempt.error_kind or "unknown").inc()
        if attempt.usage is not None:
            self._tokens(route, model, "input").inc(attempt.usage.input_tokens)
            self._tokens(route, model, "output").inc(attempt.usage.output_tokens)
        if attempt.cost_usd:
            self._cost(route, model).inc(attempt.cost_usd)

    def on_request(self, record: AuditRecord) -> None:
        if not record.candidates:  # an unknown route: the client's string must not become a label
            self._requests(UNKNOWN_ROUTE, "none", record.outcome).inc()
            return
        route, model = record.route, record.winner or "none"
        self._requests(route, model, record.outcome).inc()
        if record.saved_usd is not None:  # a cascade's summary record; may be negative, so a gauge
            self.cascade_saved.labels(route).inc(record.saved_usd)
        self._duration(route, model).observe(record.latency_s)
        if record.continuation is not None:
            self._continuations(route, record.continuation).inc()
        if len(record.attempts) == 1 and not record.streamed:  # one try: no retry, fallback, TTFT
            return
        last: str | None = None
        for attempt in record.attempts:
            if attempt.model == last and attempt.outcome != "skipped":
                self._retries(route, attempt.model).inc()
            elif last is not None and attempt.model != last:
                self._fallbacks(route, last, attempt.model).inc()
            if (
                record.streamed
                and attempt.ttft_s is not None
                and attempt.continued_from is None  # a continuation's first token is not the stream's
                and (attempt.outcome == "success" or record.continuation is not None)
            ):
                self._ttft(route, model).observe(attempt.ttft_s)
            last = attempt.model

    def on_breaker_change(self, model: str, old: str, new: str) -> None:
        self._breaker_changes(model, str(new)).inc()


_MAX_PENDING = 512  # observations a histogram child holds before it applies them itself


class _Deferred:
    """A metric child's updates, kept as plain numbers until the registry is next read.

    Each ``inc``/``observe`` of prometheus_client goes through validation, a lock and, for a
    histogram, a Python scan of the buckets: about 1-1.5 us each, and the sidecar makes ten per
    request. Here a count is a float addition and an observation a list append; :meth:`flush`
    (run by :class:`_Flush` before every collection) hands them to the real child, so what
    /metrics shows is unchanged. Everything runs on the event loop's thread, as the scrape does.
    """

    __slots__ = ("child", "count", "values")

    def __init__(self, child: Any) -> None:
        self.child = child
        self.count = 0.0
        self.values: list[float] = []

    def inc(self, amount: float = 1.0) -> None:
        if amount < 0:  # refused now, as Counter.inc would, not at the next scrape
            raise ValueError("Counters can only be incremented by non-negative amounts.")
        self.count += amount

    def observe(self, value: float) -> None:
        values = self.values
        values.append(value)
        if len(values) >= _MAX_PENDING:  # never scraped: stay bounded
            self.flush()

    def flush(self) -> None:
        if self.count:
            count, self.count = self.count, 0.0
            self.child.inc(count)
        if self.values:
            values, self.values = self.values, []
            for value in values:
                self.child.observe(value)


class _Flush(Collector):
    """Collects nothing; registered first, it applies the deferred updates before a collection."""

    def __init__(self, flush: Callable[[], None]) -> None:
        self._flush = flush

    def collect(self) -> Iterator[GaugeMetricFamily]:
        self._flush()
        return iter(())


class _Children:
    """A labelled metric's children, cached by label values, with their updates deferred.

    ``metric.labels(...)`` validates the values and takes a lock on every call; the listener runs
    it several times per request. Label values come from the configuration (routes, models) and
    fixed vocabularies (outcomes, error kinds), so the cache stays as small as the metric itself.
    Children are made on first use, so a series appears in /metrics exactly when it used to.
    """

    __slots__ = ("_cache", "_deferred", "_metric")

    def __init__(self, metric: Any, deferred: list[_Deferred]) -> None:
        self._metric = metric
        self._deferred = deferred
        self._cache: dict[tuple[str, ...], _Deferred] = {}

    def __call__(self, *labels: str) -> _Deferred:
        child = self._cache.get(labels)
        if child is None:
            child = self._cache[labels] = _Deferred(self._metric.labels(*labels))
            self._deferred.append(child)
        return child
