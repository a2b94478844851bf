"""Every experiment starts from steady state: the gate waits for breakers and alerts to settle,
bounded by the policy's recovery timeout (never the candidate's), and says so when they do not.

Simulated stack, through `harness gate` with only the experiments on (no probes, no load)."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from harness.paths import PROJECT_ROOT
from harness.spec.gate import GateProbes

pytestmark = [pytest.mark.chaos, pytest.mark.slow]

SIM_STACK = PROJECT_ROOT / "tests" / "fixtures" / "sim-stack.yaml"
CHAOS = PROJECT_ROOT / "chaos"
PROBES = tuple(GateProbes.model_fields)
# Opens both gateways' primary breakers fast: the primaries unreachable at 4 requests a second.
TRIP = {
    "kind": "experiment",
    "title": "primaries unreachable",
    "load": {
        "kind": "load",
        "name": "trip",
        "duration_s": "8s",
        "workload": {"max_tokens": 8, "prompt_words": 8},
        "load": {"kind": "open", "rate_rps": 4, "arrival": "constant", "max_send_lag_ms": 250},
    },
    "fault": {"kind": "proxy_down", "targets": ["primary-0", "primary-1"]},
    "fault_at_s": "2s",
    "fault_for_s": "4s",
    "expect": {"during": ["fallback_share>=0.5"]},
}


def gate(
    tmp_path: Path, experiments: list[Path], recovery_s: float, candidate_recovery_s: float
) -> tuple[int, dict[str, Any]]:
    stack = yaml.safe_load(SIM_STACK.read_text())
    stack["gateway"]["settings"]["breaker"]["recovery_timeout_s"] = candidate_recovery_s
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(stack))
    profile = {
        "kind": "gate",
        "policy": {"breaker": {"recovery_timeout_s": recovery_s}, "cache": {"hit_speedup": 4}},
        "probes": {p: False for p in PROBES},
        "load": None,
        "key_checks": [],
        "experiments": [str(e) for e in experiments],
    }
    (tmp_path / "profile.yaml").write_text(yaml.safe_dump(profile))
    r = subprocess.run(
        [
            *(sys.executable, "-m", "harness", "gate", "--no-history"),
            *("--profile", str(tmp_path / "profile.yaml"), "--stack", str(tmp_path / "stack.yaml")),
            *("--out", str(tmp_path / "out")),
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    return r.returncode, report


def chaos_checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"] if c["category"] == "chaos"}


def test_a_breaker_held_open_past_the_policy_bound_is_not_a_steady_start(tmp_path: Path) -> None:
    """The candidate keeps its breakers open 600 s; the policy says 4. The second experiment
    waits the policy's 4 s and a margin, then reports it did not start from steady state and
    injects nothing: never a pass, and the gate does not wait ten minutes."""
    trip = tmp_path / "trip.yaml"
    trip.write_text(yaml.safe_dump(TRIP))
    code, report = gate(tmp_path, [trip, CHAOS / "primary-down-fallback.yaml"], 4, 600)
    checks = chaos_checks(report)
    assert checks["primaries unreachable: started from steady state"]["outcome"] == "pass"
    second = checks["primary pool down, fallback serves: started from steady state"]
    assert second["outcome"] == "fail", second
    assert second["reasons"][0].startswith("did not start from steady state: breaker open: ")
    # The bound is the policy's 4 s and 15 s; the last poll may end a second past it.
    waited = re.search(
        r"after waiting (\d+)s \(the policy's bound 19s\); the fault was not injected$",
        second["reasons"][0],
    )
    assert waited is not None and 19 <= int(waited.group(1)) <= 21, second["reasons"]
    # Nothing of the second experiment was judged: its fault never ran.
    assert not [n for n in checks if n.startswith("primary pool down") and n != second["name"]]
    assert code == 1 and report["outcome"] == "failed"
