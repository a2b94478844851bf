"""Regression against history: this run's key figures beside the median of earlier passing runs.

A nightly job runs the same gate every night; a figure that got worse than its recent median by
more than the profile allows is a regression, reported with both numbers and the threshold.
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.load.report import LoadReport
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


class HistoryRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")  # stored: lenient

    name: str
    started_at: str
    git_sha: str | None = None
    outcome: str
    metrics: dict[str, float | None] = Field(default_factory=dict)
    # Which stack the figures are of ("<stack name> (<provider>)"): only like is compared.
    stack: str | None = None
    # The run's figures regressed against the history: kept for the trend, never a baseline (so
    # a slow regression cannot become the new normal).
    regressed: bool = False
    # In a report's trend: the run the report is of (not stored in the history file).
    current: bool = False


def same_stack(history: list[HistoryRecord], stack: str | None) -> list[HistoryRecord]:
    """The records of runs on `stack` (records written before stacks were recorded count too)."""
    return [r for r in history if r.stack is None or stack is None or r.stack == stack]


def key_metrics(load_report: LoadReport | None) -> dict[str, float | None]:
    """The KEY_METRICS of a load report."""
    if load_report is None:
        return dict.fromkeys(KEY_METRICS)
    return {name: load_report.summary.metric(name) for name in KEY_METRICS}


def read_history(path: Path) -> list[HistoryRecord]:
    """Records of earlier runs, oldest first; unreadable lines are skipped, not fatal."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(HistoryRecord.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            continue
    return records


def append_history(path: Path, record: HistoryRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(record.model_dump_json(exclude={"current"}) + "\n")


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
    baseline_runs = [r for r in history if r.outcome == "passed" and not r.regressed][-window:]
    if len(baseline_runs) < min_runs:
        return CheckResult(
            name=name, category="regression", outcome="skipped",
            reasons=[f"{len(baseline_runs)} earlier passing runs without a regression in the "
                     "history, "
                     f"{min_runs} needed for a baseline"],
        )  # fmt: skip
    regressions: list[str] = []
    notes: list[str] = []
    measured: dict[str, float | int | str | None] = {"baseline_runs": len(baseline_runs)}
    for metric, better in KEY_METRICS.items():
        now = current.get(metric)
        past = [v for r in baseline_runs if (v := r.metrics.get(metric)) is not None]
        if now is None or not past:
            continue
        base = statistics.median(past)
        measured[metric] = now
        measured[f"{metric}_baseline"] = round(base, 3)
        if base == 0:
            continue
        change_pct = (now - base) / base * 100.0
        worse_pct = change_pct if better == "lower" else -change_pct
        line = (f"{metric} = {now:.4g} vs median {base:.4g} of the last {len(past)} passing runs "
                f"({change_pct:+.1f}%; allowed {max_regression_pct:g}% worse)")  # fmt: skip
        (regressions if worse_pct > max_regression_pct else notes).append(line)
    if regressions:
        return CheckResult(name=name, category="regression", outcome=outcome_on_regression,
                           reasons=regressions, measured=measured)  # fmt: skip
    return CheckResult(name=name, category="regression", outcome="pass",
                       reasons=notes or ["no comparable figures"], measured=measured)  # fmt: skip


def trend(
    history: list[HistoryRecord], current: HistoryRecord, last: int = 30
) -> list[HistoryRecord]:
    """The last `last` runs of the history and this one (marked `current`), oldest first: what a
    nightly report plots to show where the figures are going."""
    # Its outcome is not known yet while the run goes on.
    return [*history[-last:], current.model_copy(update={"outcome": "this run", "current": True})]
