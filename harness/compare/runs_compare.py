"""Two stored runs compared figure by figure (`harness compare`, and the nightly run against its
baseline): the typed result the Markdown and HTML pages render."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict
from scipy import stats

from harness.compare.runs import StoredRun
from harness.compare.stats import Label, MetricComparison, compare_values
from harness.spec.compare import CompareSpec


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
    level: float
    metrics: list[MetricComparison]
    blocking: list[str]
    # Fisher's exact test on the error counts (errors are not latencies: no interval label).
    error_rate_p: float | None = None
    label: Label
    verdict: Literal["passed", "failed"]
    reasons: list[str]


def _side(run: StoredRun) -> RunSide:
    n = len(run.samples)
    ok = int(run.samples.ok.sum())
    return RunSide(
        path=str(run.path), label=run.label, outcome=run.outcome, requests=n, errors=n - ok
    )


def overall(labels: list[Label]) -> Label:
    for lab in ("regressed", "improved", "inconclusive"):
        if lab in labels:
            return lab
    return "same"


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
        )
        for m in spec.metrics
    ]
    sa, sb = _side(a), _side(b)
    error_p = None
    if sa.errors or sb.errors:
        table = [[sa.errors, sa.requests - sa.errors], [sb.errors, sb.requests - sb.errors]]
        error_p = float(stats.fisher_exact(table).pvalue)
    blocking = [m.metric for m in metrics if m.metric in spec.blocking and m.label == "regressed"]
    reasons = [f"{m.metric}: {m.label}: {m.reason}" for m in metrics]
    if blocking:
        reasons.insert(
            0,
            f"blocking regression of {', '.join(blocking)} "
            f"(more than {spec.min_effect_pct:g}% slower, {spec.level:.0%} sure)",
        )
    return Comparison(
        a=sa,
        b=sb,
        min_effect_pct=spec.min_effect_pct,
        level=spec.level,
        metrics=metrics,
        blocking=blocking,
        error_rate_p=error_p,
        label=overall([m.label for m in metrics]),
        verdict="failed" if blocking else "passed",
        reasons=reasons,
    )


def spec_of(run: StoredRun) -> CompareSpec:
    """The compare section of the profile the run was made with; the defaults otherwise."""
    section = run.gate_spec.get("compare")
    return CompareSpec.model_validate(section) if isinstance(section, dict) else CompareSpec()
