"""`harness gpu-check`'s alert check end to end with everything real but the GPU: the gateway's
NVML collector served alone, a real Prometheus with the stack's rules, a filler process. NVML
and the filler are fakes (tests/fixtures/fake_nvml: one 80 GiB card whose memory in use the fake
filler sets), so the check's wiring is proven here and only the card itself on a GPU machine."""

from __future__ import annotations

import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from harness.chaos.gpu_memory import GpuAlertSetup, check_gpu_memory_alert
from harness.observe.live_rules import short_window_rules
from harness.spec.stack import PrometheusSpec
from harness.stack.render import alert_rules
from harness.verdict.gpu_memory import judge_gpu_memory_alert

pytestmark = [pytest.mark.integration, pytest.mark.slow]

FAKE_NVML = Path(__file__).parents[1] / "fixtures" / "fake_nvml"


def fake_gpu(tmp_path: Path, **changes: object) -> GpuAlertSetup:
    setup = GpuAlertSetup(
        hold="1s",
        fire_within_s=20,
        resolve_within_s=20,
        fill_within_s=20,
        fill_hold_s=60,
        exporter_path=(FAKE_NVML,),
        filler=(sys.executable, str(FAKE_NVML / "fake_gpu_fill.py")),
        env={"FAKE_NVML_STATE": str(tmp_path / "nvml-state.json")},
    )
    return replace(setup, **changes)  # type: ignore[arg-type]


def test_gpu_memory_high_fires_on_the_exporters_figures_and_resolves(tmp_path: Path) -> None:
    lines: list[str] = []
    evidence = check_gpu_memory_alert(PrometheusSpec(), tmp_path, lines.append, fake_gpu(tmp_path))
    check = judge_gpu_memory_alert(evidence)
    assert check.outcome == "pass", (check.reasons, lines)
    assert evidence.gpus == 1 and evidence.idle_state == "inactive"
    assert evidence.idle_ratio == pytest.approx(0.02, abs=1e-3)
    # Half the headroom above the deployed threshold (0.95).
    assert evidence.filled_ratio == pytest.approx(0.975, abs=1e-3)
    assert evidence.filler == "fake"
    assert evidence.fired_after_s is not None and evidence.fired_after_s < 10


def test_a_rule_that_reads_no_exporter_figure_never_fires_and_fails(tmp_path: Path) -> None:
    # The defect the check exists for: a deployed rule that cannot fire on what is exported.
    rules = short_window_rules(alert_rules(PrometheusSpec()), "15s", "1s")
    for rule in rules["groups"][0]["rules"]:
        if rule["alert"] == "GPUMemoryHigh":
            rule["expr"] = rule["expr"].replace("llm_gpu_memory_used", "llm_gpu_mem_used")
    setup = fake_gpu(tmp_path, rules=rules, fire_within_s=3)
    check = judge_gpu_memory_alert(
        check_gpu_memory_alert(PrometheusSpec(), tmp_path, lambda _: None, setup)
    )
    assert check.outcome == "fail"
    assert any("did not fire within 3 s of the card at 97.5%" in r for r in check.reasons)


def test_the_preflight_lists_every_part_and_its_exit_code_says_if_one_is_missing() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "harness", "gpu-check", "--preflight-only"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    lines = r.stdout.splitlines()
    states = [line.split()[0] for line in lines if line.startswith("  ") and line.split()]
    parts = [s for s in states if s in ("ok", "MISSING", "UNCHECKED")]
    assert len(parts) == 10, r.stdout + r.stderr
    missing = len(parts) - parts.count("ok")
    assert r.returncode == (2 if missing else 0), r.stdout + r.stderr
    assert lines[-1].startswith("gpu-check: ")
