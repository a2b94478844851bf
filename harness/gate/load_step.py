"""The gate's load step: open-loop load at the stack's front door, looked at until every SLO is
decided. Each look runs the profile's load once more and judges the pooled samples of every look
so far; the sequential plan gives each look its share of the error rate, so looking several
times does not make a wrong verdict more likely than the profile's confidence level allows.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path

from harness.data.progress import Progress
from harness.data.samples import Sample, read_samples
from harness.load.execute import measure_load
from harness.load.report import LoadReport
from harness.load.reuse import workload_reuse
from harness.measure.calibration import Calibration, resolve
from harness.measure.server import ServerView, collect_view
from harness.measure.server_timings import run_breakdown
from harness.measure.summary import LoadSummary, RunContext, summarize
from harness.report.model import GateLoadReport, Look
from harness.spec.gate import GateSpec
from harness.spec.load import LoadSpec, OpenLoop
from harness.spec.slo import parse_slo, parse_slos
from harness.stack import RunningStack
from harness.stack.target import from_stack
from harness.verdict.breakdown import agreement_check, judge_agreement
from harness.verdict.cache_hits import cache_hit_check
from harness.verdict.checks import CheckResult, unmet
from harness.verdict.engine import judge_engine
from harness.verdict.goodput import bound_goodput
from harness.verdict.load_checks import (
    PRIMARY,
    judge_all,
    kept_up_check,
    load_outcome,
    slo_check,
    validity_check,
    warn_only,
)
from harness.verdict.load_run import run_verdict
from harness.verdict.sequential import SequentialPlan
from harness.verdict.slo import SloJudgement
from harness.verdict.validity import judge_validity


@dataclass
class GateLoad:
    checks: list[CheckResult]
    report: GateLoadReport
    samples: list[Sample]  # every look's, on their own clocks


def _contiguous(reports: list[LoadReport], looks: list[list[Sample]]) -> list[Sample]:
    """Every look's samples on one clock, each look moved back to where the previous one's
    schedule ended: the pause between looks (Locust starting again) is not the stack's time."""
    out: list[Sample] = []
    t = reports[0].summary.window.start_s
    for report, samples in zip(reports, looks, strict=True):
        shift = report.summary.window.start_s - t
        out += [
            replace(
                s,
                sent_s=s.sent_s - shift,
                intended_s=None if s.intended_s is None else s.intended_s - shift,
            )
            for s in samples
        ]
        t += report.summary.window.duration_s
    return out


def _pooled_summary(
    spec: LoadSpec, reports: list[LoadReport], samples: list[Sample]
) -> LoadSummary:
    """The summary of every look's samples together, as if they were one run."""
    first = reports[0].summary
    gens = [r.summary.generator for r in reports]
    expected = [g.expected_requests for g in gens if g.expected_requests is not None]
    ctx = RunContext(
        start_s=first.window.start_s,
        duration_s=sum(r.summary.window.duration_s for r in reports),
        open_loop=isinstance(spec.load, OpenLoop),
        arrival=first.generator.arrival,
        expected_requests=sum(expected) if expected else None,
        max_send_lag_ms=spec.load.max_send_lag_ms if isinstance(spec.load, OpenLoop) else 50.0,
        slos=spec.slos,
        workers_expected=0,  # each look's workers were accounted for in its own validity
    )
    pooled = summarize(samples, ctx)
    pooled.validity = judge_validity(pooled, ctx)
    return pooled


def max_looks(gate: GateSpec) -> int:
    assert gate.load is not None
    extra = gate.confidence.max_duration_s / gate.load.duration_s
    return max(1, math.floor(extra + 1e-9))


def engine_checks(
    gate: GateSpec,
    stack: RunningStack,
    spec: LoadSpec,
    samples: list[Sample],
    view: ServerView | None,
) -> list[CheckResult]:
    """The model servers' state over the load window (preemptions, KV cache, queue, prefix
    cache), each server judged by what its kind is known to export. An external stack's pools
    count only where its spec names their kind."""
    s = stack.spec
    kinds = {
        pool: p.server.kind
        for pool, p in s.pools().items()
        if s.external is None or pool in s.model_fields_set
    }
    return judge_engine(
        view,
        kinds,
        gate.policy.engine,
        samples,
        workload_reuse(spec, samples),
        alpha=1 - gate.confidence.level,
        inconclusive_is=gate.confidence.inconclusive_is,
    )


