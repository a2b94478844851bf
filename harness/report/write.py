"""Write every rendering of a report into a folder; safe to call again as the run goes on."""

from __future__ import annotations

from pathlib import Path

from harness.report.model import RunReport
from harness.report.render_html import render_html
from harness.report.render_text import render_junit, render_markdown


def _write(path: Path, text: str) -> None:
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(text)
    tmp.replace(path)


def write_reports(report: RunReport, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "json": out_dir / "report.json",
        "junit": out_dir / "junit.xml",
        "markdown": out_dir / "summary.md",
        "html": out_dir / "report.html",
    }
    _write(paths["json"], report.model_dump_json(indent=2) + "\n")
    _write(paths["junit"], render_junit(report))
    _write(paths["markdown"], render_markdown(report))
    _write(paths["html"], render_html(report))
    return paths
