"""Locust entry point: a capacity sweep. Raise the offered load until the SLO breaks, find the knee.

    locust -f loadtests/sweep.py --headless --host http://127.0.0.1:8200/v1 --model chat \\
        --primary-model gpt-4o-mini --slo-max-error-rate 0.01 --slo-p99-ms 2000 \\
        --start 10 --step 10 --max 120 --step-time 10s --out sweep-reports/run

(``turnout sweep`` runs exactly this, and starts local workers with ``--workers N``.) The load is
open-loop: requests are due at an arrival rate (``--arrivals poisson`` or ``constant``), drawn by
:mod:`loadtests.arrivals`, and a pool of users sends each one when it is due; when every user is
busy the wait is measured (``LAG`` rows) and judged. Each step's requests are tagged ``@RATE``
in their row names, so a step is judged on its own requests only (those still running when it
ended included, after a drain). Rates come from :mod:`loadtests.knee` (coarse steps, then
bisection); deployment shares, spill to fallbacks and cost from the sidecar's ``/metrics``
(:mod:`loadtests.routerstats`); reports from :mod:`loadtests.sweep_report`.

In distributed mode (``--master`` with workers running ``-f loadtests/sweep.py --worker``) the
sweep runs on the master, which sends each step's arrival rate to the workers, split evenly.
"""

from __future__ import annotations

import math
import time
import zlib
from dataclasses import asdict
from pathlib import Path
from typing import Any

import gevent
import requests
from gevent.event import Event
from locust import LoadTestShape, events
from locust.env import Environment
from locust.runners import MasterRunner, WorkerRunner
from locust.stats import StatsEntry

from loadtests import knee, slo, sweep_options, sweep_report, users
from loadtests.arrivals import Dispatcher, StepPlan
from loadtests.routerstats import RouterFigures, Snapshot, scrape
from turnout.logs import get_logger

__all__ = ["SweepShape", "SweepUser"]

logger = get_logger("loadtests.sweep")

# The SLO gate judges a whole run; a sweep judges each step itself and sets its own exit code.
events.quitting.remove_listener(users._slo_gate)

_wake = Event()


def _wait() -> None:
    _wake.wait(2.0)


def _idle() -> None:
    _wake.clear()


DISPATCHER = Dispatcher(time.monotonic, gevent.sleep, _wait, _wake.set, _idle)
_MSG_BEGIN = "turnout-sweep-begin"
_MSG_STOP = "turnout-sweep-stop"


class SweepUser(users.ChatUser):  # (ChatUser is not bound here: Locust would run it too)
    """A user of the pool: sends each request when the arrival schedule says it is due."""

    def open_loop(self) -> None:
        slot = DISPATCHER.take()
        self.row_tag = slot.tag
        self._metric("LAG", self._row("arrivals"), slot.lag * 1000)
        DISPATCHER.inflight += 1
        try:
            users.ChatUser.chat(self)
        finally:
            DISPATCHER.inflight -= 1


SweepUser.tasks = [SweepUser.open_loop]  # not ChatUser's closed-loop task as well


@events.init_command_line_parser.add_listener
def _add_options(parser: Any, **_kwargs: Any) -> None:
    sweep_options.add_arguments(parser)


_worker_state: dict[str, dict[str, Any]] = {}


@events.init.add_listener
def _on_init(environment: Environment, **_kwargs: Any) -> None:
    runner = environment.runner
    if isinstance(runner, WorkerRunner):
        salt = zlib.crc32(runner.client_id.encode())

        def begin(msg: Any, **_kw: Any) -> None:
            plan = StepPlan(**msg.data)
            DISPATCHER.begin(StepPlan(**{**asdict(plan), "seed": plan.seed ^ salt}))

        runner.register_message(_MSG_BEGIN, begin)
        runner.register_message(_MSG_STOP, lambda msg, **_kw: DISPATCHER.stop())
        return
    options = environment.parsed_options
    if options is None:
        return
    try:
        sweep_options.validate(options)
    except (knee.SearchError, sweep_options.OptionError) as exc:
        logger.error("turnout sweep: %s", exc)
        raise SystemExit(2) from None


