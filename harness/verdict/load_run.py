"""`harness load`'s own checks: the run's aggregate SLOs and the default checks, judged with the
gate's judge (`judge_slo`): percentiles with order-statistic bounds, shares and error rates with
Clopper-Pearson bounds, other figures on the estimate, each with its n, estimate and bounds.

A `harness load` run is one look at its sample, so each check is judged at `RUN_ALPHA` (0.05: each
one-sided bound covers with 95% confidence). An SLO the user gave that the sample cannot decide is
inconclusive, and an inconclusive SLO has not passed: the run's outcome is then "inconclusive"
(exit 1). The default checks are the harness's guards, not claims the user asked for: one that
fails fails the run, one left undecided is reported inconclusive with the sample it would need
and does not decide the outcome (small runs decide little: `error_rate<=0.01` with no errors
needs 299 requests before its upper bound is under 1%, a p95 needs 59 for an upper bound at all).

A workload that repeats prompts at temperature 0 (`ctx.cache_repeats`) adds one more default
check: the cache's hits against the answers its repeats should get from it (`cache_hits.py`).

The capacity search judges its steps on the estimates (`alpha=None`): it compares rates with each
other on short steps, where bounds would leave every step undecided. A search for a goodput target
(`harness capacity --goodput-target`) judges its steps with `run_verdict` instead: the goodput
share against the target with its bounds, no default checks, so a step passes, fails or stays
inconclusive on that share alone.

Every judge here also sets the run's goodput bounds (`goodput.py`), at `RUN_ALPHA`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from harness.data.samples import Sample
from harness.load.report import LoadCheck, Outcome
from harness.measure.summary import LoadSummary, RunContext
from harness.spec.slo import DEFAULT_CHECKS, MIN_SENT_FOR_ACHIEVED_CHECK, Slo, parse_slo, parse_slos
from harness.verdict.cache_hits import judge_run_cache
from harness.verdict.goodput import bound_goodput
from harness.verdict.slo import SloJudgement, judge_estimate, judge_slo
from harness.verdict.validity import judge_validity

RUN_ALPHA = 0.05
ACHIEVED = "achieved_ratio"


def _check(j: SloJudgement, alpha: float | None, default: bool = False) -> LoadCheck:
    bounded = j.lower is not None or j.upper is not None
    return LoadCheck(
        expr=j.expr,
        decision=j.decision,
        passed=j.decision == "pass",
        reason=j.reason,
        n=j.n,
        estimate=j.estimate,
        lower=j.lower,
        upper=j.upper,
        alpha=alpha if bounded else None,
        samples_needed=j.samples_needed,
        default=default,
    )


def kept_up_unjudged(summary: LoadSummary) -> str | None:
    """Why achieved_ratio cannot say whether the stack kept up; None when it can."""
    g = summary.generator
    if g.mode != "open" or g.achieved_ratio is None:
        return "closed loop: no offered rate"
    if g.sent < MIN_SENT_FOR_ACHIEVED_CHECK:
        return (
            f"{ACHIEVED} = {g.achieved_ratio:.3g} not judged: {g.sent} requests sent, fewer than "
            f"{MIN_SENT_FOR_ACHIEVED_CHECK} (one request finishing after the window would move "
            "it by more than the 10% allowed)"
        )
    return None


def judge_kept_up(slo: Slo, summary: LoadSummary) -> SloJudgement:
    """achieved_ratio against its threshold, on the estimate (whether this run's stack kept up,
    not a claim about a population), with the figures it is made of."""
    j = judge_estimate(slo, summary)
    g = summary.generator
    figures = (
        f"; over the {summary.window.duration_s:g} s schedule window {g.achieved_rate_rps:.2f} "
        f"req/s achieved of {g.sent_rate_rps:.2f} req/s sent"
        + (f" ({g.offered_rate_rps:.2f} offered)" if g.offered_rate_rps is not None else "")
    )
    return replace(j, reason=j.reason + figures)


def judge_run(
    samples: Sequence[Sample],
    summary: LoadSummary,
    ctx: RunContext,
    alpha: float | None = RUN_ALPHA,
) -> list[LoadCheck]:
    """The run's aggregate SLOs, then (unless turned off) the default checks a user SLO on the
    same figure does not replace. `alpha` None: every figure on its estimate (capacity steps)."""

    def judge(slo: Slo) -> SloJudgement:
        if alpha is None:
            return judge_estimate(slo, summary)
        return judge_slo(slo, samples, summary, alpha)

    slos = parse_slos(ctx.slos)
    # Per-request SLOs define goodput (gate it with e.g. "goodput>=0.95"); aggregates are judged.
    out = [_check(judge(slo), alpha) for slo in slos if slo.scope == "aggregate"]
    if not ctx.default_checks:
        return out
    taken = {s.metric for s in slos}
    for expr, why in DEFAULT_CHECKS:
        slo = parse_slo(expr)
        if slo.metric in taken:
            continue
        if slo.metric == ACHIEVED:
            if not ctx.open_loop or ctx.interrupted_after_s is not None:
                continue  # no schedule to compare with, or only part of one
            unjudged = kept_up_unjudged(summary)
            if unjudged is not None:  # too few requests to say: undecided, never a pass
                out.append(
                    LoadCheck(
                        expr=slo.expr,
                        decision="inconclusive",
                        passed=False,
                        reason=unjudged,
                        n=summary.generator.sent,
                        estimate=summary.generator.achieved_ratio,
                        default=True,
                    )
                )
                continue
            j = judge_kept_up(slo, summary)
        else:
            j = judge(slo)
        out.append(_check(replace(j, reason=f"{j.reason} (default check: {why})"), alpha, True))
    if ctx.cache_repeats:
        j = judge_run_cache(samples, RUN_ALPHA)
        why = "a workload that repeats prompts is answered from the cache"
        reason = f"response cache under load: {j.reason} (default check: {why})"
        out.append(_check(replace(j, reason=reason), RUN_ALPHA, True))
    return out


def judge_estimates(
    samples: Sequence[Sample], summary: LoadSummary, ctx: RunContext
) -> list[LoadCheck]:
    """`judge_run` on the estimates alone: the capacity search's steps."""
    return judge_run(samples, summary, ctx, alpha=None)


