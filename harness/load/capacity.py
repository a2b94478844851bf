"""Capacity search: the highest open-loop arrival rate at which every SLO still holds, or (with a
goodput target) at which the share of requests meeting every per-request SLO stays above it.

Double the rate from `start_rps` until a step fails, then bisect between the highest pass and the
lowest fail until they are within `precision` of each other, in at most `max_steps` runs. The
answer is that interval in rate space (`interval`): the highest rate shown to pass and the lowest
shown to fail, each with its goodput share and the bound that decided it; the boundary lies
between them. An inconclusive step (its share's bounds straddle the target) narrows nothing: it
is kept inside the interval, the search splits the widest gap left, and the explanation names it.
A step whose generator could not keep up ends the search: beyond it the numbers would be about the
client, not the stack, and the result says so (`bounded_by: generator`). A search stopped by
Ctrl-C or SIGTERM returns the steps done so far (the last one marked interrupted) with
`outcome: interrupted`, so the caller can still write them down. Each step is judged by the
verdict the caller's `run_at` uses (`harness/verdict/load_run.py`); this module only steers.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import pairwise
from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness import __version__
from harness.load.report import LoadReport

StepOutcome = Literal["passed", "failed", "inconclusive", "invalid", "interrupted"]
Bound = Literal["slo", "generator", "max_rate", "min_rate", "steps", "interrupted"]


class CapacityStep(BaseModel):
    model_config = ConfigDict(extra="ignore")
    rate_rps: float
    outcome: StepOutcome
    reasons: list[str]
    achieved_rate_rps: float | None = None
    ttft_p95_ms: float | None = None
    e2e_p95_ms: float | None = None
    error_rate: float | None = None
    report: str | None = None  # path of the step's report.json
    # The step's goodput: requests per second that met every per-request SLO, their share of the
    # requests sent (n) and its bounds at `goodput_confidence` each side.
    goodput_rps: float | None = None
    goodput_share: float | None = None
    goodput_n: int | None = None
    goodput_lower: float | None = None
    goodput_upper: float | None = None
    goodput_confidence: float | None = None


class RateBound(BaseModel):
    """One end of the capacity interval: a rate and what its step showed there."""

    model_config = ConfigDict(extra="ignore")
    rate_rps: float
    goodput_share: float | None = None
    goodput_n: int | None = None
    # The bound that decided the step: the lower one where it passed, the upper where it failed.
    goodput_bound: float | None = None


class CapacityInterval(BaseModel):
    """Where the boundary lies: above `passed` (the highest rate shown to pass) and at or below
    `failed` (the lowest shown to fail); None where no step showed it. Rates between them that
    decided nothing are listed, not used."""

    model_config = ConfigDict(extra="ignore")
    passed: RateBound | None
    failed: RateBound | None
    inconclusive_rps: list[float] = []
    confidence: float | None = None  # of each step's bound, one-sided


class CapacityResult(BaseModel):
    model_config = ConfigDict(extra="ignore")
    schema_version: int = 1
    kind: Literal["capacity"] = "capacity"
    harness_version: str = __version__
    outcome: Literal["completed", "interrupted"] = "completed"
    slos: list[str]
    # The share of requests that must meet every per-request SLO (None: the SLOs alone decide).
    goodput_target: float | None = None
    capacity_rps: float | None  # the highest rate shown to pass; None: none passed
    interval: CapacityInterval | None = None  # None in results written before it was kept
    bounded_by: Bound
    explanation: str
    steps: list[CapacityStep]
    config: dict[str, object] = {}


@dataclass(frozen=True)
class SearchPlan:
    start_rps: float = 1.0
    max_rps: float = 1000.0
    min_rps: float = 0.05
    max_steps: int = 8
    precision: float = 0.1  # stop when (fail - pass) / pass <= this


def step_from_report(rate: float, report: LoadReport, path: str | None = None) -> CapacityStep:
    s = report.summary
    reasons = [c.reason for c in report.checks if not c.passed] + list(s.validity.reasons)
    g = s.goodput
    return CapacityStep(
        rate_rps=rate,
        outcome=report.outcome,
        reasons=reasons,
        achieved_rate_rps=s.generator.achieved_rate_rps,
        ttft_p95_ms=s.latency.ttft_ms.p95,
        e2e_p95_ms=s.latency.e2e_ms.p95,
        error_rate=s.counts.error_rate,
        report=path,
        goodput_rps=s.throughput.goodput_requests_per_second,
        goodput_share=g.share,
        goodput_n=g.n,
        goodput_lower=g.lower,
        goodput_upper=g.upper,
        goodput_confidence=g.confidence,
    )


def search(
    run_at: Callable[[float], CapacityStep],
    plan: SearchPlan,
    slos: list[str],
    goodput_target: float | None = None,
) -> CapacityResult:
    steps: list[CapacityStep] = []
    best: float | None = None  # highest rate that passed
    worst: float | None = None  # lowest rate that failed
    rate = plan.start_rps
    bound: Bound = "steps"
    for _ in range(plan.max_steps):
        try:
            step = run_at(rate)
        except KeyboardInterrupt:  # between or inside steps, without a partial report
            bound = "interrupted"
            break
        steps.append(step)
        if step.outcome == "interrupted":
            bound = "interrupted"
            break
        if step.outcome == "invalid":
            bound = "generator"
            break
        if step.outcome == "passed":
            best = rate if best is None else max(best, rate)
        elif step.outcome == "failed":
            worst = rate if worst is None else min(worst, rate)
        # inconclusive: it narrows nothing; the next rate goes around it
        nxt = _next_rate(plan, [s.rate_rps for s in steps], best, worst)
        if isinstance(nxt, str):
            bound = nxt
            break
        rate = nxt
    interval = _interval(steps, best, worst)
    return CapacityResult(
        outcome="interrupted" if bound == "interrupted" else "completed",
        slos=slos,
        goodput_target=goodput_target,
        capacity_rps=best,
        interval=interval,
        bounded_by=bound,
        explanation=_explain(bound, interval, steps, goodput_target),
        steps=steps,
    )


def _next_rate(
    plan: SearchPlan, tried: list[float], best: float | None, worst: float | None
) -> float | Bound:
    """The next rate to try, or what ends the search."""
    if worst is None:  # nothing failed yet: double the highest rate tried
        top = max(tried)
        return "max_rate" if top >= plan.max_rps else min(top * 2, plan.max_rps)
    if best is None:  # nothing passed yet: halve the lowest
        low = min(tried) / 2
        return "min_rate" if low < plan.min_rps else low
    # Every rate tried after the first pass and fail lies between them (so the fail stays above
    # the pass); those still between decided nothing: split the widest gap they leave.
    points = sorted({best, worst, *(r for r in tried if best < r < worst)})
    width, lo, hi = max(((b - a) / a, a, b) for a, b in pairwise(points))
    return "slo" if width <= plan.precision else (lo + hi) / 2


def _end(step: CapacityStep, passed: bool) -> RateBound:
    return RateBound(
        rate_rps=step.rate_rps,
        goodput_share=step.goodput_share,
        goodput_n=step.goodput_n,
        goodput_bound=step.goodput_lower if passed else step.goodput_upper,
    )


def _interval(
    steps: list[CapacityStep], best: float | None, worst: float | None
) -> CapacityInterval:
    by_rate = {s.rate_rps: s for s in steps}
    lo, hi = best if best is not None else 0.0, worst if worst is not None else float("inf")
    return CapacityInterval(
        passed=_end(by_rate[best], True) if best is not None else None,
        failed=_end(by_rate[worst], False) if worst is not None else None,
        inconclusive_rps=sorted(
            s.rate_rps for s in steps if s.outcome == "inconclusive" and lo < s.rate_rps < hi
        ),
        confidence=next(
            (s.goodput_confidence for s in steps if s.goodput_confidence is not None), None
        ),
    )


def _share(end: RateBound, side: str, conf: float | None) -> str:
    if end.goodput_share is None:
        return ""
    bound = (
        f", {conf:.0%} {side} bound {end.goodput_bound:.1%}"
        if conf is not None and end.goodput_bound is not None
        else ""
    )
    return f" (goodput {end.goodput_share:.1%} of {end.goodput_n}{bound})"


def _explain(
    bound: Bound,
    interval: CapacityInterval,
    steps: list[CapacityStep],
    goodput_target: float | None,
) -> str:
    best, worst = interval.passed, interval.failed
    b = "none" if best is None else f"{best.rate_rps:.4g} req/s"
    what = "the SLOs" if goodput_target is None else f"goodput >= {goodput_target:.0%}"
    holds, fails = ("hold", "fail") if goodput_target is None else ("holds", "fails")
    undecided = (
        f"; inconclusive at {', '.join(f'{r:.4g}' for r in interval.inconclusive_rps)} req/s "
        "(bounds straddling the target: these narrow nothing; longer steps would decide)"
        if interval.inconclusive_rps
        else ""
    )
    if bound == "slo" and best is not None and worst is not None:
        conf = interval.confidence
        return (
            f"capacity between {b}{_share(best, 'lower', conf)} and {worst.rate_rps:.4g} req/s"
            f"{_share(worst, 'upper', conf)}: {what} {holds} at the first and {fails} at the "
            f"second{undecided}"
        )
    if bound == "generator":
        last = steps[-1]
        return (
            f"capacity at least {b}: at {last.rate_rps:.3g} req/s the load generator fell behind "
            f"({'; '.join(last.reasons[:2])}); add --processes to search higher"
        )
    if bound == "max_rate":
        return f"capacity at least {b}: {what} still held at the --max-rate limit{undecided}"
    if bound == "min_rate":
        return f"no capacity: {what} not shown to hold even at the lowest rate tried{undecided}"
    if bound == "interrupted":
        done = sum(1 for s in steps if s.outcome != "interrupted")
        so_far = f"capacity at least {b} so far" if best is not None else "no rate passed so far"
        upper = f", {what} {fails} at {worst.rate_rps:.3g} req/s" if worst is not None else ""
        return f"search interrupted after {done} complete step(s): {so_far}{upper}"
    span = f"between {b} and {worst.rate_rps:.3g} req/s" if worst is not None else f"at least {b}"
    return f"capacity {span} (the step budget ran out before the search converged){undecided}"
