"""Locust users that post OpenAI chat completions and judge every answer; the SLO gate listener.

``ChatUser`` sends streamed and non-streamed requests (``--stream-share``) to ``--host`` +
``--chat-path``, the base URL of any OpenAI-compatible endpoint (the turnout sidecar, the mock, a
real provider). Besides Locust's own rows (``POST chat``, ``POST chat-stream``) it reports:

=============  =================================================================================
request type   what one sample is
=============  =================================================================================
``TTFT``       time from sending a streamed request to its first answer chunk
``CHUNK_GAP``  time between two answer chunks of one stream
``FALLBACK``   a request another model than the route's first one served (``x-turnout-*``)
``RETRY``      a request the first model served, but not on its first attempt
=============  =================================================================================

These four are samples of their own rows only: they never enter Locust's ``Aggregated`` row,
which counts requests alone (its request count, rate and percentiles stay true).

Import this module from a locustfile (``locustfile.py``, ``shaped.py``); it registers the
command-line options and the event listeners once, however many locustfiles import it.
"""

from __future__ import annotations

import logging
import os
import random
import time
from collections.abc import Sequence
from typing import Any

import requests
from locust import HttpUser, constant, events, task
from locust import stats as locust_stats
from locust.env import Environment
from locust.runners import WorkerRunner

from loadtests import settings as load_settings
from loadtests import shapes, slo
from loadtests.validation import (
    Routing,
    StreamCheck,
    check_completion_bytes,
    error_summary,
    routing_from_headers,
)
from turnout.logs import get_logger
from turnout.sse import SSEDecodeError, SSEParser

__all__ = ["ChatUser"]

logger = get_logger("loadtests")

SLO_FAILED_EXIT_CODE = 3


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    load_settings.add_arguments(parser)
    slo.add_arguments(parser, prefix="slo-")
    parser.add_argument(
        "--shape",
        default=os.environ.get("TURNOUT_SHAPE", ""),
        help="load shape for loadtests/shaped.py: step, spike or soak, optionally with parameters, "
        "e.g. 'step:users=5,every=10s,steps=3' [env TURNOUT_SHAPE]",
    )


@events.init.add_listener
def _check_options(environment: Environment, **_kwargs: Any) -> None:
    """Refuse bad options before any user starts, with a message naming the option."""
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return  # workers get the master's options with the spawn message
    try:
        load_settings.settings_from_options(options)
        slo.thresholds_from_options(options, prefix="slo-")
        if options.shape:
            shapes.parse_shape(options.shape)
    except (load_settings.SettingsError, shapes.ShapeError, slo.SloError) as exc:
        logger.error("turnout load test: %s", exc)
        raise SystemExit(2) from None
    if options.shape and environment.shape_class is None:
        logger.warning("--shape %r is ignored: run loadtests/shaped.py to use a load shape", options.shape)


_requests_per_worker: dict[str, int] = {}


