"""Exactly what `make gate` runs: `harness gate` with the default profile on the reference
llama.cpp stack (breaker probe, calibration, looks, both experiments, the rate limit): it passes,
and every part of the verdict is in the report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration, pytest.mark.gate, pytest.mark.slow, pytest.mark.serial]


@pytest.mark.timeout(1450)  # the subprocess's own limit, and room to read its report
def test_the_default_gate_passes_on_the_reference_stack(tmp_path: Path) -> None:
    out = tmp_path / "out"
    # As `make gate` (= `harness gate`), with the history kept out of the project's runs folder.
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "gate",
            "--out",
            str(out),
            "--history",
            str(tmp_path / "history.jsonl"),
        ],
        capture_output=True,
        text=True,
        timeout=1400,
    )
    assert r.returncode == 0, r.stdout[-6000:] + r.stderr[-3000:]
    report = json.loads((out / "report.json").read_text())
    assert report["stack_spec"]["name"] == "reference"
    checks = {c["name"]: c for c in report["checks"]}
    for name in (
        "candidate's practices meet the policy",
        "streamed completion",
        "response cache",
        "circuit breaker opens and recovers",
        "rate limit per API key",
        "prompt-injection flagging",
        "PII filtered from answers",  # on live answers of the llama.cpp model
        "alert rule unit tests (promtool)",
        "key checks ran",
    ):
        assert checks[name]["outcome"] == "pass", checks[name]
    assert report["calibration"]["ttft_ms"] > 0
    # Measured while the breaker probe waited out its recovery (the stack idle), not first.
    assert report["calibration"]["measured_during"] == "during the breaker probe's recovery wait"
    slos = [c for c in report["checks"] if c["category"] == "slo"]
    assert slos and all(c["measured"]["n"] >= 20 for c in slos)
    assert any(c["measured"]["decision"] == "pass" for c in slos)
    fired = [c for c in report["checks"] if c["category"] == "alerts"]
    assert {c["outcome"] for c in fired} == {"pass"} and len(fired) == 2, fired
    assert report["load"]["looks"], "the load step records its looks"
    # Resilience decided, not warned: every experiment from steady state, its key expectations
    # pass (none inconclusive), recovery and the fate of every request in the report.
    key = [checks[k] for k in report["gate_spec"]["key_checks"] if " the fault, " in k]
    assert len(key) == 2 and all(c["outcome"] == "pass" for c in key), key
    for journal in report["experiments"]:
        steady = checks[f"{journal['title']}: started from steady state"]
        assert steady["outcome"] == "pass", steady
        assert journal["recovery"] is not None and journal["fates"] is not None, journal["title"]
        assert checks[f"{journal['title']}: no stream cut off silently"]["outcome"] == "pass"
    # Every pool down leaves the breakers open; the primary outage after it starts only once they
    # healed (the policy's 60 s), so its "before the fault" requests are the primary's. Without
    # that wait they were the fallback's and the experiment failed (seen so).
    before = checks["primary pool down, fallback serves: before the fault, primary_share>=0.8"]
    assert before["measured"]["observed"] == 1, before
