"""GPUMemoryHigh on real data, judged: quiet below the threshold, firing above it, resolving
once freed; each way it can fall short is its own reason."""

from __future__ import annotations

from dataclasses import replace

import pytest

from harness.verdict.gpu_memory import GpuAlertEvidence, judge_gpu_memory_alert

GOOD = GpuAlertEvidence(
    threshold=0.95,
    hold="5s",
    gpus=1,
    idle_ratio=0.02,
    idle_state="inactive",
    filled_ratio=0.975,
    filler="torch",
    fired_after_s=6.2,
    fire_within_s=60,
    resolved_after_s=1.8,
    resolve_within_s=60,
)


def test_quiet_then_firing_then_resolved_passes() -> None:
    check = judge_gpu_memory_alert(GOOD)
    assert check.outcome == "pass"
    assert "quiet at 2.0%" in check.reasons[0] and "fired 6.2 s after" in check.reasons[0]
    assert check.measured["filled_ratio"] == 0.975


@pytest.mark.parametrize(
    ("planted", "reason"),
    [
        # The exporter served nothing (no NVML, or a collector that hides its figures).
        ({"idle_ratio": None}, "got no llm_gpu_memory_used"),
        ({"idle_ratio": 0.96}, "before the fill, at or above the threshold"),
        ({"idle_state": "firing"}, "fired with the card 2.0% full, below its threshold"),
        ({"filled_ratio": 0.93, "fired_after_s": None}, "reached 93.0% of the card"),
        ({"filled_ratio": None, "fired_after_s": None}, "reached no figure"),
        # The planted defect of the rule itself: a card above it and no alert.
        ({"fired_after_s": None}, "did not fire within 60 s of the card at 97.5%"),
        ({"resolved_after_s": None}, "still fired 60 s after the memory was freed"),
    ],
)
def test_each_shortfall_fails_with_its_reason(planted: dict[str, object], reason: str) -> None:
    check = judge_gpu_memory_alert(replace(GOOD, **planted))  # type: ignore[arg-type]
    assert check.outcome == "fail"
    assert any(reason in r for r in check.reasons), check.reasons
