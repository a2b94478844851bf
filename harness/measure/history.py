"""The history of runs, one record model for the gate and the nightly: each run's figures (one set,
one naming, taken from its summary or its samples here only), the history files' reader and
writer, and the nightly history folder with its pinned baseline. Storage only: what regressed and
what may be a baseline is judged in `harness/verdict/baseline.py`.

The gate's history is one file (`--history FILE`, default `reports/runs/history/<profile>.jsonl`).
The nightly's is a folder (`--history DIR`, kept by CI in a cache or an artifact):

    DIR/baseline/            the pinned baseline run: report.json, samples.jsonl.gz, pinned.json
    DIR/history.jsonl        one record per nightly run, oldest first
    DIR/runs/<run>/          the last runs' report.json and samples.jsonl.gz
    DIR/trend.html, trend.md the trend page

The baseline changes only by `harness baseline set` (or the first nightly run of an empty
folder), never by a nightly run on its own.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, model_validator

from harness.measure.sample_file import SAMPLE_FILE, SampleTable
from harness.measure.stats import Distribution, distribution
from harness.measure.summary import LoadSummary
from harness.provenance import now_iso

BASELINE = "baseline"
HISTORY_FILE = "history.jsonl"
RUNS = "runs"

# The figures of a run kept in any history: latency (distribution, statistic) over the successful
# requests, named `<distribution>_<statistic>_ms` as the SLOs name them, then the throughput.
LATENCY_FIGURES: tuple[tuple[str, str], ...] = (
    ("ttft", "p50"),
    ("ttft", "p95"),
    ("itl", "p50"),
    ("itl", "p95"),
    ("tpot", "p50"),
    ("tpot", "p95"),
    ("e2e", "p50"),
    ("e2e", "p95"),
)
THROUGHPUT = "output_tokens_per_second"
FIGURES: tuple[str, ...] = (*(f"{d}_{s}_ms" for d, s in LATENCY_FIGURES), THROUGHPUT)

# Fields that records written before the one model named otherwise: the gate's `metrics` (its
# figures, already named as FIGURES are) and the nightly's `gate_outcome`.
LEGACY_FIELDS: dict[str, str] = {"metrics": "figures", "gate_outcome": "outcome"}


class HistoryRecord(BaseModel):
    """One run in a history: the gate's file, the nightly's folder, a report's trend."""

    model_config = ConfigDict(extra="ignore")  # stored: lenient

    # The profile's name (nightly records written before the one model have none).
    name: str = ""
    # The run folder's name (the nightly's runs are kept under DIR/runs by it).
    run: str | None = None
    started_at: str
    git_sha: str | None = None
    outcome: str  # the gate's
    # Which stack the figures are of ("<stack name> (<provider>)"): only like is compared.
    stack: str | None = None
    requests: int = 0
    figures: dict[str, float | None] = Field(default_factory=dict)
    # The run regressed (against the gate's history, or, nightly, a blocking figure against the
    # pinned baseline): kept for the trend, never a baseline, so that a slow regression cannot
    # become the new normal.
    regressed: bool = False
    # Nightly: the label against the pinned baseline, and what regressed there and blocks.
    label: str | None = None
    blocking: list[str] = Field(default_factory=list)
    # Whether the run may be a baseline, as judged when it was recorded (None: not recorded).
    accepted: bool | None = None
    # In a report's trend: the run the report is of (not stored in the history file).
    current: bool = False

    @property
    def metrics(self) -> dict[str, float | None]:
        """`figures` under the gate's name before the one model, for callers of that time."""
        return self.figures

    @model_validator(mode="before")
    @classmethod
    def _legacy(cls, data: Any) -> Any:
        """Records written before the one model: their fields under today's names."""
        if not isinstance(data, dict):
            return data
        out = dict(data)
        for old, new in LEGACY_FIELDS.items():
            if old in out and new not in out:
                out[new] = out.pop(old)
        # A nightly record said only what blocked; that is its regression.
        if "regressed" not in out and out.get("blocking"):
            out["regressed"] = True
        return out


class PinnedBaseline(BaseModel):
    model_config = ConfigDict(extra="ignore")
    source: str
    run: str
    started_at: str
    git_sha: str | None = None
    pinned_at: str
    why: str