@events.worker_report.add_listener
def _count_worker_requests(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    """On the master: how many samples each worker sent (every report carries the delta)."""
    total = data.get("stats_total") or {}
    _requests_per_worker[client_id] = _requests_per_worker.get(client_id, 0) + int(
        total.get("num_requests", 0)
    )


@events.quitting.add_listener
def _summary(environment: Environment, **_kwargs: Any) -> None:
    """Log what the tables do not say at a glance: fallbacks, retries, and the workers' shares."""
    if isinstance(environment.runner, WorkerRunner):
        return
    entries = list(environment.stats.entries.values())
    served = sum(e.num_requests - e.num_failures for e in entries if e.method not in slo.METRIC_TYPES)
    for kind in ("FALLBACK", "RETRY"):
        count = sum(e.num_requests for e in entries if e.method == kind)
        logger.info("%s: %d of %d served requests", kind.lower(), count, served)
    for client_id, count in sorted(_requests_per_worker.items()):
        logger.info("worker %s reported %d samples", client_id, count)
    if _requests_per_worker:
        logger.info(
            "%d workers reported %d samples in all",
            len(_requests_per_worker),
            sum(_requests_per_worker.values()),
        )


@events.quitting.add_listener
def _slo_gate(environment: Environment, **_kwargs: Any) -> None:
    """Judge the run against the ``--slo-*`` thresholds and set the exit code (master or local only)."""
    options = environment.parsed_options
    if options is None or isinstance(environment.runner, WorkerRunner):
        return
    thresholds = slo.thresholds_from_options(options, prefix="slo-")
    if not thresholds.enabled:
        return
    needed = thresholds.percentiles_needed()
    rows = [
        slo.StatsRow(
            type=entry.method or "",
            name=entry.name,
            requests=entry.num_requests,
            failures=entry.num_failures,
            percentiles={p: float(entry.get_response_time_percentile(p)) for p in needed}
            if entry.num_requests
            else {},
        )
        for entry in environment.stats.entries.values()
    ]
    try:
        report = slo.check(rows, thresholds)
    except slo.SloError as exc:
        _verdict[:] = [(logging.ERROR, f"SLO gate: {exc}")]
        environment.process_exit_code = 2
        return
    level = logging.INFO if report.ok else logging.ERROR
    _verdict[:] = [(level, line) for line in report.render().splitlines()]
    if not report.ok:
        environment.process_exit_code = SLO_FAILED_EXIT_CODE
    elif thresholds.max_error_rate is not None:
        environment.process_exit_code = 0  # failures within the allowed rate do not fail the run


# The gate judges at `quitting` (the exit code is read right after) but speaks at `quit`, which
# Locust fires after printing its final tables: the verdict is the run's last word.
_verdict: list[tuple[int, str]] = []


@events.quit.add_listener
def _print_verdict(**_kwargs: Any) -> None:
    for level, line in _verdict:
        logger.log(level, line)
    _verdict.clear()


_close_csv_files = locust_stats.StatsCSVFileWriter.close_files


def _close_with_final_stats(self: locust_stats.StatsCSVFileWriter) -> None:
    """Rewrite ``PREFIX_stats.csv`` from the final statistics before Locust closes it.

    Locust's writer rewrites it once a second while the run goes on, and not after the users
    stop: a single-process run's file missed the requests of its last second (4,623 rows' worth
    against 5,630 in the final table), so ``python -m loadtests.slo`` judged other data than the
    gate did. Runs at shutdown only, after the ``quit`` event.
    """
    handle = self.requests_csv_filehandle
    if not handle.closed:
        handle.seek(0)
        handle.truncate()
        self.requests_csv_writer.writerow(self.requests_csv_columns)
        self._requests_data_rows(self.requests_csv_writer)
        handle.flush()
    _close_csv_files(self)


locust_stats.StatsCSVFileWriter.close_files = _close_with_final_stats  # type: ignore[method-assign]


_settings_cache: dict[tuple[Any, ...], load_settings.LoadSettings] = {}


def _settings_for(environment: Environment) -> load_settings.LoadSettings:
    """The run's settings, parsed once per distinct set of option values (prompts files are read once)."""
    options = environment.parsed_options
    if options is None:
        return load_settings.LoadSettings()
    key = tuple(sorted((k, repr(v)) for k, v in vars(options).items()))
    cached = _settings_cache.get(key)
    if cached is None:
        cached = _settings_cache[key] = load_settings.settings_from_options(options)
    return cached


def _settle(response: Any, problems: Sequence[str], routing: Routing) -> None:
    """Mark a ``catch_response`` response failed with its first problem (the routing's own
    problem counting last), or passed if there is none."""
    if routing.problem:
        problems = [*problems, routing.problem]
    if problems:
        response.failure(problems[0])
    else:
        response.success()


def _http_failure(response: Any) -> str:
    if response.status_code == 0 or response.status_code is None:
        error = getattr(response, "error", None)
        return f"connection error: {type(error).__name__ if error else 'no response'}"
    try:
        summary = error_summary(response.json())
    except ValueError:
        summary = "non-JSON body"
    return f"HTTP {response.status_code}: {summary}"


class ChatUser(HttpUser):
    """One caller sending chat completions back to back (no think time: users = concurrency)."""

    wait_time = constant(0)
    row_tag = ""  # appended to every row name (" @TAG"), so rows can be told apart by load step

    def _row(self, name: str) -> str:
        return f"{name} @{self.row_tag}" if self.row_tag else name

    def on_start(self) -> None:
        self.settings = _settings_for(self.environment)
        self.headers = {"Authorization": f"Bearer {self.settings.api_key}"} if self.settings.api_key else {}

    @task
    def chat(self) -> None:
        messages = random.choice(self.settings.prompts)
        if random.random() < self.settings.stream_share:
            self._stream(messages)
        else:
            self._complete(messages)

    def _complete(self, messages: Sequence[dict[str, Any]]) -> None:
        s = self.settings
        body = load_settings.build_body(s, messages, stream=False)
        start = time.perf_counter()
        with self.client.post(
            s.path,
            json=body,
            headers=self.headers,
            name=self._row("chat"),
            catch_response=True,
            timeout=s.timeout,
        ) as response:
            if response.status_code != 200:
                response.failure(_http_failure(response))
                return
            routing = routing_from_headers(response.headers)
            _, problems = check_completion_bytes(
                response.content, require_usage=s.require_usage, require_content=s.require_content
            )
            _settle(response, problems, routing)
        self._count_routing(routing, (time.perf_counter() - start) * 1000)

    def _stream(self, messages: Sequence[dict[str, Any]]) -> None:
        s = self.settings
        body = load_settings.build_body(s, messages, stream=True)
        headers = {**self.headers, "Accept": "text/event-stream"}
        start = time.perf_counter()
        with self.client.post(
            s.path,
            json=body,
            headers=headers,
            name=self._row("chat-stream"),
            stream=True,
            catch_response=True,
            timeout=s.timeout,
        ) as response:
            if response.status_code != 200:
                response.failure(_http_failure(response))
                return
            content_type = response.headers.get("content-type", "")
            if not content_type.startswith("text/event-stream"):
                response.failure(f"not an event stream (content-type {content_type.split(';')[0]!r})")
                response.close()
                return
            routing = routing_from_headers(response.headers)
            parser = SSEParser()
            check = StreamCheck(require_usage=s.require_usage, require_content=s.require_content)
            first: float | None = None
            last = 0.0
            gaps: list[float] = []
            broken: str | None = None
            try:
                # chunk_size=None: every read returns what has arrived, so the timings are honest
                for data in response.iter_content(chunk_size=None):
                    now = time.perf_counter()
                    for event in parser.feed(data):
                        if check.on_event(event):
                            if first is None:
                                first = now
                            else:
                                gaps.append(now - last)
                            last = now
                parser.close()
            except SSEDecodeError:
                broken = "stream is not UTF-8"
            except requests.RequestException as exc:
                broken = f"stream broken: {type(exc).__name__}"
            finally:
                response.close()
            elapsed_ms = (time.perf_counter() - start) * 1000
            # with stream=True Locust timed only the headers: report the whole stream instead
            response.request_meta["response_time"] = elapsed_ms
            response.request_meta["response_length"] = parser.bytes_seen
            problems = ([broken] if broken else []) + check.finish(cut_mid_event=parser.pending)
            _settle(response, problems, routing)
        if first is not None:
            self._metric("TTFT", self._row("chat-stream"), (first - start) * 1000)
        for gap in gaps:
            self._metric("CHUNK_GAP", self._row("chat-stream"), gap * 1000)
        self._count_routing(routing, elapsed_ms)

    def _count_routing(self, routing: Routing, elapsed_ms: float) -> None:
        primary = self.settings.primary_model
        if routing.fell_back(primary):
            self._metric(
                "FALLBACK", self._row(f"{self.settings.model} -> {routing.model or '?'}"), elapsed_ms
            )
        elif routing.retried(primary):
            self._metric("RETRY", self._row(self.settings.model), elapsed_ms)

    def _metric(self, kind: str, name: str, value_ms: float) -> None:
        # Straight into the metric's own row: a request event would also count the sample in the
        # Aggregated row, as if it were a request (300,682 "requests" for a 28,426-request run).
        # Workers send rows and the total apart, so the master's tables stay apart too.
        self.environment.stats.get(name, kind).log(value_ms, 0)
