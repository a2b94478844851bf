"""Rollout profiles: the shipped ones load; bad steps and a non-streaming load are refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.paths import PROJECT_ROOT
from harness.spec.loader import load_yaml_model
from harness.spec.rollout import RolloutSpec


@pytest.mark.parametrize("name", ["canary.yaml", "blue-green.yaml", "canary-cpu.yaml"])
def test_the_shipped_profiles_load(name: str) -> None:
    spec = load_yaml_model(RolloutSpec, PROJECT_ROOT / "rollouts" / name)
    assert spec.steps[-1] == 1.0


def test_the_cpu_canary_judges_gross_failures_on_the_practices_steps() -> None:
    spec = load_yaml_model(RolloutSpec, PROJECT_ROOT / "rollouts" / "canary-cpu.yaml")
    assert spec.analysis.judge == "gross_failures" and spec.steps == (0.05, 0.5, 1.0)
    assert RolloutSpec().analysis.judge == "all"


def test_the_default_canary_is_the_practices_one() -> None:
    assert RolloutSpec().steps == (0.05, 0.5, 1.0)


@pytest.mark.parametrize(
    ("body", "why"),
    [
        ("steps: [0.5, 0.05, 1.0]", "rise"),
        ("steps: [0.05, 0.5]", "last step must be 1"),
        ("steps: [0, 1.0]", "share in (0, 1]"),
        ("load: {workload: {stream: false}}", "stream must be true"),
        ("analysis: {margins: {ttft_p50: 0}}", "ttft_p50"),
        ("analysis: {judge: latency}", "judge"),
    ],
)
def test_bad_profiles_name_the_field(tmp_path: Path, body: str, why: str) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(f"kind: rollout\n{body}\n")
    with pytest.raises(ConfigError) as err:
        load_yaml_model(RolloutSpec, p)
    assert why in str(err.value) and "r.yaml" in str(err.value)
