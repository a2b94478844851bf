"""A crash is never a verdict, end to end on the simulated stack: the cache probe is planted to
raise, once with an error of talking to the stack (evidence: an `error` check, the gate fails
with exit 1) and once with a defect of the harness (a TypeError: exit 2, the report marked
crashed, the traceback kept in the run folder)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.gate]

SIM_STACK = Path(__file__).parents[1] / "fixtures" / "sim-stack.yaml"
PROFILE = (
    "kind: gate\nname: crash\nload: null\n"
    "probes: {streaming: false, security: false, injection: false, pii: false, cost: false,\n"
    "         monitoring: false, alert_rule_tests: false, breaker: false, rate_limit: false,\n"
    "         logs: false}\n"
    "policy: {breaker: {recovery_timeout_s: 4}, cache: {hit_speedup: 2}}\n"
)
# The harness as `python -m harness`, with the gate's cache probe replaced by one that raises.
PLANTED = """
import sys, httpx
import harness.gate.steps as steps
KIND = sys.argv.pop(1)
def planted(*args, **kwargs):
    if KIND == "stack":
        raise httpx.ConnectError("planted: connection refused")
    return len(None)  # a defect of the harness: TypeError
steps.probe_cache = planted
from harness.commands.main import main
main()
"""


def _gate(tmp_path: Path, kind: str) -> tuple[subprocess.CompletedProcess[str], Path]:
    profile = tmp_path / "profile.yaml"
    profile.write_text(PROFILE)
    out = tmp_path / f"out-{kind}"
    done = subprocess.run(
        [
            sys.executable,
            "-c",
            PLANTED,
            kind,
            "gate",
            "--profile",
            str(profile),
            "--stack",
            str(SIM_STACK),
            "--out",
            str(out),
            "--no-history",
        ],
        capture_output=True,
        text=True,
        timeout=240,
    )
    return done, out


def test_an_error_talking_to_the_stack_is_evidence(tmp_path: Path) -> None:
    done, out = _gate(tmp_path, "stack")
    assert done.returncode == 1, done.stdout + done.stderr
    report = json.loads((out / "report.json").read_text())
    cache = next(c for c in report["checks"] if c["name"] == "response cache")
    assert cache["outcome"] == "error"
    assert cache["reasons"] == ["ConnectError: planted: connection refused"]
    assert report["outcome"] == "failed" and report["crash"] is None
    assert not (out / "crash.txt").exists()


def test_a_defect_of_the_harness_exits_2_with_its_traceback_kept(tmp_path: Path) -> None:
    done, out = _gate(tmp_path, "harness")
    assert done.returncode == 2, done.stdout + done.stderr
    assert "the harness crashed (TypeError" in done.stderr, done.stderr
    report = json.loads((out / "report.json").read_text())
    assert report["outcome"] == "error" and report["exit_code"] == 2
    assert report["crash"] == "crash.txt"
    assert not any(c["name"] == "response cache" for c in report["checks"]), report["checks"]
    assert any("a defect of the harness, not a verdict" in e for e in report["errors"])
    trace = (out / "crash.txt").read_text()
    assert "Traceback (most recent call last)" in trace and "TypeError" in trace, trace
    assert "in planted" in trace and "in guarded" in trace, trace
    assert "the harness crashed (not a verdict)" in (out / "summary.md").read_text()
