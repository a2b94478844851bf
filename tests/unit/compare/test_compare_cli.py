"""`harness compare` and `harness baseline` on run folders of synthetic samples (no stack)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from runs_fixture import make_run, synthetic_samples

HARNESS = [sys.executable, "-m", "harness"]


def harness(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([*HARNESS, *args], capture_output=True, text=True, timeout=120)


def test_compare_same_build_and_planted_slowdown(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", synthetic_samples(400, seed=1))
    b = make_run(tmp_path / "b", synthetic_samples(400, seed=2))
    slow = make_run(tmp_path / "slow", synthetic_samples(400, seed=3, ttft_factor=1.2))
    r = harness("compare", str(a), str(b / "report.json"), "--out", str(tmp_path / "ab"))
    assert r.returncode == 0, r.stdout + r.stderr
    result = json.loads((tmp_path / "ab" / "compare.json").read_text())
    assert result["verdict"] == "passed" and result["blocking"] == []
    assert {m["label"] for m in result["metrics"]} <= {"same", "inconclusive"}
    r = harness("compare", str(a), str(slow), "--out", str(tmp_path / "aslow"))
    assert r.returncode == 1, r.stdout + r.stderr
    assert "blocking regression: ttft_ms" in r.stdout
    result = json.loads((tmp_path / "aslow" / "compare.json").read_text())
    ttft = next(m for m in result["metrics"] if m["metric"] == "ttft_ms")
    assert ttft["label"] == "regressed" and result["label"] == "regressed"
    page = (tmp_path / "aslow" / "compare.html").read_text()
    assert page.count("<svg") == 4 and "ECDF" in page and "REGRESSED" in page
    assert "http" not in page.replace('xmlns="http://www.w3.org/2000/svg"', "")  # no assets
    # Swapped, the same change is an improvement: nothing blocks.
    r = harness("compare", str(slow), str(a), "--out", str(tmp_path / "slowa"))
    assert r.returncode == 0 and "IMPROVED" in r.stdout


def test_min_effect_from_the_profile_or_the_option(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", synthetic_samples(400, seed=1))
    # B's own profile says 30%: a 20% slowdown is not a change that matters to it.
    slow = make_run(
        tmp_path / "slow",
        synthetic_samples(400, seed=3, ttft_factor=1.2),
        compare={"min_effect_pct": 30},
    )
    r = harness("compare", str(a), str(slow), "--out", str(tmp_path / "x"))
    assert r.returncode == 0 and "smallest change that matters is 30%" in r.stdout
    r = harness("compare", str(a), str(slow), "--min-effect", "10", "--out", str(tmp_path / "y"))
    assert r.returncode == 1


def test_bad_inputs_exit_2_with_the_reason(tmp_path: Path) -> None:
    a = make_run(tmp_path / "a", synthetic_samples(50, seed=1))
    r = harness("compare", str(a), str(tmp_path / "missing"))
    assert r.returncode == 2 and "not found" in r.stderr and "Traceback" not in r.stderr
    (tmp_path / "empty").mkdir()
    r = harness("compare", str(a), str(tmp_path / "empty"))
    assert r.returncode == 2 and "no report.json" in r.stderr
    (tmp_path / "noraw").mkdir()
    (tmp_path / "noraw" / "report.json").write_text("{}")
    r = harness("compare", str(a), str(tmp_path / "noraw"))
    assert r.returncode == 2 and "no samples.jsonl.gz" in r.stderr
    (a / "samples.jsonl.gz").write_text("junk")
    r = harness("compare", str(a), str(a))
    assert r.returncode == 2 and "not a gzip" in r.stderr
    r = harness("compare", str(a), str(a), "--min-effect", "150")
    assert r.returncode == 2 and "between 0 and 100" in r.stderr


def test_runs_from_before_the_sample_file_are_read_from_raw_samples(tmp_path: Path) -> None:
    run = tmp_path / "old"
    raw = run / "load" / "look-1" / "samples"
    raw.mkdir(parents=True)
    (run / "report.json").write_text(json.dumps({"name": "default", "outcome": "passed"}))
    samples = synthetic_samples(30, seed=5)
    (raw / "samples-000.jsonl").write_text("".join(s.to_json() + "\n" for s in samples))
    for other in ("calibration", "experiment-0"):  # neither is the load step's
        d = run / other / "samples"
        d.mkdir(parents=True)
        (d / "samples-000.jsonl").write_text(samples[0].to_json() + "\n")
    from harness.compare.runs import load_run

    assert len(load_run(run).samples) == 30 and (run / "samples.jsonl.gz").is_file()


def test_baseline_set_refuses_failed_and_regressed_runs(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    good = make_run(tmp_path / "good", synthetic_samples(400, seed=1))
    failed = make_run(tmp_path / "failed", synthetic_samples(400, seed=2), outcome="failed")
    slow = make_run(tmp_path / "slow", synthetic_samples(400, seed=3, ttft_factor=1.2))
    r = harness("baseline", "show", "--history", str(hist))
    assert r.returncode == 1 and "no baseline" in r.stdout
    r = harness("baseline", "set", str(failed), "--history", str(hist))
    assert r.returncode == 1 and "only a passed run" in r.stderr
    error = make_run(tmp_path / "error", synthetic_samples(40, seed=2), outcome="error")
    r = harness("baseline", "set", str(error), "--history", str(hist), "--allow-failed-gate")
    assert r.returncode == 1 and "only a passed run" in r.stderr  # a run that could not run
    r = harness("baseline", "set", str(good), "--history", str(hist), "--why", "release 1.2")
    assert r.returncode == 0, r.stderr
    r = harness("baseline", "set", str(slow), "--history", str(hist))
    assert r.returncode == 1 and "regressed against the current baseline" in r.stderr
    shown = json.loads(harness("baseline", "show", "--history", str(hist)).stdout)
    assert shown["run"] == "good" and shown["why"] == "release 1.2"
    # A failed gate (say, an experiment) may be pinned on purpose when its samples hold up.
    r = harness("baseline", "set", str(failed), "--history", str(hist), "--allow-failed-gate")
    assert r.returncode == 0, r.stderr
    assert (hist / "baseline" / "samples.jsonl.gz").is_file()
