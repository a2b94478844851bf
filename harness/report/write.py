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


def render_files(report: RunReport, out_dir: Path) -> list[Path]:
    """junit.xml, summary.md and report.html of a report (its report.json is left as it is)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / "junit.xml": render_junit(report),
        out_dir / "summary.md": render_markdown(report),
        out_dir / "report.html": render_html(report),
    }
    for path, text in files.items():
        _write(path, text)
    return list(files)


def write_reports(report: RunReport, out_dir: Path) -> dict[str, Path]:
    out_dir.mkdir(parents=True, exist_ok=True)
    _write(out_dir / "report.json", report.model_dump_json(indent=2) + "\n")
    render_files(report, out_dir)
    return {
        "json": out_dir / "report.json",
        "junit": out_dir / "junit.xml",
        "markdown": out_dir / "summary.md",
        "html": out_dir / "report.html",
    }