@events.report_to_master.add_listener
def _report(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    data["turnout_sweep"] = {"inflight": DISPATCHER.inflight, "sent": dict(DISPATCHER.sent)}


@events.worker_report.add_listener
def _on_worker_report(client_id: str, data: dict[str, Any], **_kwargs: Any) -> None:
    state = data.get("turnout_sweep")
    if isinstance(state, dict):
        _worker_state[client_id] = {**state, "at": time.monotonic()}


class Controller:
    """Runs the steps the search proposes, judges them, writes the reports (master or local)."""

    def __init__(self, environment: Environment) -> None:
        self.env = environment
        self.options = environment.parsed_options
        self.config = sweep_options.validate(self.options)
        self.users = self.config.min_users
        self.done = False
        self.steps: list[knee.StepResult] = []
        self.started = time.time()

    # -- plumbing ---------------------------------------------------------------------------
    @property
    def distributed(self) -> bool:
        return isinstance(self.env.runner, MasterRunner)

    def _workers(self) -> int:
        runner = self.env.runner
        return max(1, runner.worker_count) if isinstance(runner, MasterRunner) else 1

    def _broadcast_begin(self, plan: StepPlan) -> None:
        if self.distributed:
            n = self._workers()
            share = StepPlan(**{**asdict(plan), "rate": plan.rate / n})
            self.env.runner.send_message(_MSG_BEGIN, asdict(share))  # type: ignore[union-attr]
        else:
            DISPATCHER.begin(plan)

    def _broadcast_stop(self) -> None:
        if self.distributed:
            self.env.runner.send_message(_MSG_STOP, None)  # type: ignore[union-attr]
        else:
            DISPATCHER.stop()

    def _inflight_and_sent(self, tag: str, since: float) -> tuple[int | None, int]:
        """Requests still being served (None while a worker has not reported since ``since``)."""
        if not self.distributed:
            return DISPATCHER.inflight, DISPATCHER.sent.get(tag, 0)
        states = list(_worker_state.values())
        sent = sum(int(s["sent"].get(tag, 0)) for s in states)
        if len(states) < self._workers() or any(s["at"] < since for s in states):
            return None, sent
        return sum(int(s["inflight"]) for s in states), sent

    def _scrape(self) -> Snapshot | None:
        if not self.config.metrics:
            return None
        try:
            return scrape(self.config.metrics, lambda url: requests.get(url, timeout=5).text)
        except (requests.RequestException, ValueError) as exc:
            logger.warning("turnout sweep: cannot read the router's metrics (%s): no shares or cost", exc)
            return None

    def _grow_pool(self, rate: float) -> None:
        wanted = min(
            self.config.max_users, max(self.config.min_users, math.ceil(rate * self.config.pool_seconds))
        )
        self.users = max(self.users, wanted)
        deadline = time.monotonic() + 30
        while self.env.runner is not None and self.env.runner.user_count < self.users:
            if time.monotonic() > deadline:
                logger.warning(
                    "turnout sweep: only %d of %d users started", self.env.runner.user_count, self.users
                )
                break
            gevent.sleep(0.2)

    # -- the sweep --------------------------------------------------------------------------
    def run(self) -> None:
        try:
            search = self.config.search()
            while (rate := search.next_rate()) is not None:
                result = self.run_step(len(self.steps) + 1, rate)
                self.steps.append(result)
                search.record(rate, result.held)
                verdict = "held" if result.held else "BROKE: " + "; ".join(result.violations)
                logger.info(
                    "step %d: %g req/s offered, %.1f achieved, p99 %s ms, errors %.2f%% -> %s",
                    result.index,
                    rate,
                    result.achieved,
                    result.latency_ms.get("p99", "-"),
                    result.error_rate * 100,
                    verdict,
                )
            self.finish(search)
        except Exception:
            logger.exception("turnout sweep: the sweep failed")
            self.env.process_exit_code = 2
        finally:
            self.done = True

    def run_step(self, index: int, rate: float) -> knee.StepResult:
        cfg = self.config
        tag = f"{rate:g}rps"
        self._grow_pool(rate)
        before = self._scrape()
        plan = StepPlan(tag, rate, cfg.warmup, cfg.step_time, cfg.arrivals, cfg.seed + index)
        self._broadcast_begin(plan)
        gevent.sleep(cfg.warmup + cfg.step_time)
        self._broadcast_stop()
        ended = time.monotonic()
        deadline = ended + cfg.drain_timeout
        while True:
            inflight, sent = self._inflight_and_sent(tag, ended)
            if inflight == 0 or time.monotonic() > deadline:
                break
            gevent.sleep(0.2)
        after = self._scrape()
        result = knee.StepResult(index=index, rate=rate, tag=tag, duration=cfg.step_time, sent=sent)
        result.users = self.users
        result.unfinished = inflight if inflight is not None else 0
        self._fill_from_stats(result)
        if before is not None and after is not None:
            figures = RouterFigures.between(before, after, cfg.route)
            result.deployments, result.spill = figures.served, figures.spill
            result.cost_usd = figures.cost_usd
            result.cost_per_hour = figures.cost_usd / (cfg.warmup + cfg.step_time) * 3600
        rows = [r for r in knee.untag(self._rows(), tag) if r.type != "LAG"]
        lag = self._entry("LAG", f"arrivals @{tag}")
        lag_p99 = (
            float(lag.get_response_time_percentile(0.99)) if lag is not None and lag.num_requests else None
        )
        return knee.judge_step(result, rows, lag_p99, cfg.criteria)

    def _entry(self, method: str, name: str) -> StatsEntry | None:
        return self.env.stats.entries.get((name, method))

    def _rows(self) -> list[slo.StatsRow]:
        needed = self.config.criteria.thresholds.percentiles_needed() | {0.5, 0.9, 0.99}
        return [
            slo.StatsRow(
                e.method or "",
                e.name,
                e.num_requests,
                e.num_failures,
                {p: float(e.get_response_time_percentile(p)) for p in needed} if e.num_requests else {},
            )
            for e in self.env.stats.entries.values()
        ]

    def _fill_from_stats(self, result: knee.StepResult) -> None:
        suffix = f" @{result.tag}"
        mine = [e for e in self.env.stats.entries.values() if e.name.endswith(suffix)]
        requests_ = StatsEntry(self.env.stats, "requests", "", use_response_times_cache=False)
        ttft = StatsEntry(self.env.stats, "ttft", "", use_response_times_cache=False)
        lag = StatsEntry(self.env.stats, "lag", "", use_response_times_cache=False)
        fallbacks = 0
        for e in mine:
            if e.method == "TTFT":
                ttft.extend(e)
            elif e.method == "LAG":
                lag.extend(e)
            elif e.method == "FALLBACK":
                fallbacks += e.num_requests
            elif e.method not in slo.METRIC_TYPES:
                requests_.extend(e)
        result.requests, result.failures = requests_.num_requests, requests_.num_failures
        result.achieved = (result.requests - result.failures) / result.duration
        served = result.requests - result.failures
        result.fallback_share = fallbacks / served if served else 0.0
        for label, entry, target in (
            ("requests", requests_, result.latency_ms),
            ("ttft", ttft, result.ttft_ms),
            ("lag", lag, result.lag_ms),
        ):
            del label
            if entry.num_requests:
                for p in (0.5, 0.9, 0.99):
                    target[f"p{round(p * 100)}"] = float(entry.get_response_time_percentile(p))

    def finish(self, search: knee.KneeSearch) -> None:
        cfg = self.config
        summary = sweep_report.summarize(
            steps=self.steps,
            search=search,
            config=cfg,
            host=self.env.host or "",
            mode=f"distributed ({self._workers()} workers)" if self.distributed else "local (one process)",
            started=self.started,
        )
        paths = sweep_report.write(summary, Path(cfg.out))
        for line in sweep_report.verdict_lines(summary):
            (logger.info if summary["passed"] else logger.error)(line)
        logger.info("turnout sweep: reports in %s", ", ".join(str(p) for p in paths))
        self.env.process_exit_code = 0 if summary["passed"] else 1


class SweepShape(LoadTestShape):
    """Keeps the pool of users the sweep asks for, and ends the run when the sweep is over."""

    controller: Controller | None = None

    def tick(self) -> tuple[int, float] | None:
        if self.controller is None:
            assert self.runner is not None
            self.controller = Controller(self.runner.environment)
            gevent.spawn(self.controller.run)
        if self.controller.done:
            return None
        return self.controller.users, float(min(self.controller.users, 100))
