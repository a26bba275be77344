"""What the engine works with, built once from a :class:`~router.config.RouterConfig`.

A :class:`DeploymentRuntime` is a deployment with its adapter, circuit breaker, rate limiter and
prices; a :class:`RoutePlan` is a route with its chain, its error-kind chains, its retry policy
and its timeouts. Built once, so the request path reads plain attributes: no pydantic, no dict
merging, no URL building per request.
"""

from __future__ import annotations

import functools
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from router.adapters import Adapter, CallOptions, Deployment, make_adapter, make_deployment, provider_for
from router.breaker import CircuitBreaker
from router.clock import Clock
from router.config import RouteConfig, RouterConfig, TimeoutsConfig
from router.cost import PriceTable, Rates
from router.deadline import Deadline
from router.errors import ErrorKind
from router.headers import RateLimitDialect
from router.ratelimit import RateLimiter
from router.retry import AttemptState, RetryPolicy, Stop
from router.transport import Transport

if TYPE_CHECKING:
    from router.state.resilient import ResilientStore
    from router.state.shared import SharedDeployment

__all__ = ["BREAKER_COUNTS", "STREAM_FAILURES", "DeploymentRuntime", "RoutePlan", "build_runtime"]

# Errors that say something about the deployment's health, and so count toward its breaker:
# the provider's own failures. Never counted: the caller's mistakes (bad request, context length,
# content policy, and capabilities the deployment lacks, refused before any call), auth and
# not-found (a configuration error: the request falls back, and the deployment is not ejected for
# traffic it can serve), rate limits and quota (holds, see the engine), and timeouts cut short by
# the request's own deadline.
BREAKER_COUNTS: frozenset[ErrorKind] = frozenset(
    {
        ErrorKind.SERVER,
        ErrorKind.OVERLOADED,
        ErrorKind.CONNECT,
        ErrorKind.TIMEOUT,
        ErrorKind.FIRST_TOKEN_TIMEOUT,
        ErrorKind.STALL,
        ErrorKind.STREAM_CUT,
        ErrorKind.MALFORMED,
    }
)

# Failures of a stream's body: they count against the deployment's *stream* health only, so cut
# streams do not take its non-streamed traffic out.
STREAM_FAILURES: frozenset[ErrorKind] = frozenset(
    {ErrorKind.STALL, ErrorKind.STREAM_CUT, ErrorKind.MALFORMED}
)

SILENCE: frozenset[ErrorKind] = frozenset({ErrorKind.TIMEOUT, ErrorKind.FIRST_TOKEN_TIMEOUT, ErrorKind.STALL})


class stop_on_silence(Stop):
    """Do not retry a deployment that timed out: fail over instead of multiplying the hang."""

    __slots__ = ()

    def __call__(self, state: AttemptState) -> bool:
        return state.error is not None and state.error.kind in SILENCE

    def __repr__(self) -> str:
        return "stop_on_silence()"


@dataclass(slots=True, eq=False)
class DeploymentRuntime:
    deployment: Deployment
    adapter: Adapter
    breaker: CircuitBreaker
    limiter: RateLimiter
    timeouts: TimeoutsConfig  # the defaults with the provider's on top
    on_headers: Callable[[Mapping[str, str]], None]
    # The health of its streams once output began (cuts, stalls, malformed events): gates streamed
    # requests only. Local to this replica.
    stream_breaker: CircuitBreaker
    hold_after_429s: int = 3  # 429s in a row (across requests) that hold the whole deployment
    shared: SharedDeployment | None = None  # the link to the shared state store; None: local only
    rate_limited: int = 0  # 429s in a row, no success between them

    @property
    def name(self) -> str:
        return self.deployment.name


