"""Failure handling with the router's defaults, measured: who serves the traffic under partial faults,
and how fast it comes back after an outage.

The router library (a config with no ``defaults:`` section: what a new user gets) against
``turnout mock`` on loopback with chaos rules, real time. Each scenario prints the share of traffic
each deployment served and the success rate; the outage scenario prints how long after the recovery
the primary served again. Run it on two checkouts to compare (it uses only the public API)::

    python bench/bench_health.py                       # every scenario, about 2 minutes
    python bench/bench_health.py --only brownout --duration 5
    python bench/bench_health.py --json out.json

Scenarios (the rows of issue 12's table): ``brownout`` (10 % random 503s on the primary, a closed
loop of 16 clients at full speed, then an open loop of 5 req/s), ``cut-streams`` (20 % of the
primary's streams cut after 5 tokens, half the traffic streams), ``caller-errors`` (10 embeddings
requests to a chat-only deployment, then chat traffic), ``outage`` (the primary refuses
connections for ``--outage`` seconds, open loop of 20 req/s), ``retry-after-503`` (one 503 with
``Retry-After: 0.7``), ``no-done`` (streams complete but for ``data: [DONE]``).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from collections import Counter
from pathlib import Path
from typing import Any

from chaos import ChaosEngine, Rule, create_mock_app
from mockproviders.clock import SystemClock as MockSystemClock
from mockproviders.server import MockServer
from router import Router, parse_config
from router import errors as E
from router.types import ChatRequest, EmbeddingRequest, Message, StreamEnd


def config(urls: dict[str, str], chain: list[str]) -> Any:
    return parse_config(
        {
            "providers": {
                "openai": {"kind": "openai", "base_url": urls["openai"], "api_key": "sk-bench"},
                "anthropic": {"kind": "anthropic", "base_url": urls["anthropic"], "api_key": "sk-bench"},
                "mistral": {"kind": "mistral", "base_url": urls["mistral"], "api_key": "m-bench"},
            },
            "models": {
                "gpt-4o-mini": {"provider": "openai", "model": "gpt-4o-mini"},
                "claude-haiku": {"provider": "anthropic", "model": "claude-haiku-4-5"},
                "mistral-small": {"provider": "mistral", "model": "mistral-small-latest"},
            },
            "routes": {"chat": {"chain": chain}},
        }
    )


def rule(name: str, fault: str, provider: str, when: dict[str, Any], **params: Any) -> Rule:
    return Rule.model_validate(
        {"name": name, "fault": fault, "params": params, "match": {"provider": provider}, "when": when}
    )


def ask(model: str = "chat") -> ChatRequest:
    return ChatRequest(model=model, messages=[Message("user", "Say something about trains.")])


class Tally:
    def __init__(self) -> None:
        self.served: Counter[str] = Counter()
        self.failed: Counter[str] = Counter()
        self.first_primary_after: dict[float, float] = {}

    def share(self, primary: str) -> float:
        total = sum(self.served.values()) + sum(self.failed.values())
        return self.served[primary] / total if total else 0.0

    def summary(self, primary: str) -> dict[str, Any]:
        total = sum(self.served.values()) + sum(self.failed.values())
        return {
            "requests": total,
            "success": round(sum(self.served.values()) / total, 4) if total else None,
            "served_by": {k: round(v / total, 4) for k, v in sorted(self.served.items())},
            "failed": dict(self.failed),
            "primary_share": round(self.share(primary), 4),
        }


async def one(router: Router, tally: Tally, stream: bool, log: list[tuple[float, str]] | None = None) -> None:
    try:
        if stream:
            model = None
            async for ev in router.stream(ask()):
                if isinstance(ev, StreamEnd):
                    model = ev.response.model
            if model is None:
                raise E.StreamCut("no end")
        else:
            model = (await router.complete(ask())).model
        tally.served[model] += 1
        if log is not None:
            log.append((time.monotonic(), model))
    except E.RouterError as exc:
        tally.failed[exc.kind.value] += 1


async def closed_loop(router: Router, seconds: float, clients: int, stream_share: float) -> Tally:
    tally = Tally()
    end = time.monotonic() + seconds

    async def client(i: int) -> None:
        n = 0
        while time.monotonic() < end:
            n += 1
            await one(router, tally, stream=(n * 7 + i) % 100 < stream_share * 100)

    await asyncio.gather(*(client(i) for i in range(clients)))
    return tally


async def open_loop(
    router: Router,
    seconds: float,
    rate: float,
    stream_share: float,
    log: list[tuple[float, str]] | None = None,
) -> Tally:
    tally = Tally()
    tasks = []
    start = time.monotonic()
    n = 0
    while time.monotonic() - start < seconds:
        n += 1
        tasks.append(asyncio.ensure_future(one(router, tally, (n * 7) % 100 < stream_share * 100, log)))
        await asyncio.sleep(max(0.0, start + n / rate - time.monotonic()))
    await asyncio.gather(*tasks)
    return tally


async def with_mock(rules: list[Rule], chain: list[str], body: Any) -> Any:
    engine = ChaosEngine(rules, clock=MockSystemClock(), seed=7)
    async with MockServer(app=create_mock_app(engine=engine)) as server:
        router = Router(config(server.base_urls, chain))
        try:
            return await body(router)
        finally:
            await router.aclose()


CHAIN = ["gpt-4o-mini", "mistral-small"]


def opened(router: Router) -> int:
    """How many times the primary was ejected."""
    return int(router.snapshot()["deployments"]["gpt-4o-mini"]["breaker"]["opened"])


async def brownout(args: argparse.Namespace) -> dict[str, Any]:
    rules = [rule("random-503", "server_error", "openai", {"probability": 0.1}, status=503)]
    out: dict[str, Any] = {}

    async def fast(router: Router) -> None:
        t = await closed_loop(router, args.duration, 16, 0.3)
        out["closed_loop_c16"] = t.summary("gpt-4o-mini") | {
            "rate_rps": round(sum(t.served.values()) / args.duration)
        }
        out["closed_loop_c16"]["opened"] = router.snapshot()["deployments"]["gpt-4o-mini"]["breaker"][
            "opened"
        ]

    async def slow(router: Router) -> None:
        t = await open_loop(router, args.duration * 2, 5.0, 0.3)
        out["open_loop_5rps"] = t.summary("gpt-4o-mini")
        out["open_loop_5rps"]["opened"] = opened(router)

    await with_mock(rules, CHAIN, fast)
    await with_mock(rules, CHAIN, slow)
    return out


async def cut_streams(args: argparse.Namespace) -> dict[str, Any]:
    rules = [rule("cut", "cut", "openai", {"probability": 0.2}, after_tokens=5)]
    out: dict[str, Any] = {}

    async def body(router: Router) -> None:
        plain, streams = Tally(), Tally()
        end = time.monotonic() + args.duration

        async def client(i: int) -> None:
            n = 0
            while time.monotonic() < end:
                n += 1
                s = (n + i) % 2 == 0
                await one(router, streams if s else plain, s)

        await asyncio.gather(*(client(i) for i in range(16)))
        out["non_streamed"] = plain.summary("gpt-4o-mini")
        out["streamed"] = streams.summary("gpt-4o-mini")

    await with_mock(rules, CHAIN, body)
    return out


async def caller_errors(args: argparse.Namespace) -> dict[str, Any]:
    out: dict[str, Any] = {}

    async def body(router: Router) -> None:
        kinds: Counter[str] = Counter()
        for _ in range(10):
            try:
                await router.embed(EmbeddingRequest(model="claude-haiku", input=["a"]))
                kinds["ok"] += 1
            except E.RouterError as exc:
                kinds[f"{type(exc).__name__} ({exc.http_status})"] += 1
        out["embeddings_answers"] = dict(kinds)
        out["claude_state_after"] = router.snapshot()["deployments"]["claude-haiku"]["breaker"]["state"]
        out["chat_after"] = (await closed_loop(router, 2.0, 4, 0.0)).summary("claude-haiku")

    await with_mock([], ["claude-haiku", "mistral-small"], body)
    return out


async def outage(args: argparse.Namespace) -> dict[str, Any]:
    start, length = 2.0, args.outage
    rules = [
        rule("down", "refuse", "openai", {"window": {"start": f"{start}s", "end": f"{start + length}s"}})
    ]
    out: dict[str, Any] = {}

    async def body(router: Router) -> None:
        log: list[tuple[float, str]] = []
        t0 = time.monotonic()
        tally = await open_loop(router, start + length + 12.0, 20.0, 0.3, log)
        recovered = t0 + start + length
        back = [t for t, m in log if m == "gpt-4o-mini" and t >= recovered]
        out["returned_after_s"] = round(back[0] - recovered, 2) if back else None
        during = [m for t, m in log if t0 + start + 1 <= t < recovered]
        after = [m for t, m in log if t >= recovered + 5]
        out["primary_share_during"] = round(during.count("gpt-4o-mini") / len(during), 4) if during else None
        out["primary_share_5s_after"] = round(after.count("gpt-4o-mini") / len(after), 4) if after else None
        out["overall"] = tally.summary("gpt-4o-mini")

    # the mock's chaos clock starts with the engine; the traffic starts right after
    await with_mock(rules, CHAIN, body)
    out["outage_s"] = length
    return out


async def retry_after_503(args: argparse.Namespace) -> dict[str, Any]:
    rules = [rule("one-503", "server_error", "openai", {"first": 1}, status=503, retry_after=0.7)]
    out: dict[str, Any] = {}

    async def body(router: Router) -> None:
        async def later() -> str:
            await asyncio.sleep(0.2)  # while the first request waits out its retry-after
            state = router.snapshot()["deployments"]["gpt-4o-mini"]["breaker"]["state"]
            out["breaker_during_the_wait"] = state
            return (await router.complete(ask())).model

        first, second = await asyncio.gather(router.complete(ask()), later())
        out["first_request_served_by"] = first.model
        out["concurrent_request_served_by"] = second
        out["breaker_after"] = router.snapshot()["deployments"]["gpt-4o-mini"]["breaker"]["state"]

    await with_mock(rules, CHAIN, body)
    return out


async def no_done(args: argparse.Namespace) -> dict[str, Any]:
    rules = [rule("no-done", "drop_terminator", "openai", {"probability": 1.0})]
    out: dict[str, Any] = {}

    async def body(router: Router) -> None:
        t = Tally()
        for _ in range(20):
            await one(router, t, True)
        out.update(t.summary("gpt-4o-mini"))
        out["breaker"] = router.snapshot()["deployments"]["gpt-4o-mini"]["breaker"]["state"]

    await with_mock(rules, CHAIN, body)
    return out


SCENARIOS = {
    "brownout": brownout,
    "cut-streams": cut_streams,
    "caller-errors": caller_errors,
    "outage": outage,
    "retry-after-503": retry_after_503,
    "no-done": no_done,
}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--only", choices=sorted(SCENARIOS), action="append")
    p.add_argument("--duration", type=float, default=10.0, help="seconds of traffic per load scenario")
    p.add_argument("--outage", type=float, default=20.0, help="seconds the primary is down")
    p.add_argument("--json", help="also write the figures here")
    args = p.parse_args()
    results = asyncio.run(run(args))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))


async def run(args: argparse.Namespace) -> dict[str, Any]:
    import router

    results: dict[str, Any] = {
        "router": router.__file__,
        "python": platform.python_version(),
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
    }
    for name in args.only or SCENARIOS:
        results[name] = await SCENARIOS[name](args)
        print(name, json.dumps(results[name], indent=1), flush=True)
    return results


if __name__ == "__main__":
    main()
