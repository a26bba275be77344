"""Running one drill: start the mock (faults attached) and the router, send the traffic, stop
everything, join what each side saw, and judge the hypothesis.

Everything runs in this process and on this event loop, on free loopback ports; nothing is left
running when :func:`run_drill` returns (or raises).
"""

from __future__ import annotations

import asyncio
import platform
import time
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from chaos.drill.checks import CheckResult
from chaos.drill.record import Attempt, Observations, RequestRecord, Upstream
from chaos.drill.redis import DrillRedis
from chaos.drill.spec import LoadedDrill
from chaos.drill.tap import Tap
from chaos.drill.targets import AnthropicTarget, LibraryTarget, SidecarTarget, Target
from chaos.drill.traffic import Plan, Progress, drive

_CHAT = frozenset({"chat", "messages"})


@dataclass(slots=True)
class DrillResult:
    """A finished drill: what was observed and what the checks concluded."""

    drill: LoadedDrill
    seed: int
    mode: str
    obs: Observations
    results: list[CheckResult]
    started_at: float  # epoch seconds
    versions: dict[str, str] = field(default_factory=dict)
    router_config: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def name(self) -> str:
        return self.drill.name


def versions() -> dict[str, str]:
    """The versions a reader needs to reproduce a run."""
    from importlib.metadata import PackageNotFoundError, version

    out = {"python": platform.python_version(), "platform": platform.platform()}
    for dist in ("turnout", "aiohttp", "pydantic"):
        try:
            out[dist] = version(dist)
        except PackageNotFoundError:
            out[dist] = "unknown"
    return out


def resolve_phases(drill: LoadedDrill, duration: float) -> dict[str, tuple[float, float]]:
    """Each phase's [start, end) in seconds: before, during and after the fault windows (when the
    scenario has no windows, ``during`` is the whole drill), then the drill's own phases."""
    windows = drill.windows()
    start, end = windows.overall
    if start is None:
        phases = {"before": (0.0, 0.0), "during": (0.0, duration), "after": (duration, duration)}
    else:
        stop = min(end, duration) if end is not None else duration
        phases = {"before": (0.0, min(start, duration)), "during": (min(start, duration), stop)}
        phases["after"] = (stop, duration)
    for name, spec in drill.spec.hypothesis.phases.items():
        lo = spec.start.resolve(windows)
        hi = spec.end.resolve(windows) if spec.end is not None else None
        lo = 0.0 if lo is None else min(lo, duration)
        hi = duration if hi is None else min(hi, duration)
        phases[name] = (lo, max(lo, hi))
    return phases


def _attempts(audit: Any) -> list[Attempt]:
    return [
        Attempt(
            model=a.model,
            provider=a.provider,
            outcome=a.outcome,
            error_kind=a.error_kind,
            status=a.status,
            latency_s=round(a.latency_s, 6),
            ttft_s=a.ttft_s,
            wait_s=round(a.wait_s, 6),
            wait_source=a.wait_source,
            cost_usd=a.cost_usd,
            continued_from=a.continued_from,
        )
        for a in audit.attempts
    ]


def join(
    records: list[RequestRecord], upstream: list[Upstream], target: Target, model_ids: dict[str, str]
) -> list[Upstream]:
    """Attach to each request its audit record and the mock requests made for it; decide whether
    each success carried the whole answer the mock sent. Returns the mock requests no drill
    request claims."""
    ids = {r.id for r in records}
    by_id: dict[int, list[Upstream]] = defaultdict(list)
    untagged: list[Upstream] = []
    for u in upstream:
        if u.drill_id is not None and u.drill_id in ids:
            by_id[u.drill_id].append(u)
        else:
            untagged.append(u)
    for r in records:
        r.upstream = by_id.get(r.id, [])
        audit = target.audit_for(r)
        if audit is not None:
            r.audited = True
            r.attempts = _attempts(audit)
            r.cost_usd = audit.cost_usd
            r.saved_usd = audit.saved_usd
            r.winner = audit.winner or r.winner
            if r.error_kind is None and audit.error_kind is not None and r.outcome == "error":
                r.error_kind = audit.error_kind
        r.fallback = bool(
            r.winner and audit is not None and audit.candidates and r.winner != audit.candidates[0]
        )
        if r.ok and r.complete is None:
            model = model_ids.get(r.winner or "")
            sent = [u for u in r.upstream if u.status == 200 and u.model == model]
            if sent:
                last = sent[-1]
                # A continuation delivered only the rest of the answer after its prefill (the
                # text the caller had): the caller's text must be the two together, exactly.
                whole = (last.prefill or "") + (last.delivered or "")
                r.complete = last.terminated is not False and last.delivered is not None and whole == r.text
    return untagged


class _Mock:
    """The mock app on a free loopback port. Unlike ``MockServer``, a handler is cancelled when its
    client goes away (a stalled stream the router gave up on stops at once) and shutdown does not
    wait for handlers still sleeping in a fault, so a drill ends when its traffic does."""

    def __init__(self, app: Any) -> None:
        from mockproviders.server import CORE_KEY

        self.app = app
        self.core = app[CORE_KEY]
        self.url = ""

    async def __aenter__(self) -> _Mock:
        from aiohttp import web

        self._runner = web.AppRunner(
            self.app, access_log=None, handle_signals=False, handler_cancellation=True, shutdown_timeout=0.5
        )
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}"
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self._runner.cleanup()