@dataclass(slots=True, eq=False)
class RoutePlan:
    name: str
    chain: tuple[str, ...]
    policy: RetryPolicy
    total: float | None
    route_timeouts: TimeoutsConfig  # fields the route set explicitly
    on_error: dict[ErrorKind, tuple[str, ...]] = field(default_factory=dict)
    hedge_after: float | None = None
    buffer_stream: bool = False
    serves: str = "chat"  # "chat" or "embeddings": what its deployments serve (one task per route)
    no_tools: frozenset[str] = frozenset()  # its deployments that take no tool definitions
    final_on_policy: bool = True  # a content-policy refusal ends the request unless a chain is given
    _limits: dict[str, tuple[float | None, float | None, float | None, float | None]] = field(
        default_factory=dict
    )

    def options(self, rt: DeploymentRuntime, deadline: Deadline) -> CallOptions:
        """The attempt's limits on ``rt``, capped by what is left of ``deadline``."""
        limits = self._limits.get(rt.name)
        if limits is None:
            t = self.route_timeouts.over(rt.timeouts)
            limits = self._limits[rt.name] = (t.connect, t.read, t.first_token, t.idle)
        connect, read, first_token, idle = limits
        left = deadline.remaining()  # one clock read for all four (it is read per attempt)
        if left is None:
            return CallOptions(connect, read, first_token, idle, None, rt.on_headers)
        return CallOptions(
            left if connect is None or connect > left else connect,
            left if read is None or read > left else read,
            left if first_token is None or first_token > left else first_token,
            idle,
            left,
            rt.on_headers,
        )


def _limiter_hook(
    dialect: RateLimitDialect, limiter: RateLimiter, clock: Clock
) -> Callable[[Mapping[str, str]], None]:
    parse, exhausted = dialect.parse, dialect.exhausted

    def observe(headers: Mapping[str, str]) -> None:
        snap = parse(headers, clock.wall())
        if snap is not None:
            limiter.observe(snap)

    if limiter.rpm is not None or limiter.tpm is not None:
        return observe  # configured limits learn from every response (a lower remaining count)

    # Without limits of its own, a limiter acts on headers only when a remaining count reads 0
    # (it holds requests until the reset); the full parse, on every response, waits for that.
    def observe_exhausted(headers: Mapping[str, str]) -> None:
        if exhausted(headers):
            observe(headers)

    return observe_exhausted


