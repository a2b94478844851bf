"""reports/profiles/nightly.yaml: valid, long enough to compare, and running every experiment
in chaos/ that can run on a gate's stack."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import yaml

from harness.spec.gate import GateSpec
from harness.spec.loader import load_yaml_model

ROOT = Path(__file__).parents[3]
NIGHTLY = ROOT / "reports" / "profiles" / "nightly.yaml"


def test_nightly_profile_validates() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(NIGHTLY)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    spec = load_yaml_model(GateSpec, NIGHTLY)
    assert spec.load is not None and spec.load.duration_s >= 300
    assert spec.compare.blocking and set(spec.compare.blocking) <= set(spec.compare.metrics)


def test_nightly_runs_every_gate_ready_experiment() -> None:
    listed = {
        (NIGHTLY.parent / p).resolve() for p in load_yaml_model(GateSpec, NIGHTLY).experiments
    }
    ready = {
        p.resolve()
        for p in (ROOT / "chaos").glob("*.yaml")
        if not yaml.safe_load(p.read_text()).get("stack_overrides")
    }
    assert ready - listed == set(), "experiments in chaos/ the nightly profile does not run"
