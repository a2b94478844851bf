"""Two stored runs compared figure by figure (`harness compare`, and the nightly run against its
baseline): the typed result the Markdown and HTML pages render."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict

from harness.compare.runs import StoredRun
from harness.compare.stats import MetricComparison, compare_values
from harness.measure.sample_file import SampleTable
from harness.spec.compare import RATE_METRICS, CompareSpec
from harness.verdict.labels import Label, worst
from harness.verdict.rates import Count, RateComparison, compare_rate


class RunSide(BaseModel):
    model_config = ConfigDict(extra="ignore")
    path: str
    label: str
    outcome: str
    requests: int
    errors: int


class Comparison(BaseModel):
    """B (the candidate) against A (the baseline)."""

    model_config = ConfigDict(extra="ignore")
    a: RunSide
    b: RunSide
    min_effect_pct: float
    min_effect_pp: float
    level: float
    metrics: list[MetricComparison]
    rates: list[RateComparison]
    blocking: list[str]
    label: Label
    verdict: Literal["passed", "failed"]
    reasons: list[str]


def _side(run: StoredRun) -> RunSide:
    n = len(run.samples)
    ok = int(run.samples.ok.sum())
    return RunSide(
        path=str(run.path), label=run.label, outcome=run.outcome, requests=n, errors=n - ok
    )


def rate_count(samples: SampleTable, metric: str) -> Count | None:
    """k of n behind a rate, counted as the load summary counts it: errors of all requests, a
    served-by value of the requests answered with a status. None: no answer said who served it
    (a stack without the header)."""
    if metric == "error_rate":
        return Count(int((~samples.ok).sum()), len(samples))
    answered = samples.numbers["status"] > 0
    served = [
        (v or "").lower() for v, yes in zip(samples.text["served_by"], answered, strict=True) if yes
    ]
    if served and not any(served):
        return None
    return Count(served.count(metric.removesuffix("_share")), len(served))


def compare_runs(a: StoredRun, b: StoredRun, spec: CompareSpec, seed: int = 0) -> Comparison:
    d = spec.min_effect_pct / 100.0
    metrics = [
        compare_values(
            m,
            a.samples.values(m),
            b.samples.values(m),
            min_effect=d,
            level=spec.level,
            resamples=spec.resamples,
            seed=seed,
            decide_on=spec.statistics,
        )
        for m in spec.metrics
        if m not in RATE_METRICS
    ]
    rates = [
        compare_rate(
            m,
            rate_count(a.samples, m),
            rate_count(b.samples, m),
            min_effect_pp=spec.min_effect_pp,
            level=spec.level,
        )
        for m in spec.metrics
        if m in RATE_METRICS
    ]
    labels = {m.metric: m.label for m in metrics} | {r.metric: r.label for r in rates}
    blocking = [m for m, lab in labels.items() if lab == "regressed" and m in spec.blocking]
    reasons = [f"{m.metric}: {m.label}: {m.reason}" for m in metrics]
    reasons += [r.reason for r in rates]
    if blocking:
        how = []
        if any(m not in RATE_METRICS for m in blocking):
            how.append(f"more than {spec.min_effect_pct:g}% slower")
        if any(m in RATE_METRICS for m in blocking):
            how.append(f"more than {spec.min_effect_pp:g} pp higher")
        reasons.insert(
            0,
            f"blocking regression of {', '.join(blocking)} "
            f"({', '.join(how)}, {spec.level:.0%} sure)",
        )
    return Comparison(
        a=_side(a),
        b=_side(b),
        min_effect_pct=spec.min_effect_pct,
        min_effect_pp=spec.min_effect_pp,
        level=spec.level,
        metrics=metrics,
        rates=rates,
        blocking=blocking,
        label=worst(labels.values()),
        verdict="failed" if blocking else "passed",
        reasons=reasons,
    )


def spec_of(run: StoredRun) -> CompareSpec:
    """The compare section of the profile the run was made with; the defaults otherwise."""
    section = run.gate_spec.get("compare")
    return CompareSpec.model_validate(section) if isinstance(section, dict) else CompareSpec()
