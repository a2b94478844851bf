"""One measured load run: Locust -> samples -> summary -> server view -> report. The CLI, the
capacity search and (later) the gate pipeline all call `measure_load`."""

from __future__ import annotations

from pathlib import Path

from harness.load.report import LoadReport, git_sha, host_info, now_iso, outcome_of
from harness.load.runner import Progress, run_load
from harness.load.target import Target
from harness.measure.server import ServerView, collect_view
from harness.measure.summary import summarize
from harness.spec.load import LoadSpec


def measure_load(
    spec: LoadSpec,
    target: Target,
    run_dir: Path,
    progress: Progress | None = None,
    server_view: bool = True,
) -> LoadReport:
    run = run_load(spec, target, run_dir, progress)
    summary = summarize(run.samples, run.context)
    view: ServerView | None = None
    if server_view and target.prometheus:
        end = summary.window.start_s + summary.window.span_s
        view = collect_view(target.prometheus, summary.window.start_s, end)
    report = LoadReport(
        git_sha=git_sha(),
        created_at=now_iso(),
        host=host_info(),
        config=spec.model_dump(mode="json"),
        target=target.redacted(),
        model=run.model,
        outcome=outcome_of(summary),
        summary=summary,
        server=view,
        samples_dir=str(run_dir / "samples"),
        locust_log=str(run.locust_log),
    )
    report.write(run_dir / "report.json")
    return report
