"""The ``turnout`` command line: one script, one subcommand per part.

Each subcommand lives in the package that owns it. Its ``cli`` module is imported to build the
parser, so it must keep its top-level imports light (heavy imports go inside ``run``), which keeps
``turnout --help`` fast. A subcommand module provides two functions::

    def configure(parser: argparse.ArgumentParser) -> None: ...   # add its arguments
    def run(args: argparse.Namespace) -> int: ...                 # do the work, return the exit status

A subcommand that hands its other options on to another program (``sweep`` to Locust) defines a
``passthrough`` default (``parser.set_defaults(passthrough=[])``); the arguments the parser does
not know are put in it, in their order.
"""

from __future__ import annotations

import argparse
import importlib
import re
import sys
import textwrap
from collections.abc import Sequence
from typing import NamedTuple

from turnout import __version__


class Subcommand(NamedTuple):
    name: str
    module: str
    help: str


SUBCOMMANDS: tuple[Subcommand, ...] = (
    Subcommand("mock", "chaos.mock_cli", "serve the mock OpenAI, Anthropic and Mistral APIs on one port"),
    Subcommand("serve", "router.sidecar.cli", "run the router as an OpenAI-compatible sidecar"),
    Subcommand("proxy", "chaos.proxy_cli", "a fault-injecting reverse proxy in front of any HTTP upstream"),
    Subcommand("drill", "chaos.drill.cli", "run chaos drills: mocks + router + faults + traffic + verdict"),
    Subcommand("sweep", "loadtests.sweep_cli", "capacity sweep with Locust: the highest load within the SLO"),
)


_RST_LITERAL = re.compile(r"``(.+?)``")


def plain(text: str) -> str:
    """Docstring text as a terminal shows it: RST ````literals```` lose their backquotes."""
    return _RST_LITERAL.sub(r"\1", text)


class HelpFormatter(argparse.HelpFormatter):
    """argparse's formatter, fed with docstrings: no RST markup, paragraphs kept, and lines broken
    only at spaces (never inside ``x-turnout-fault`` or a URL)."""

    def _fill_text(self, text: str, width: int, indent: str) -> str:
        paragraphs = re.split(r"\n\s*\n", textwrap.dedent(plain(text)).strip())
        return "\n\n".join(
            textwrap.fill(
                " ".join(p.split()),
                width,
                initial_indent=indent,
                subsequent_indent=indent,
                break_on_hyphens=False,
                break_long_words=False,
            )
            for p in paragraphs
        )

    def _split_lines(self, text: str, width: int) -> list[str]:
        return textwrap.wrap(
            " ".join(plain(text).split()), width, break_on_hyphens=False, break_long_words=False
        )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="turnout",
        description="Resilience toolkit for multi-model LLM pipelines: router, mocks, chaos, drills.",
    )
    parser.add_argument("--version", action="version", version=f"turnout {__version__}")
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    for sub in SUBCOMMANDS:
        # Every part ships in the one distribution: a subcommand module that does not import is a
        # broken install, said as such, never a subcommand silently missing from --help. Its
        # optional extras are checked when it runs (see each ``run``).
        module = importlib.import_module(sub.module)
        sp = subparsers.add_parser(
            sub.name, help=sub.help, description=module.__doc__ or sub.help, formatter_class=HelpFormatter
        )
        module.configure(sp)
        sp.set_defaults(_run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(argv)
    if extra:
        if not hasattr(args, "passthrough"):
            parser.error(f"unrecognized arguments: {' '.join(extra)}")
        args.passthrough = [*args.passthrough, *extra]  # a subcommand that hands options on (sweep)
    run = getattr(args, "_run", None)
    if run is None:
        parser.print_help(sys.stderr)
        return 2
    try:
        return int(run(args))
    except KeyboardInterrupt:
        return 130
