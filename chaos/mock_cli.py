"""``turnout mock``: the mock OpenAI, Anthropic and Mistral APIs on one port, with chaos.

Base URLs, as the official SDKs take them: OpenAI ``http://HOST:PORT/openai/v1``, Anthropic
``http://HOST:PORT/anthropic``, Mistral ``http://HOST:PORT/mistral``. The mock's journal is at
``/_mock/journal``; fault rules are read and changed at run time under ``/_chaos/`` (see
``chaos.control``). ``--scenario FILE`` loads a chaos scenario (its ``mock:`` section configures
the mock, like ``--config``); ``--profile FILE`` sets the providers' quotas and speed (see
``chaos.profile``); ``--chaos-headers`` lets single requests ask for a fault with
``x-turnout-fault: NAME`` and ``x-turnout-fault-params: {JSON}``.
"""

from __future__ import annotations

import argparse
import sys

from mockproviders import cli as mock_cli


def configure(parser: argparse.ArgumentParser) -> None:
    mock_cli.configure(parser)
    parser.add_argument(
        "--scenario", metavar="FILE", help="a chaos scenario (YAML): mock answers, faults, limits, seed"
    )
    parser.add_argument(
        "--profile",
        metavar="FILE",
        help="a provider profile (YAML): per-key rpm, tpm, concurrent limits and speed per provider",
    )
    parser.add_argument(
        "--chaos-headers", action="store_true", help="honour x-turnout-fault request headers (off by default)"
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from chaos.profile import ProfileError, apply_profile, load_profile
    from chaos.scenario import Scenario, ScenarioError, load_scenario
    from mockproviders.config import ConfigError, load_config

    try:
        config = load_config(args.config) if args.config else None
        scenario = load_scenario(args.scenario) if args.scenario else None
        profile = load_profile(args.profile) if args.profile else None
    except (ConfigError, ScenarioError, ProfileError) as exc:
        print(f"turnout mock: {exc}", file=sys.stderr)
        return 2
    if scenario is not None and config is not None:
        if scenario.mock is not None:
            both = "give the mock's configuration in --config or in the scenario's mock:, not both"
            print(f"turnout mock: {both}", file=sys.stderr)
            return 2
        scenario = scenario.model_copy(update={"mock": config})
    if scenario is None:
        scenario = Scenario(mock=config, seed=args.seed or 0)
    elif args.seed is not None:
        scenario = scenario.model_copy(update={"seed": args.seed})
    if profile is not None:
        scenario = apply_profile(profile, scenario if (args.scenario or config) else None)
        if args.seed is not None:
            scenario = scenario.model_copy(update={"seed": args.seed})
    try:
        asyncio.run(_serve(args.host, args.port, scenario, args.chaos_headers))
    except OSError as exc:
        print(
            f"turnout mock: cannot listen on {args.host}:{args.port}: {exc.strerror or exc}", file=sys.stderr
        )
        return 1
    return 0


async def _serve(host: str, port: int, scenario: object, header_faults: bool) -> None:
    import asyncio

    from chaos.mock import create_mock_app
    from chaos.scenario import Scenario
    from mockproviders.server import MockServer

    assert isinstance(scenario, Scenario)
    app = create_mock_app(scenario, header_faults=header_faults)
    async with MockServer(app=app, host=host, port=port) as server:
        for provider, url in server.base_urls.items():
            print(f"{provider:9} {url}", flush=True)
        print(f"journal   {server.url}/_mock/journal", flush=True)
        rules = len(scenario.rules)
        print(
            f"chaos     {server.url}/_chaos/   ({rules} rules, seed {scenario.seed}; Ctrl-C to stop)",
            flush=True,
        )
        await asyncio.Event().wait()
