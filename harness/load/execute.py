"""One measured load run: Locust -> samples -> summary -> server view -> report. The CLI, the
capacity search and the gate pipeline all call `measure_load`.

A run stopped by Ctrl-C or SIGTERM still leaves its report: the samples recorded so far are
summarized, `report.json` is written with outcome "interrupted", and `LoadInterrupted` (a
KeyboardInterrupt, so callers that know nothing of it still stop and clean up) carries it out.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from harness.clients.models import Target
from harness.data.progress import Progress
from harness.load.report import LoadReport, RunJudge
from harness.load.runner import run_load
from harness.load.workload_view import build_view, counter_deltas, opted_in, read_counters
from harness.measure.breakdown import Agreement, TtftBreakdown
from harness.measure.sample_file import SAMPLE_FILE, write_sample_file
from harness.measure.server import ServerView, collect_view
from harness.measure.server_timings import run_breakdown
from harness.measure.summary import summarize
from harness.provenance import git_sha, host_info, iso_at
from harness.spec.load import LoadSpec


class LoadInterrupted(KeyboardInterrupt):
    """A load run stopped by Ctrl-C or SIGTERM; its partial report is already written at `path`."""

    def __init__(self, report: LoadReport, path: Path) -> None:
        super().__init__(f"load run interrupted; partial report in {path}")
        self.report = report
        self.path = path


def measure_load(
    spec: LoadSpec,
    target: Target,
    run_dir: Path,
    progress: Progress | None = None,
    *,
    judge: RunJudge,
    server_view: bool = True,
    default_checks: bool = True,
    master_bind: str | None = None,
    judge_breakdown: Callable[[TtftBreakdown], Agreement] | None = None,
) -> LoadReport:
    """Run, summarize, judge and write `run_dir/report.json`; raise LoadInterrupted after writing
    it when the run was stopped early. The report's config is the spec as run: with the seed drawn
    for it when the spec had none. `judge` (from the verdict, passed in by the command) judges the
    SLOs and, unless `default_checks=False`, the default checks (error rate, achieved vs sent),
    and gives the run's outcome. `judge_breakdown` (from the verdict too) says whether the
    client's TTFT and the server's agree; it only ever warns."""
    cache_url = (target.tokenizer_url or target.url) if opted_in(spec) else None
    before = read_counters(cache_url) if cache_url else None
    run = run_load(
        spec, target, run_dir, progress, default_checks=default_checks, master_bind=master_bind
    )
    summary = summarize(run.samples, run.context)
    checks, outcome = judge(run.samples, summary, run.context)
    workload = None
    if cache_url:
        after = read_counters(cache_url)
        workload = build_view(run.samples, counter_deltas(cache_url, before, after))
    view: ServerView | None = None
    # An interrupted run skips the Prometheus queries: whoever pressed Ctrl-C wants out now.
    prometheus = target.prometheus if server_view and not run.interrupted else None
    start, end = summary.window.start_s, summary.window.start_s + summary.window.span_s
    if prometheus:
        view = collect_view(prometheus, start, end, headers=target.prometheus_headers)
    breakdown = run_breakdown(
        run.samples,
        start,
        end,
        prometheus,
        target.prometheus_headers,
        streamed=run.spec.workload.stream,
    )
    if breakdown is not None and judge_breakdown is not None:
        breakdown.agreement = judge_breakdown(breakdown)
    report = LoadReport(
        git_sha=git_sha(),
        name=run.spec.name,
        started_at=iso_at(summary.window.start_s),
        host=host_info(),
        config=run.spec.model_dump(mode="json"),
        target=target.redacted(),
        model=run.model,
        outcome="interrupted" if run.interrupted else outcome,
        summary=summary,
        checks=checks,
        server=view,
        ttft_breakdown=breakdown,
        workload=workload,
        samples_dir=str(run.run_dir / "samples"),
        locust_log=str(run.locust_log),
        limits=run.limits,
    )
    path = run.run_dir / "report.json"
    report.write(path)
    write_sample_file(run.run_dir / SAMPLE_FILE, run.samples)  # kept for `harness compare`
    if run.interrupted:
        raise LoadInterrupted(report, path)
    return report
