"""``turnout mock``: serve the mock OpenAI, Anthropic and Mistral APIs on one port.

Base URLs, as the official SDKs take them: OpenAI ``http://HOST:PORT/openai/v1``, Anthropic
``http://HOST:PORT/anthropic``, Mistral ``http://HOST:PORT/mistral``. The journal of requests is
at ``/_mock/journal``.
"""

from __future__ import annotations

import argparse
import sys


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument(
        "--port", type=int, default=8100, help="port, 0 for any free one (default: %(default)s)"
    )
    parser.add_argument("--seed", type=int, default=None, help="seed for deterministic answers (default: 0)")
    parser.add_argument(
        "--config",
        metavar="FILE",
        default=None,
        help="YAML file: models, keys, limits, latency, answer rules",
    )


def run(args: argparse.Namespace) -> int:
    import asyncio

    from mockproviders.config import ConfigError, load_config

    try:
        config = load_config(args.config) if args.config else None
    except ConfigError as exc:
        print(f"turnout mock: {exc}", file=sys.stderr)
        return 2
    try:
        asyncio.run(_serve(args.host, args.port, args.seed, config))
    except OSError as exc:
        reason = exc.strerror or exc
        print(f"turnout mock: cannot listen on {args.host}:{args.port}: {reason}", file=sys.stderr)
        return 1
    return 0


async def _serve(host: str, port: int, seed: int | None, config: object) -> None:
    import asyncio

    from mockproviders.config import MockConfig
    from mockproviders.server import MockServer

    assert config is None or isinstance(config, MockConfig)
    async with MockServer(config, seed=seed, host=host, port=port) as server:
        for provider, url in server.base_urls.items():
            print(f"{provider:9} {url}", flush=True)
        print(f"journal   {server.url}/_mock/journal   (Ctrl-C to stop)", flush=True)
        await asyncio.Event().wait()
