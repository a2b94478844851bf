"""The nightly history folder (`--history DIR`, kept by CI in a cache or an artifact):

    DIR/baseline/            the pinned baseline run: report.json, samples.jsonl.gz, pinned.json
    DIR/history.jsonl        one record per nightly run, oldest first
    DIR/runs/<run>/          the last runs' report.json and samples.jsonl.gz
    DIR/trend.html, trend.md the trend page

The baseline changes only by `harness baseline set` (or the first nightly run of an empty
folder), never by a nightly run on its own, and a run that regressed against it, or whose gate
failed, is refused: a slow regression cannot become the new normal.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from harness.compare.runs import StoredRun
from harness.measure.sample_file import SAMPLE_FILE
from harness.provenance import now_iso
from harness.spec.compare import CompareSpec

BASELINE = "baseline"
HISTORY_FILE = "history.jsonl"
RUNS = "runs"
# Figures of each run kept in the history: (metric, statistic).
FIGURES: tuple[tuple[str, str], ...] = (
    ("ttft_ms", "p50"),
    ("ttft_ms", "p95"),
    ("itl_ms", "p50"),
    ("itl_ms", "p95"),
    ("tpot_ms", "p50"),
    ("e2e_ms", "p50"),
    ("e2e_ms", "p95"),
)


class NightlyRecord(BaseModel):
    model_config = ConfigDict(extra="ignore")  # stored: lenient
    run: str  # the run folder's name (under DIR/runs while kept)
    started_at: str
    git_sha: str | None = None
    gate_outcome: str
    label: str  # against the baseline: regressed | improved | same | inconclusive | no baseline
    blocking: list[str] = Field(default_factory=list)
    accepted: bool  # the gate passed and nothing blocking regressed
    requests: int = 0
    figures: dict[str, float | None] = Field(default_factory=dict)


class PinnedBaseline(BaseModel):
    model_config = ConfigDict(extra="ignore")
    source: str
    run: str
    started_at: str
    git_sha: str | None = None
    pinned_at: str
    why: str


def figures_of(run: StoredRun) -> dict[str, float | None]:
    out: dict[str, float | None] = {}
    for metric, stat in FIGURES:
        v = run.samples.values(metric)
        q = 0.5 if stat == "p50" else 0.95
        out[f"{metric.removesuffix('_ms')}_{stat}_ms"] = (
            round(float(np.quantile(v, q)), 3) if v.size else None
        )
    return out


def read_history(folder: Path) -> list[NightlyRecord]:
    path = folder / HISTORY_FILE
    if not path.is_file():
        return []
    out = []
    for line in path.read_text().splitlines():
        try:
            out.append(NightlyRecord.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            continue  # a torn or foreign line is not fatal
    return out


def append_record(folder: Path, record: NightlyRecord) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    with (folder / HISTORY_FILE).open("a") as f:
        f.write(record.model_dump_json() + "\n")


def _copy_run(run: StoredRun, dest: Path) -> None:
    """report.json and samples.jsonl.gz of `run` into `dest`, replacing it atomically."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("report.json", SAMPLE_FILE):
        shutil.copy2(run.path / name, tmp / name)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def keep_run(folder: Path, run: StoredRun, spec: CompareSpec) -> None:
    """Keep the run's samples in the history folder; only the last `history_window` stay."""
    runs = folder / RUNS
    _copy_run(run, runs / run.path.name)
    kept = sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.endswith((".tmp", ".old")))
    for old in kept[: max(0, len(kept) - spec.history_window)]:
        shutil.rmtree(old)


def baseline_dir(folder: Path) -> Path:
    return folder / BASELINE


def pinned(folder: Path) -> PinnedBaseline | None:
    path = baseline_dir(folder) / "pinned.json"
    if not path.is_file():
        return None
    try:
        return PinnedBaseline.model_validate_json(path.read_text())
    except ValidationError:
        return None


def pin(folder: Path, run: StoredRun, why: str) -> PinnedBaseline:
    dest = baseline_dir(folder)
    _copy_run(run, dest)
    record = PinnedBaseline(
        source=str(run.path),
        run=run.path.name,
        started_at=run.started_at,
        git_sha=run.git_sha,
        pinned_at=now_iso(),
        why=why,
    )
    (dest / "pinned.json").write_text(record.model_dump_json(indent=2) + "\n")
    return record
