"""After a nightly gate run: compare it with the pinned baseline and the last accepted run,
append it to the history, find change points, write the trend page, and say whether it blocks.

Also `harness baseline set`: pin a run as the baseline, refusing one that failed its gate or
regressed (against the current baseline, or as the history recorded it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.compare.change_points import change_points
from harness.compare.runs import StoredRun, load_run
from harness.compare.runs_compare import Comparison, compare_runs
from harness.errors import HarnessError
from harness.measure.history import (
    HistoryRecord,
    PinnedBaseline,
    append_history,
    baseline_dir,
    figures_of_samples,
    history_file,
    keep_run,
    kept_run,
    pin,
    pinned,
    read_folder,
)
from harness.report.compare_page import write_comparison
from harness.report.trend_page import write_trend
from harness.spec.compare import CompareSpec
from harness.verdict.baseline import (
    accepted,
    is_accepted,
    night_label,
    pin_refusal,
    pin_refusal_against,
)


class BaselineRefused(HarnessError):
    """The run may not become the baseline (it failed, or it regressed)."""


@dataclass
class NightlyResult:
    record: HistoryRecord
    baseline: Comparison | None
    previous: Comparison | None
    change_points: dict[str, list[int]]
    pinned: PinnedBaseline | None
    lines: list[str] = field(default_factory=list)

    @property
    def blocking(self) -> bool:
        return bool(self.record.blocking)


def set_baseline(
    folder: Path, run: StoredRun, spec: CompareSpec, why: str, allow_failed_gate: bool = False
) -> PinnedBaseline:
    """Pin `run` as the baseline of `folder`, unless `pin_refusal` or `pin_refusal_against` the
    current baseline refuses it."""
    recorded = [r for r in read_folder(folder) if r.run == run.path.name]
    why_not = pin_refusal(run.outcome, allow_failed_gate, recorded)
    if why_not is None and (
        pinned(folder) is not None and run.path.resolve() != baseline_dir(folder).resolve()
    ):
        c = compare_runs(load_run(baseline_dir(folder)), run, spec)
        why_not = pin_refusal_against(c.blocking, c.reasons)
    if why_not is not None:
        raise BaselineRefused(f"{run.path}: {why_not}")
    return pin(folder, run, why)


def _last_accepted(folder: Path, history: list[HistoryRecord]) -> StoredRun | None:
    for r in reversed(history):
        if r.run is None:
            continue
        path = kept_run(folder, r.run)
        if is_accepted(r) and (path / "report.json").is_file():
            return load_run(path)
    return None


def record_nightly(folder: Path, run_dir: Path, spec: CompareSpec) -> NightlyResult:
    """Everything after the gate run in `run_dir` (which has report.json and samples)."""
    run = load_run(run_dir)
    history = read_folder(folder)
    lines: list[str] = []
    base: Comparison | None = None
    base_pin = pinned(folder)
    if base_pin is not None:
        baseline = load_run(baseline_dir(folder))
        base = compare_runs(baseline, run, spec)
        write_comparison(base, baseline, run, run_dir / "vs-baseline")
        lines.append(f"against the pinned baseline {base_pin.run}: {base.label.upper()}")
        lines += [f"  {r}" for r in base.reasons]
    previous = _last_accepted(folder, history)
    prev: Comparison | None = None
    if previous is not None:
        prev = compare_runs(previous, run, spec)
        write_comparison(prev, previous, run, run_dir / "vs-previous")
        lines.append(
            f"against the last accepted run {previous.path.name}: {prev.label.upper()}"
            " (not blocking)"
        )
    blocking = base.blocking if base else []
    record = HistoryRecord(
        name=run.name,
        run=run.path.name,
        started_at=run.started_at,
        git_sha=run.git_sha,
        outcome=run.outcome,
        requests=len(run.samples),
        figures=figures_of_samples(run.samples, run.output_tokens_per_second),
        regressed=bool(blocking),
        label=night_label(base.label if base else None),
        blocking=blocking,
        accepted=accepted(run.outcome, bool(blocking)),
    )
    append_history(history_file(folder), record)
    keep_run(folder, run.path, spec.history_window)
    if base_pin is None and is_accepted(record):
        base_pin = pin(folder, run, "the first passing nightly run of an empty history")
        lines.append(f"no baseline yet: this run ({run.path.name}) is now the pinned baseline")
    elif base_pin is None:
        lines.append(
            f"no baseline yet, and this run's gate {run.outcome}: nothing pinned "
            f"(`harness baseline set {run.path} --history {folder}` pins a run by hand)"
        )
    records = read_folder(folder)[-spec.history_window :]
    figures = list(records[-1].figures) if records else []
    # Shifts smaller than the minimum effect are no change, as in the comparison.
    shift = spec.min_effect_pct / 100
    points = {
        f: cp for f in figures if (cp := change_points([r.figures.get(f) for r in records], shift))
    }
    write_trend(records, points, base_pin, folder, run_dir)
    for f, idx in points.items():
        lines.append(
            f"change point in {f} at run(s) {', '.join(records[i].run or '-' for i in idx)}"
        )
    return NightlyResult(record, base, prev, points, base_pin, lines)
