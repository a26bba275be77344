"""A fault-injecting reverse proxy in front of any HTTP upstream (``turnout proxy --upstream URL``).

Faults come from a scenario file (``--scenario``), from the ``/_chaos/`` control API at run time,
or, with ``--chaos-headers``, from ``x-turnout-fault`` headers on single requests.
"""

from __future__ import annotations

import argparse

PROVIDERS = ("openai", "anthropic", "mistral")


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--upstream", required=True, metavar="URL", help="base URL to forward to")
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=8200, help="port to listen on (default 8200; 0 = any)")
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
    import sys

    from aiohttp import web

    from chaos.engine import ChaosEngine
    from chaos.proxy import create_proxy_app
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
    app = create_proxy_app(args.upstream, engine, provider=args.provider)
    print(
        f"turnout proxy: {args.host}:{args.port} -> {args.upstream} ({len(engine.rules)} rules)", flush=True
    )
    web.run_app(app, host=args.host, port=args.port, access_log=None, print=None)
    return 0
