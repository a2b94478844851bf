"""A stored run as `harness compare` reads it: its report's identity and its per-request samples.

A run is a folder with `report.json` (a gate, nightly or load run) or that file itself. The
samples come from `samples.jsonl.gz` beside it; runs written before that file existed are read
from their raw `samples-*.jsonl` (the load step's folders), outside the calibration.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.data.samples import SAMPLE_GLOB, read_samples
from harness.errors import ConfigError, ConfigProblem
from harness.measure.sample_file import (
    SAMPLE_FILE,
    SampleFileError,
    SampleTable,
    read_sample_file,
    write_sample_file,
)


@dataclass(frozen=True)
class StoredRun:
    path: Path  # the run folder
    name: str
    started_at: str
    git_sha: str | None
    outcome: str
    gate_spec: dict[str, Any]
    samples: SampleTable
    # The load summary's, when the report has one (not from the samples: it needs the window).
    output_tokens_per_second: float | None = None

    @property
    def label(self) -> str:
        sha = f" @ {self.git_sha[:10]}" if self.git_sha else ""
        return f"{self.path.name} ({self.name}{sha}, {self.started_at})"


def _raw_sample_dirs(folder: Path) -> list[Path]:
    """A gate run's load step (`load/`, every look), else every raw sample folder of the run;
    never the calibration's requests nor an experiment's."""
    root = folder / "load" if (folder / "load").is_dir() else folder
    skip = {"calibration", *(p.name for p in folder.glob("experiment-*"))}
    return sorted({p.parent for p in root.rglob(SAMPLE_GLOB) if not skip & set(p.parts)})


def load_run(path: Path) -> StoredRun:
    """Read a run; a path that is not one is a ConfigError naming what is missing."""
    folder = path.parent if path.is_file() else path
    report_path = folder / "report.json"

    def problem(msg: str) -> ConfigError:
        return ConfigError(str(path), [ConfigProblem("", msg)])

    if not folder.is_dir():
        raise problem("not found: expected a run folder or its report.json")
    try:
        report = json.loads(report_path.read_bytes())
    except OSError:
        raise problem(f"no report.json in {folder}: not a run folder") from None
    except ValueError as exc:
        raise problem(f"report.json is not JSON: {exc}") from None
    if not isinstance(report, dict):
        raise problem("report.json is not a report (not a JSON object)")
    sample_path = folder / SAMPLE_FILE
    if not sample_path.is_file():
        raw = _raw_sample_dirs(folder)
        if not raw:
            raise problem(f"no {SAMPLE_FILE} and no raw samples ({SAMPLE_GLOB}) under {folder}")
        # An older run: keep its samples in the compact form from now on.
        write_sample_file(sample_path, [s for d in raw for s in read_samples(d)])
    try:
        table = read_sample_file(sample_path)
    except SampleFileError as exc:
        raise ConfigError(str(sample_path), [ConfigProblem("", str(exc))]) from None
    gate_spec = report.get("gate_spec")
    return StoredRun(
        path=folder,
        name=str(report.get("name") or report.get("kind") or folder.name),
        started_at=str(report.get("started_at") or report.get("created_at") or "?"),
        git_sha=report.get("git_sha"),
        outcome=str(report.get("outcome") or "?"),
        gate_spec=gate_spec if isinstance(gate_spec, dict) else {},
        samples=table,
        output_tokens_per_second=_output_tokens_per_second(report),
    )


def _output_tokens_per_second(report: dict[str, Any]) -> float | None:
    """report.load.summary.throughput.output_tokens_per_second, if the report has it."""
    node: Any = report
    for key in ("load", "summary", "throughput", "output_tokens_per_second"):
        node = node.get(key) if isinstance(node, dict) else None
    return float(node) if isinstance(node, (int, float)) and not isinstance(node, bool) else None
