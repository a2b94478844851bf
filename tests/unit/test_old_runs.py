"""Nothing a user kept stops working: a run folder, a nightly history folder with its pinned
baseline, and a gate history file, all written before the house's renovation (the gate ran at
3120c46, the history folder was written at 375378c; `tests/fixtures/old-runs/`), are read by
`harness report`, `harness compare`, `harness baseline show` and the history readers of today."""

from __future__ import annotations

import gzip
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from harness.measure.history import pinned
from harness.measure.history import read_folder as read_history
from harness.measure.history import read_history as read_gate_history
from harness.report.model import RunReport

OLD = Path(__file__).parents[1] / "fixtures" / "old-runs"
HARNESS = [sys.executable, "-m", "harness"]


def _run_folder(dest: Path) -> Path:
    """The stored run as `harness gate` left it (its report kept gzipped in the fixture)."""
    dest.mkdir(parents=True)
    (dest / "report.json").write_bytes(gzip.decompress((OLD / "report.json.gz").read_bytes()))
    shutil.copy(OLD / "samples.jsonl.gz", dest / "samples.jsonl.gz")
    return dest


@pytest.fixture
def old(tmp_path: Path) -> tuple[Path, Path]:
    """The run folder, and the nightly history folder as the old `harness nightly` and `harness
    baseline set` left it (the baseline and the kept run are copies of the run)."""
    run = _run_folder(tmp_path / "run-1")
    history = tmp_path / "history"
    _run_folder(history / "baseline")
    _run_folder(history / "runs" / "run-1")
    shutil.copy(OLD / "pinned.json", history / "baseline" / "pinned.json")
    shutil.copy(OLD / "nightly-history.jsonl", history / "history.jsonl")
    return run, history


def _harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=120)


def test_an_old_report_is_read_and_rendered_again(old: tuple[Path, Path], tmp_path: Path) -> None:
    run, _ = old
    report = RunReport.model_validate_json((run / "report.json").read_bytes())
    assert report.outcome == "passed" and report.crash is None
    assert len(report.checks) == 39 and report.load is not None
    # Identity named as today: the kind, the host typed, the load's start from `created_at`.
    assert report.kind == "gate" and report.host.hostname == "vm" and report.host.cpus == 2
    assert report.load.started_at.startswith("2026-") and report.load.name == "load"
    # Its load summary kept the SLO and default checks (`passed`, `observed`): read into `checks`.
    load_checks = report.load.checks
    assert len(load_checks) == 8 and all(c.decision == "pass" and c.passed for c in load_checks)
    assert load_checks[-1].default and load_checks[-1].expr == "achieved_ratio>=0.9"
    assert load_checks[0].estimate == pytest.approx(227.21, abs=0.01)  # its `observed`
    done = _harness("report", str(run), "--out", str(tmp_path / "again"))
    assert done.returncode == 0, done.stdout + done.stderr
    assert "# Deploy gate: PASSED" in done.stdout
    for name in ("summary.md", "junit.xml", "report.html"):
        assert (tmp_path / "again" / name).is_file(), name


def test_an_old_run_is_compared_with_an_old_baseline(
    old: tuple[Path, Path], tmp_path: Path
) -> None:
    run, history = old
    done = _harness("compare", str(run), str(history / "baseline"), "--out", str(tmp_path / "vs"))
    assert done.returncode == 0, done.stdout + done.stderr
    compared = json.loads((tmp_path / "vs" / "compare.json").read_text())
    assert compared["blocking"] == [] and compared["label"] != "regressed", compared
    shown = _harness("baseline", "show", "--history", str(history))
    assert shown.returncode == 0, shown.stdout + shown.stderr
    assert "run-1" in shown.stdout


def test_old_history_files_are_read(old: tuple[Path, Path]) -> None:
    _, history = old
    nights = read_history(history)
    assert [(n.run, n.accepted, n.requests) for n in nights] == [("run-1", True, 105)]
    base = pinned(history)
    assert base is not None and base.run == "run-1"
    gates = read_gate_history(OLD / "gate-history.jsonl")
    assert [(g.name, g.outcome, g.regressed) for g in gates] == [("default", "passed", False)]
    assert gates[0].metrics["ttft_p95_ms"] == pytest.approx(353.62, abs=0.01)


def test_an_old_chaos_report_is_named_a_chaos_run() -> None:
    """Before `kind` was kept, a chaos run's name began "chaos: "; it still reads as one."""
    old_chaos = RunReport.model_validate({"name": "chaos: primary down", "outcome": "passed"})
    assert old_chaos.kind == "chaos" and old_chaos.kind_title == "Chaos run"
    assert RunReport.model_validate({"name": "default", "outcome": "passed"}).kind == "gate"
