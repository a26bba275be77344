"""A drill's reports: ``journal.json``, ``junit.xml``, ``summary.md`` and ``report.html``.

:func:`write_reports` writes all four for one drill into a folder and returns their paths;
:func:`~chaos.drill.report.writers.write_junit` also takes several drills for one combined file.
"""

from __future__ import annotations

from pathlib import Path

from chaos.drill.runner import DrillResult

__all__ = ["write_reports"]


def write_reports(result: DrillResult, out: Path) -> dict[str, Path]:
    """Write the four reports of ``result`` into ``out`` (created if needed); their paths by kind."""
    from chaos.drill.report import html, writers

    out.mkdir(parents=True, exist_ok=True)
    paths = {
        "journal": out / "journal.json",
        "junit": out / "junit.xml",
        "summary": out / "summary.md",
        "html": out / "report.html",
    }
    paths["journal"].write_text(writers.write_json(result), encoding="utf-8")
    paths["junit"].write_text(writers.write_junit([result]), encoding="utf-8")
    paths["summary"].write_text(writers.write_markdown(result, str(paths["html"])), encoding="utf-8")
    paths["html"].write_text(html.render(result), encoding="utf-8")
    return paths
