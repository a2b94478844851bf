"""Capacity search: the highest open-loop arrival rate at which every SLO still holds.

Double the rate from `start_rps` until a step fails, then bisect between the last pass and the
first fail until they are within `precision` of each other, in at most `max_steps` runs. A step
whose generator could not keep up ends the search: beyond it the numbers would be about the
client, not the stack, and the result says so (`bounded_by: generator`). A search stopped by
Ctrl-C or SIGTERM returns the steps done so far (the last one marked interrupted) with
`outcome: interrupted`, so the caller can still write them down.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
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


class CapacityResult(BaseModel):
    model_config = ConfigDict(extra="ignore")
    schema_version: int = 1
    kind: Literal["capacity"] = "capacity"
    harness_version: str = __version__
    outcome: Literal["completed", "interrupted"] = "completed"
    slos: list[str]
    capacity_rps: float | None  # None: not even the lowest rate tried passed
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
    return CapacityStep(
        rate_rps=rate,
        outcome=report.outcome,
        reasons=reasons,
        achieved_rate_rps=s.generator.achieved_rate_rps,
        ttft_p95_ms=s.latency.ttft_ms.p95,
        e2e_p95_ms=s.latency.e2e_ms.p95,
        error_rate=s.counts.error_rate,
        report=path,
    )


def search(
    run_at: Callable[[float], CapacityStep], plan: SearchPlan, slos: list[str]
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
        else:
            worst = rate if worst is None else min(worst, rate)
        if worst is None:
            if rate >= plan.max_rps:
                bound = "max_rate"
                break
            rate = min(rate * 2, plan.max_rps)
        elif best is None:
            rate /= 2
            if rate < plan.min_rps:
                bound = "min_rate"
                break
        else:
            if (worst - best) / best <= plan.precision:
                bound = "slo"
                break
            rate = (best + worst) / 2
    return CapacityResult(
        outcome="interrupted" if bound == "interrupted" else "completed",
        slos=slos,
        capacity_rps=best,
        bounded_by=bound,
        explanation=_explain(bound, best, worst, steps),
        steps=steps,
    )


def _explain(
    bound: Bound, best: float | None, worst: float | None, steps: list[CapacityStep]
) -> str:
    b = "none" if best is None else f"{best:.3g} req/s"
    if bound == "slo":
        return f"capacity {b}: the SLOs hold there and fail at {worst:.3g} req/s"
    if bound == "generator":
        last = steps[-1]
        return (
            f"capacity at least {b}: at {last.rate_rps:.3g} req/s the load generator fell behind "
            f"({'; '.join(last.reasons[:2])}); add --processes to search higher"
        )
    if bound == "max_rate":
        return f"capacity at least {b}: the SLOs still held at the --max-rate limit"
    if bound == "min_rate":
        return "no capacity: the SLOs fail even at the lowest rate tried"
    if bound == "interrupted":
        done = sum(1 for s in steps if s.outcome != "interrupted")
        so_far = f"capacity at least {b} so far" if best is not None else "no rate passed so far"
        upper = f", the SLOs fail at {worst:.3g} req/s" if worst is not None else ""
        return f"search interrupted after {done} complete step(s): {so_far}{upper}"
    span = f"between {b} and {worst:.3g} req/s" if worst is not None else f"at least {b}"
    return f"capacity {span} (the step budget ran out before the search converged)"