def run_outcome(summary: LoadSummary, checks: Sequence[LoadCheck]) -> Outcome:
    """invalid (the run itself), else failed when a check failed, inconclusive when an SLO the
    user gave could not be decided (it has not passed either), else passed (a default check
    left undecided is reported as such, not gating)."""
    if not summary.validity.valid:
        return "invalid"
    if any(c.decision == "fail" for c in checks):
        return "failed"
    undecided = [c for c in checks if c.decision != "pass" and not c.default]
    return "inconclusive" if undecided else "passed"


def run_verdict(
    samples: Sequence[Sample], summary: LoadSummary, ctx: RunContext
) -> tuple[list[LoadCheck], Outcome]:
    """`harness load`'s judge (`measure_load`'s `judge`): the run's validity (set on its
    summary), its checks and its outcome."""
    summary.validity = judge_validity(summary, ctx)
    summary.goodput = bound_goodput(summary, RUN_ALPHA)
    checks = judge_run(samples, summary, ctx)
    return checks, run_outcome(summary, checks)


def step_verdict(
    samples: Sequence[Sample], summary: LoadSummary, ctx: RunContext
) -> tuple[list[LoadCheck], Outcome]:
    """The capacity search's judge: the step's validity, every figure on its estimate (short
    steps)."""
    summary.validity = judge_validity(summary, ctx)
    summary.goodput = bound_goodput(summary, RUN_ALPHA)
    checks = judge_estimates(samples, summary, ctx)
    return checks, run_outcome(summary, checks)