def run_gate_load(
    gate: GateSpec,
    stack: RunningStack,
    run_dir: Path,
    progress: Progress,
    calibration: Calibration | None = None,
) -> GateLoad:
    """Run the profile's load, look after look, until every SLO is decided or time is up.
    SLOs relative to the calibration are made absolute first (both forms are in the reasons)."""
    assert gate.load is not None
    written = tuple(dict.fromkeys((*gate.load.slos, *gate.slos)))  # keep order, drop repeats
    # The absolute form as the SLO names itself (its `expr`) -> the form the profile wrote.
    absolute = {parse_slo(resolve(e, calibration)).expr: e for e in written}
    exprs = tuple(absolute)
    spec = gate.load.model_copy(update={"slos": exprs})
    slos = parse_slos(exprs)
    plan = SequentialPlan(alpha=1 - gate.confidence.level, max_looks=max_looks(gate))
    no_served_by = stack.lacks("served_by")  # who served is read from the gateway's header
    target = from_stack(stack)
    reports: list[LoadReport] = []
    per_look: list[list[Sample]] = []
    samples: list[Sample] = []
    decided: dict[str, SloJudgement] = {}
    latest: dict[str, SloJudgement] = {}
    looks: list[Look] = []
    summary: LoadSummary | None = None
    for k in range(1, plan.max_looks + 1):
        look_dir = run_dir if plan.max_looks == 1 else run_dir / f"look-{k}"
        # Each look's own report.json is judged as `harness load` judges a run; the gate's
        # verdict is the pooled one below. The server's view is read once, over every look,
        # after the last (each read waits for the scrape after its window: 2 s a look).
        report = measure_load(
            spec,
            target,
            look_dir,
            progress,
            judge=run_verdict,
            server_view=plan.max_looks == 1,
            judge_breakdown=judge_agreement,
        )
        reports.append(report)
        per_look.append(read_samples(Path(report.samples_dir)))
        samples = _contiguous(reports, per_look)
        summary = _pooled_summary(spec, reports, samples)
        summary.goodput = bound_goodput(summary, 1 - gate.confidence.level)
        alpha = plan.alpha_at(k)
        judged = judge_all(gate, slos, samples, summary, alpha, served_by=no_served_by is None)
        for name, j in judged.items():
            latest[name] = j
            if name not in decided and j.decision != "inconclusive":
                decided[name] = j
        undecided = [n for n in latest if n not in decided]
        # Only an SLO that gates keeps the load going: a warn-only one is judged on the samples
        # the others needed (a p99 bound alone would take every look, every run).
        gating = [n for n in undecided if not warn_only(n, gate, absolute)]
        looks.append(
            Look(
                look=k,
                duration_s=round(summary.window.duration_s, 2),
                requests=len(samples),
                alpha=alpha,
                undecided=undecided,
            )
        )
        if not report.summary.validity.valid or not gating or k == plan.max_looks:
            break
        progress(
            f"look {k}: {len(samples)} requests; undecided: {', '.join(gating)}; "
            f"running the load again ({spec.duration_s:g} s, look {k + 1} of at most "
            f"{plan.max_looks})"
        )
    assert summary is not None
    checks = [validity_check(gate, reports, summary), kept_up_check(summary)]
    checks += [
        slo_check(name, decided.get(name, j), gate, len(looks), absolute)
        for name, j in latest.items()
    ]
    if no_served_by is not None:
        checks.append(unmet(PRIMARY, "slo", no_served_by))
    # Judged once, on every look (each on its own: a look draws its own repeated prompts).
    checks.append(cache_hit_check(gate, per_look, 1 - gate.confidence.level, stack.lacks("cache")))
    # The pooled report's outcome is the load step's checks', not the last look's own; those
    # checks are the run report's, so none are copied here.
    server, breakdown = reports[-1].server, reports[-1].ttft_breakdown
    # On the wall clock (the pooled summary's clock closes the gaps between looks).
    first, last = reports[0].summary.window, reports[-1].summary.window
    if plan.max_looks > 1 and target.prometheus:
        server = collect_view(
            target.prometheus,
            first.start_s,
            last.start_s + last.span_s,
            headers=target.prometheus_headers,
        )
    if plan.max_looks > 1:  # each look's went without the server's histograms
        breakdown = run_breakdown(
            [s for look in per_look for s in look],
            first.start_s,
            last.start_s + last.span_s,
            target.prometheus,
            target.prometheus_headers,
            streamed=spec.workload.stream,
        )
        if breakdown is not None:
            breakdown.agreement = judge_agreement(breakdown)
    checks.append(agreement_check(breakdown))
    checks += engine_checks(gate, stack, spec, samples, server)
    pooled = GateLoadReport(
        **reports[-1].model_dump(
            exclude={
                "summary",
                "samples_dir",
                "outcome",
                "checks",
                "started_at",
                "server",
                "ttft_breakdown",
            }
        ),
        started_at=reports[0].started_at,  # the first look's: the load began then
        server=server,
        ttft_breakdown=breakdown,
        summary=summary,
        samples_dir=str(run_dir),
        looks=looks,
        outcome=load_outcome(reports, checks),
    )
    return GateLoad(checks, pooled, [s for look in per_look for s in look])