class _Tqdm(Progress):
    def __init__(self, drill: LoadedDrill) -> None:
        from tqdm import tqdm

        traffic = drill.spec.traffic
        self.by_time = traffic.requests is None
        total = traffic.duration if self.by_time else traffic.requests
        # A timed drill's bar counts seconds of the drill: a rate (s/s) or an ETA extrapolated
        # from requests ending says nothing there, so it shows seconds done of the total.
        fmt = "{desc}: {percentage:3.0f}%|{bar}| {n:.0f} of {total:.0f} s{postfix}" if self.by_time else None
        self.bar = tqdm(
            total=total, desc=drill.name, unit="s" if self.by_time else "req", leave=False, bar_format=fmt
        )
        self.failed = 0

    def done(self, record: RequestRecord, elapsed: float) -> None:
        self.failed += not record.ok
        if self.by_time:
            self.bar.n = round(min(elapsed, self.bar.total or elapsed), 1)
            self.bar.refresh()
        else:
            self.bar.update(1)
        self.bar.set_postfix(failed=self.failed, refresh=False)

    def close(self) -> None:
        self.bar.close()


async def run_drill(
    drill: LoadedDrill, *, seed: int | None = None, mode: str | None = None, progress: bool = False
) -> DrillResult:
    """Run ``drill`` once and judge it. ``seed`` and ``mode`` override the file's."""
    from chaos import ChaosEngine, create_mock_app
    from router.config import parse_config
    from router.sidecar.settings import split_sections

    seed = drill.seed if seed is None else seed
    mode = mode or drill.spec.router.mode
    scenario = drill.scenario.model_copy(update={"seed": seed})
    engine = ChaosEngine.from_scenario(scenario)
    app = create_mock_app(scenario, engine=engine)
    tap = Tap()
    started_at = time.time()
    bar = _Tqdm(drill) if progress else None
    async with _Mock(app) as mock:
        core = mock.core
        core.interceptors = (tap.outer, *core.interceptors)
        data = drill.router_config_data(mock.url)
        shared = drill.spec.router.shared_state
        redis = DrillRedis() if shared is not None else None
        if redis is not None:
            await redis.start()
            data["state"] = {"backend": "redis", "url": redis.url, "prefix": f"drill-{drill.name}"}
        sidecar, rest = split_sections(data)
        config = parse_config(rest, source=f"{drill.source}: router.config")
        cls: type[Target] = SidecarTarget if mode == "sidecar" else LibraryTarget
        if drill.spec.traffic.client == "anthropic":  # its client speaks to a sidecar only
            cls = AnthropicTarget
        restart: asyncio.Task[None] | None = None
        try:
            async with cls(config, sidecar, drill.spec.traffic, seed, drill.spec.router.replicas) as target:
                t0 = time.monotonic()
                engine.reset()
                tap.start(t0)
                target.listener.start(t0)
                target.t0 = t0
                if redis is not None and shared is not None and shared.restart_at is not None:
                    restart = asyncio.create_task(redis.restart(shared.restart_at, shared.down_for, 0.0))
                try:
                    records = await drive(
                        drill.spec.traffic, Plan(drill.spec.traffic, seed), target.send, t0=t0, progress=bar
                    )
                finally:
                    if bar is not None:
                        bar.close()
                duration = time.monotonic() - t0
                if restart is not None:
                    await restart  # Redis is back before the replicas close
        finally:
            if restart is not None and not restart.done():
                restart.cancel()
            if redis is not None:
                redis.close()
        mock_count = sum(1 for e in core.journal if e.endpoint in _CHAT)
        engine_count = sum(1 for e in engine.journal if e["endpoint"] in _CHAT)
    model_ids = {name: dep.model for name, dep in config.models.items()}
    untagged = join(records, tap.records, target, model_ids)
    windows = drill.windows()
    obs = Observations(
        requests=records,
        breaker_events=list(target.listener.breakers),
        attempt_events=list(target.listener.attempts),
        untagged=untagged,
        phases=resolve_phases(drill, duration),
        duration=duration,
        totals={
            "requests": len(records),
            "audit attempts": sum(
                a.outcome != "skipped" for rec in target.listener.audits for a in rec.attempts
            ),
            "drill tap": len(tap.records),
            "mock journal": mock_count,
            "abandoned": sum(u.aborted == "abandoned" for u in tap.records),
            "chaos journal": engine_count,
        },
        windows=dict(windows.rules),
        faults_span=windows.overall,
    )
    return DrillResult(
        drill=drill,
        seed=seed,
        mode=mode,
        obs=obs,
        results=judge(drill, obs),
        started_at=started_at,
        versions=versions(),
        router_config=data,
    )


def judge(drill: LoadedDrill, obs: Observations) -> list[CheckResult]:
    """Every check of the hypothesis, in the order written, one result per phase."""
    out: list[CheckResult] = []
    for check in drill.spec.hypothesis.checks:
        out.extend(check.evaluate(obs))
    return out
