"""Run chaos drills: start mocks with faults and a router, send traffic, judge, write reports.

Each FILE is a drill (see chaos/drills/ for the shipped ones). Reports go to
OUT/<drill name>/: journal.json, junit.xml, summary.md and report.html; with several drills,
OUT/junit.xml holds them all. Exit status: 0 when every hypothesis holds, 1 when any fails (or a
drill could not run), 2 for invalid input.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from chaos.drill.spec import LoadedDrill


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("files", nargs="+", metavar="FILE", help="drill files (YAML)")
    parser.add_argument("--seed", type=int, default=None, help="replay with this seed (default: the drill's)")
    parser.add_argument(
        "--out", default="drill-reports", metavar="DIR", help="report folder (default: %(default)s)"
    )
    parser.add_argument(
        "--mode",
        choices=("library", "sidecar"),
        default=None,
        help="drive the router in process or as a sidecar",
    )
    parser.add_argument("--quick", action="store_true", help="run only the drills marked quick: true")
    parser.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="show a progress bar on stderr (default: when stderr is a terminal)",
    )


def missing_extras() -> list[str]:
    """The packages of the ``drills`` extra that are not installed (report plots, progress bar)."""
    import importlib.util

    return [name for name in ("matplotlib", "tqdm") if importlib.util.find_spec(name) is None]


def run(args: argparse.Namespace) -> int:
    import asyncio

    from chaos.drill.spec import DrillError, load_drill

    missing = missing_extras()
    if missing:
        print(
            f"turnout drill: needs {' and '.join(missing)} (report plots, progress bar), which a "
            "plain `pip install turnout` leaves out: pip install 'turnout[drills]'",
            file=sys.stderr,
        )
        return 2

    drills: list[LoadedDrill] = []
    for file in args.files:
        try:
            drills.append(load_drill(file))
        except DrillError as exc:
            print(f"turnout drill: {exc}", file=sys.stderr)
            return 2
    names = [d.name for d in drills]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        print(f"turnout drill: two drills are named {duplicates[0]!r}; names must be unique", file=sys.stderr)
        return 2
    if args.quick:
        skipped = [d.name for d in drills if not d.spec.quick]
        drills = [d for d in drills if d.spec.quick]
        if not drills:
            print("turnout drill: --quick, but no drill given is marked quick: true", file=sys.stderr)
            return 2
        if skipped:
            print(f"turnout drill: --quick: skipping {', '.join(skipped)}", file=sys.stderr)
    progress = sys.stderr.isatty() if args.progress is None else args.progress
    return asyncio.run(_run_all(drills, args, progress))


async def _run_all(drills: list[LoadedDrill], args: argparse.Namespace, progress: bool) -> int:
    from chaos.drill.report import write_reports
    from chaos.drill.report.writers import verdict_line, write_junit, write_markdown
    from chaos.drill.runner import DrillResult, run_drill
    from chaos.drill.spec import DrillError

    out = Path(args.out)
    results: list[DrillResult] = []
    broken: list[str] = []
    for drill in drills:
        try:
            result = await run_drill(drill, seed=args.seed, mode=args.mode, progress=progress)
        except DrillError as exc:
            print(f"turnout drill: {exc}", file=sys.stderr)
            return 2
        except Exception as exc:  # a drill that cannot run is a failed drill, not a traceback
            print(f"turnout drill: {drill.name}: could not run: {type(exc).__name__}: {exc}", file=sys.stderr)
            broken.append(drill.name)
            continue
        results.append(result)
        paths = write_reports(result, out / drill.name)
        print(write_markdown(result, str(paths["html"])))
        print(f"Report: {paths['html']}")
        print(verdict_line(result) + "\n", flush=True)
    if len(drills) > 1:
        _write(out / "junit.xml", write_junit(results))
        passed = sum(r.passed for r in results)
        failed = [r.name for r in results if not r.passed] + broken
        tail = f"; failed: {', '.join(failed)}" if failed else ""
        print(
            f"{len(drills)} drills: {passed} passed, {len(failed)} failed{tail}. JUnit: {out / 'junit.xml'}"
        )
    return 0 if not broken and all(r.passed for r in results) else 1


def _write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