def build_runtime(
    cfg: RouterConfig,
    *,
    clock: Clock,
    rng: random.Random,
    adapters: Mapping[str, Adapter] | None,
    on_breaker_change: Callable[[str, str, str], None],
    state: ResilientStore | None = None,
    transport: Transport | None = None,
) -> tuple[dict[str, Adapter], dict[str, DeploymentRuntime], dict[str, RoutePlan], PriceTable]:
    """Adapters by provider, deployments, route plans (routes, then single deployments), prices.

    With a shared ``state`` store, breakers and limiters are the shared subclasses
    (:mod:`router.state.shared`); without one, the plain local objects, exactly as before. A
    provider without an adapter in ``adapters`` gets the HTTP adapter of its kind, over
    ``transport`` if one is given (else a pool of its own), its limits on ``clock``.
    """
    breaker_cls: type[CircuitBreaker] = CircuitBreaker
    limiter_cls: type[RateLimiter] = RateLimiter
    if state is not None:
        from router.state.shared import SharedBreaker, SharedDeployment, SharedLimiter

        breaker_cls, limiter_cls = SharedBreaker, SharedLimiter
    by_provider: dict[str, Adapter] = {}
    for pname, pcfg in cfg.providers.items():
        given = (adapters or {}).get(pname)
        by_provider[pname] = (
            given
            if given is not None
            else make_adapter(
                pcfg.kind,
                connections=pcfg.connections,
                max_reply_bytes=pcfg.max_reply_bytes,
                transport=transport,
                clock=clock,
            )
        )
    d = cfg.defaults
    base_timeouts = cfg.timeouts_for(None)
    prices = PriceTable()
    deployments: dict[str, DeploymentRuntime] = {}
    for dname, dcfg in cfg.models.items():
        pcfg = cfg.providers[dcfg.provider]
        dep = make_deployment(
            dname,
            provider=dcfg.provider,
            kind=pcfg.kind,
            model=dcfg.model,
            base_url=pcfg.base_url,
            api_key=pcfg.api_key,
            headers=pcfg.headers,
            max_tokens=dcfg.max_tokens,
            context_window=dcfg.context_window,
            continuation=dcfg.continuation,
        )
        b = d.breaker
        health: dict[str, Any] = {
            "failures": b.failures,
            "window": b.window,
            "cooldown": b.cooldown,
            "max_cooldown": max(b.max_cooldown, b.cooldown),
            "backoff": b.backoff,
            "failure_rate": b.failure_rate,
            "min_calls": b.min_calls,
            "failing_for": b.failing_for,
            "clock": clock,
        }
        breaker = breaker_cls(on_change=functools.partial(on_breaker_change, dname), **health)
        stream_breaker = CircuitBreaker(
            on_change=functools.partial(on_breaker_change, f"{dname}#stream"),
            **(health | {"failure_rate": b.stream_failure_rate}),
        )
        limiter = limiter_cls(dcfg.rpm, dcfg.tpm, clock)
        limiter.max_hold = d.retry_after_cap  # no provider hold (a reset, a retry-after) lasts longer
        override = None
        if dcfg.prices is not None:
            p = dcfg.prices
            override = Rates.per_million(p.input, p.output, p.cached, p.cache_write)
        spec = provider_for(pcfg.kind)
        prices.register(dname, spec.price_id, dcfg.model, override)
        rt = deployments[dname] = DeploymentRuntime(
            deployment=dep,
            adapter=by_provider[dcfg.provider],
            breaker=breaker,
            limiter=limiter,
            timeouts=pcfg.timeouts.over(base_timeouts),
            on_headers=_limiter_hook(spec.ratelimits, limiter, clock),
            stream_breaker=stream_breaker,
            hold_after_429s=b.hold_after_429s,
        )
        if state is not None:
            t = rt.timeouts  # the probe lease outlives one attempt; it is released on its verdict
            probe_ttl = (t.connect or 0.0) + max(t.read or 0.0, t.first_token or 0.0) or 30.0
            rt.shared = SharedDeployment(dname, state, breaker, limiter, clock, probe_ttl, state.lease_s)  # type: ignore[arg-type]

    def plan(name: str, route: RouteConfig | None, chain: tuple[str, ...]) -> RoutePlan:
        retries = route.retries if route is not None and route.retries is not None else d.retries
        policy = RetryPolicy.from_config(
            retries=retries,
            backoff_base=d.backoff_base,
            backoff_max=d.backoff_max,
            retry_after_cap=d.retry_after_cap,
            rng=rng,
            also_stop=None if d.retry_timeouts else stop_on_silence(),
        )
        timeouts = cfg.timeouts_for(route)
        on_error: dict[ErrorKind, tuple[str, ...]] = {}
        final_on_policy = True
        if route is not None:
            if route.on_error.context_length is not None:
                on_error[ErrorKind.CONTEXT_LENGTH] = tuple(route.on_error.context_length)
            if route.on_error.content_policy is not None:
                on_error[ErrorKind.CONTENT_POLICY] = tuple(route.on_error.content_policy)
                final_on_policy = False
        explicit = route.timeouts if route is not None else TimeoutsConfig()
        tasks = {cfg.models[m].serves for m in chain if m in cfg.models}
        return RoutePlan(
            name=name,
            chain=chain,
            policy=policy,
            total=timeouts.total,
            route_timeouts=explicit,
            on_error=on_error,
            hedge_after=route.hedge.after if route is not None and route.hedge is not None else None,
            buffer_stream=route.buffer_stream if route is not None else False,
            final_on_policy=final_on_policy,
            serves="embeddings" if tasks == {"embeddings"} else "chat",
            no_tools=frozenset(m for m in chain if m in cfg.models and not cfg.models[m].tools),
        )

    plans: dict[str, RoutePlan] = {name: plan(name, None, (name,)) for name in cfg.models}
    for rname, route in cfg.routes.items():
        plans[rname] = plan(rname, route, tuple(route.chain))  # a route shadows a deployment of its name
    return by_provider, deployments, plans, prices
