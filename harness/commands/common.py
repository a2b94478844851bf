"""What every command shares: error lines on stderr and a gate's outcome on the console."""

from __future__ import annotations

from typing import TYPE_CHECKING

import typer

if TYPE_CHECKING:
    from harness.gate.pipeline import GateRun


def err(msg: str) -> None:
    typer.echo(msg, err=True)


def print_outcome(run: GateRun, label: str) -> None:
    report = run.report
    typer.echo("")
    typer.echo(
        f"{label} {report.outcome.upper()} in {report.duration_s:.1f}s: "
        + ", ".join(f"{n} {k}" for k, n in sorted(report.counts().items()))
    )
    for c in report.checks:
        if c.outcome in ("fail", "error", "warn"):
            typer.echo(f"  {c.outcome.upper():5} {c.name}: {'; '.join(c.reasons)}")
    for e in report.errors:
        typer.echo(f"  ERROR {e}")
    typer.echo(f"reports: {run.paths['html']} (also report.json, junit.xml, summary.md)")
