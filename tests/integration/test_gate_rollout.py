"""A rollout as a step of a gate profile (`rollout: {profile: ...}`), end to end on the
simulated stack: the gate's stack is the candidate, `--baseline` the running version, and the
rollout's checks are the gate's (its report, its verdict, its deployment checklist)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from rollout_support import until_decided

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FIXTURES = Path(__file__).parents[1] / "fixtures" / "rollout"
# No probes and no load: the policy check and the rollout are the gate.
PROFILE = FIXTURES / "gate-canary.yaml"
CANARY = "canary: candidate no worse than the baseline at every step"


def gate(tmp_path: Path, candidate: str) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    out = tmp_path / "out"
    argv = [
        *(sys.executable, "-m", "harness", "gate", "--no-history", "--out", str(out)),
        *("--profile", str(PROFILE), "--stack", str(FIXTURES / candidate)),
        *("--baseline", str(FIXTURES / "baseline.yaml")),
    ]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=300)
    return r, json.loads((out / "report.json").read_text())


def _check(report: dict[str, Any], name: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"] == name)


def test_a_gate_promotes_an_identical_candidate_in_its_rollout_step(tmp_path: Path) -> None:
    r, report, out = until_decided(tmp_path, lambda d: gate(d, "baseline.yaml"), CANARY)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    assert report["kind"] == "gate" and report["outcome"] == "passed"
    assert _check(report, CANARY)["outcome"] == "pass"
    moves = [c for c in report["checks"] if c["name"].startswith("step to ")]
    assert [c["outcome"] for c in moves] == ["pass", "pass"], moves
    # The rollout's journal, timeline and samples are the gate's too.
    assert report["rollout"]["stopped"] == "promoted to 100%"
    assert "<h2>Rollout</h2>" in (out / "report.html").read_text()
    assert (out / "rollout" / "samples.jsonl.gz").is_file()
    rows = {row["item"]: row["status"] for row in report["checklist"]}
    assert rows["Gradual rollout (canary 5% -> 50% -> 100%)"] == "proven"
    assert rows["Compare latency to baseline"] == "proven"


def test_a_slower_candidate_fails_the_gate_in_its_rollout_step(tmp_path: Path) -> None:
    r, report = gate(tmp_path, "candidate-slow.yaml")
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    canary = _check(report, CANARY)
    assert canary["outcome"] == "fail" and canary["reasons"][0].startswith("aborted at 50%")
    assert "ttft_p50" in " ".join(canary["reasons"])
    assert "FAIL  canary:" in r.stdout  # the gate's own outcome names the rollout's reason
    assert report["rollout"]["final_share"] == 0.0  # rolled back to the baseline
    rows = {row["item"]: row["status"] for row in report["checklist"]}
    assert rows["Gradual rollout (canary 5% -> 50% -> 100%)"] == "failed"