class RunFolder(Protocol):
    """What the history folder needs of a stored run (`harness.compare.runs.StoredRun`)."""

    @property
    def path(self) -> Path: ...
    @property
    def started_at(self) -> str: ...
    @property
    def git_sha(self) -> str | None: ...


def _figures(
    latency: dict[str, Distribution], output_tokens_per_second: float | None
) -> dict[str, float | None]:
    out: dict[str, float | None] = {
        f"{d}_{s}_ms": latency[d].stat(s) if d in latency else None for d, s in LATENCY_FIGURES
    }
    out[THROUGHPUT] = output_tokens_per_second
    return out


def figures_of_summary(summary: LoadSummary | None) -> dict[str, float | None]:
    """FIGURES of a load summary (the gate's: every look pooled); None where unknown."""
    if summary is None:
        return dict.fromkeys(FIGURES)
    dists = {d: getattr(summary.latency, f"{d}_ms") for d, _ in LATENCY_FIGURES}
    return _figures(dists, summary.throughput.output_tokens_per_second)


def figures_of_samples(
    samples: SampleTable, output_tokens_per_second: float | None = None
) -> dict[str, float | None]:
    """FIGURES of a stored run's samples, as its summary computes them (the successful requests,
    numpy's linear percentiles); the throughput is the summary's, when the run has one."""
    dists = {d: distribution(samples.values(f"{d}_ms")) for d, _ in LATENCY_FIGURES}
    return _figures(dists, output_tokens_per_second)


def read_history(path: Path) -> list[HistoryRecord]:
    """Records of earlier runs, oldest first; unreadable lines are skipped, not fatal."""
    if not path.is_file():
        return []
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(HistoryRecord.model_validate(json.loads(line)))
        except (ValueError, ValidationError):
            continue  # a torn or foreign line
    return records


def append_history(path: Path, record: HistoryRecord) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    with path.open("a") as f:
        f.write(record.model_dump_json(exclude={"current"}) + "\n")


def same_stack(history: list[HistoryRecord], stack: str | None) -> list[HistoryRecord]:
    """The records of runs on `stack` (records written before stacks were recorded count too)."""
    return [r for r in history if r.stack is None or stack is None or r.stack == stack]


def trend(
    history: list[HistoryRecord], current: HistoryRecord, last: int = 30
) -> list[HistoryRecord]:
    """The last `last` runs of the history and this one (marked `current`), oldest first: what a
    report plots to show where the figures are going."""
    # Its outcome, and so whether it may be a baseline, is not known yet while the run goes on.
    now = current.model_copy(update={"outcome": "this run", "current": True, "accepted": None})
    return [*history[-last:], now]


# The nightly history folder.


def history_file(folder: Path) -> Path:
    return folder / HISTORY_FILE


def read_folder(folder: Path) -> list[HistoryRecord]:
    """The records of a nightly history folder, oldest first."""
    return read_history(history_file(folder))


def _copy_run(run: Path, dest: Path) -> None:
    """report.json and samples.jsonl.gz of the run folder `run` into `dest`, replacing it
    atomically."""
    tmp = dest.with_name(dest.name + ".tmp")
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir(parents=True)
    for name in ("report.json", SAMPLE_FILE):
        shutil.copy2(run / name, tmp / name)
    old = dest.with_name(dest.name + ".old")
    shutil.rmtree(old, ignore_errors=True)
    if dest.exists():
        dest.rename(old)
    tmp.rename(dest)
    shutil.rmtree(old, ignore_errors=True)


def keep_run(folder: Path, run: Path, window: int) -> None:
    """Keep the run folder's report and samples in the history folder; only the last `window`
    runs stay."""
    runs = folder / RUNS
    _copy_run(run, runs / run.name)
    kept = sorted(p for p in runs.iterdir() if p.is_dir() and not p.name.endswith((".tmp", ".old")))
    for old in kept[: max(0, len(kept) - window)]:
        shutil.rmtree(old)


def kept_run(folder: Path, run: str) -> Path:
    return folder / RUNS / run


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


def pin(folder: Path, run: RunFolder, why: str) -> PinnedBaseline:
    dest = baseline_dir(folder)
    _copy_run(run.path, dest)
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
