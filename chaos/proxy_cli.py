"""A fault-injecting reverse proxy in front of any HTTP upstream (``turnout proxy --upstream URL``).

Faults come from a scenario file (``--scenario``), from the ``/_chaos/`` control API at run time,
or, with ``--chaos-headers``, from ``x-turnout-fault`` headers on single requests.
"""

from __future__ import annotations

import argparse

PROVIDERS = ("openai", "anthropic", "mistral")


def upstream_url(value: str) -> str:
    """An absolute http(s) URL with a host, or an argparse error that says what is wrong."""
    from urllib.parse import urlsplit

    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise argparse.ArgumentTypeError(f"{value!r} is not an http:// or https:// URL with a host")
    return value


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument(
        "--upstream", required=True, metavar="URL", type=upstream_url, help="base URL to forward to"
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8300, help="port to listen on (default 8300; 0 = any)")
    parser.add_argument("--scenario", metavar="FILE", help="a chaos scenario (YAML): rules, limits, seed")
    parser.add_argument(
        "--provider",
        choices=PROVIDERS,
        help="the upstream's API shape, for error bodies and targeting (default: from the path)",
    )
    parser.add_argument("--seed", type=int, help="override the scenario's seed")
    parser.add_argument(
        "--chaos-headers", action="store_true", help="honour x-turnout-fault request headers (off by default)"
    )


def run(args: argparse.Namespace) -> int:
    import asyncio
    import sys

    from chaos.engine import ChaosEngine
    from chaos.scenario import ScenarioError, load_scenario

    engine = ChaosEngine(header_faults=args.chaos_headers)
    if args.scenario:
        try:
            engine.load(load_scenario(args.scenario))
        except ScenarioError as exc:
            print(f"turnout proxy: {exc}", file=sys.stderr)
            return 2
    if args.seed is not None:
        engine.seed = args.seed
    try:
        asyncio.run(_serve(args, engine))
    except OSError as exc:
        print(
            f"turnout proxy: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    return 0


async def _serve(args: argparse.Namespace, engine: object) -> None:
    import asyncio

    from aiohttp import web

    from chaos.engine import ChaosEngine
    from chaos.proxy import create_proxy_app

    assert isinstance(engine, ChaosEngine)
    app = create_proxy_app(args.upstream, engine, provider=args.provider)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    try:
        site = web.TCPSite(runner, args.host, args.port)
        await site.start()
        server = site._server
        sockets = getattr(server, "sockets", None) or []
        port = sockets[0].getsockname()[1] if sockets else args.port
        url = f"http://{args.host}:{port}"
        print(f"proxy     {url} -> {args.upstream}", flush=True)
        rules = len(engine.rules)
        print(f"chaos     {url}/_chaos/   ({rules} rules, seed {engine.seed}; Ctrl-C to stop)", flush=True)
        await asyncio.Event().wait()
    finally:
        await runner.cleanup()
