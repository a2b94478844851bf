"""Regression against history: this run's key figures beside the median of earlier passing runs
(the gate's `--history`), and what of the nightly's history may be its baseline.

A nightly job runs the same gate every night; a figure that got worse than its recent median by
more than the profile allows is a regression, reported with both numbers and the threshold. The
nightly's own comparison with its pinned baseline is `harness compare`'s (its labels:
`labels.py`, `rates.py`); here is what a night's record says of it and which runs may be pinned.
The records themselves are stored by `harness/measure/history.py`.
"""

from __future__ import annotations

import statistics
from typing import Literal

from harness.measure.history import HistoryRecord
from harness.verdict.checks import CheckResult

# Figure -> which direction is better.
KEY_METRICS: dict[str, Literal["lower", "higher"]] = {
    "ttft_p50_ms": "lower",
    "ttft_p95_ms": "lower",
    "itl_p95_ms": "lower",
    "tpot_p95_ms": "lower",
    "e2e_p95_ms": "lower",
    "output_tokens_per_second": "higher",
}


def accepted(outcome: str, regressed: bool) -> bool:
    """Whether a run may be a baseline (of the gate's median, or the nightly's pinned or
    "previous" run): its gate passed and it did not regress."""
    return outcome == "passed" and not regressed


def is_accepted(record: HistoryRecord) -> bool:
    """As judged when it was recorded; a record that did not say (the gate's, before the one
    history model), by the same rule."""
    return (
        record.accepted
        if record.accepted is not None
        else accepted(record.outcome, record.regressed)
    )


def compare_with_history(
    current: dict[str, float | None],
    history: list[HistoryRecord],
    *,
    window: int,
    min_runs: int,
    max_regression_pct: float,
    outcome_on_regression: Literal["warn", "fail"],
) -> CheckResult:
    """One check listing every figure that regressed beyond the allowance, never only the first."""
    name = "no regression against history"
    baseline_runs = [r for r in history if is_accepted(r)][-window:]
    if len(baseline_runs) < min_runs:
        return CheckResult(
            name=name,
            category="regression",
            outcome="skipped",
            reasons=[
                f"{len(baseline_runs)} earlier passing runs without a regression in the "
                "history, "
                f"{min_runs} needed for a baseline"
            ],
        )
    regressions: list[str] = []
    notes: list[str] = []
    measured: dict[str, float | int | str | None] = {"baseline_runs": len(baseline_runs)}
    for metric, better in KEY_METRICS.items():
        now = current.get(metric)
        past = [v for r in baseline_runs if (v := r.figures.get(metric)) is not None]
        if now is None or not past:
            continue
        base = statistics.median(past)
        measured[metric] = now
        measured[f"{metric}_baseline"] = round(base, 3)
        if base == 0:
            continue
        change_pct = (now - base) / base * 100.0
        worse_pct = change_pct if better == "lower" else -change_pct
        line = (
            f"{metric} = {now:.4g} vs median {base:.4g} of the last {len(past)} passing runs "
            f"({change_pct:+.1f}%; allowed {max_regression_pct:g}% worse)"
        )
        (regressions if worse_pct > max_regression_pct else notes).append(line)
    if regressions:
        return CheckResult(
            name=name,
            category="regression",
            outcome=outcome_on_regression,
            reasons=regressions,
            measured=measured,
        )
    return CheckResult(
        name=name,
        category="regression",
        outcome="pass",
        reasons=notes or ["no comparable figures"],
        measured=measured,
    )


NO_BASELINE = "no baseline"


def night_label(vs_baseline: str | None) -> str:
    """A nightly record's label: its comparison's with the pinned baseline, if there was one."""
    return vs_baseline if vs_baseline is not None else NO_BASELINE


def pin_refusal(outcome: str, allow_failed_gate: bool, recorded: list[HistoryRecord]) -> str | None:
    """Why a run may not be pinned as the nightly baseline, by its gate outcome and its records
    in the history (`recorded`), or None. A failed gate only with `allow_failed_gate`: a failed
    experiment says nothing against the load's samples."""
    if outcome != "passed" and not (allow_failed_gate and outcome == "failed"):
        return (
            f"its gate outcome is {outcome!r}; only a passed "
            "run can be the baseline (a failed one with --allow-failed-gate)"
        )
    for r in recorded:
        if r.regressed:
            return (
                f"the history recorded it as regressed "
                f"({', '.join(r.blocking)}) against the baseline of its night"
            )
    return None


def pin_refusal_against(blocking: list[str], reasons: list[str]) -> str | None:
    """Why a run may not replace the pinned baseline, by its comparison with it, or None."""
    if blocking:
        return f"regressed against the current baseline ({'; '.join(reasons[:2])})"
    return None
