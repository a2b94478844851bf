"""A gate profile's rollout step, its inputs checked before anything starts: the gate's stack is
the candidate, `--baseline` the running version, and every refusal names file, field and what
was expected (exit 2, no traceback)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.gate.prepare import gate_rollout, prepare_gate
from harness.gate.rollout_step import RolloutPlan
from harness.spec.gate import GateSpec
from harness.spec.loader import load_yaml_model

FIXTURES = Path(__file__).parents[1] / "fixtures" / "rollout"
BASELINE = FIXTURES / "baseline.yaml"
CANDIDATE = FIXTURES / "candidate-slow.yaml"


def _gate(tmp_path: Path, rollout: str) -> Path:
    """A gate profile in `tmp_path` whose rollout step names `rollout` (relative to it)."""
    (tmp_path / "rollouts").mkdir(exist_ok=True)
    for name in ("canary.yaml", "scale.yaml"):
        (tmp_path / "rollouts" / name).write_text((FIXTURES / name).read_text())
    path = tmp_path / "gate.yaml"
    path.write_text(f"kind: gate\nload: null\nrollout: {{profile: {rollout}}}\n")
    return path


def _plan(profile: Path, stack: Path, baseline: Path | None) -> RolloutPlan | None:
    gate_spec, stack_spec, _ = prepare_gate(profile, stack, False)
    return gate_rollout(gate_spec, profile, stack, stack_spec, baseline)


def test_the_rollout_profile_is_found_relative_to_the_gate_profile(tmp_path: Path) -> None:
    profile = _gate(tmp_path, "rollouts/canary.yaml")
    plan = _plan(profile, CANDIDATE, BASELINE)
    assert plan is not None
    assert plan.source == tmp_path / "rollouts" / "canary.yaml"
    assert plan.spec.strategy == "canary" and plan.spec.steps == (0.5, 1.0)
    # The gate's stack is the candidate; --baseline is the running version.
    assert plan.candidate.name == "candidate-slow" and plan.baseline.name == "baseline"


def test_a_rollout_step_without_baseline_is_refused_naming_the_field(tmp_path: Path) -> None:
    profile = _gate(tmp_path, "rollouts/canary.yaml")
    with pytest.raises(ConfigError) as err:
        _plan(profile, CANDIDATE, None)
    text = str(err.value)
    assert "gate.yaml" in text and "rollout" in text and "--baseline" in text
    assert "canary rollout" in text and "the gate's stack is the candidate" in text


def test_baseline_without_a_rollout_step_is_refused(tmp_path: Path) -> None:
    profile = tmp_path / "gate.yaml"
    profile.write_text("kind: gate\nload: null\n")
    with pytest.raises(ConfigError) as err:
        _plan(profile, CANDIDATE, BASELINE)
    assert "--baseline" in str(err.value) and "asks for no rollout step" in str(err.value)
    assert _plan(profile, CANDIDATE, None) is None


def test_a_missing_rollout_profile_names_the_field(tmp_path: Path) -> None:
    profile = _gate(tmp_path, "rollouts/absent.yaml")
    with pytest.raises(ConfigError) as err:
        _plan(profile, CANDIDATE, BASELINE)
    assert "rollout.profile" in str(err.value) and "absent.yaml" in str(err.value)


def test_the_rollout_field_is_strict() -> None:
    spec = GateSpec.model_validate({"rollout": {"profile": "canary.yaml"}})
    assert spec.rollout is not None and spec.rollout.profile == "canary.yaml"
    assert GateSpec().rollout is None
    with pytest.raises(ValueError, match="strategy"):
        GateSpec.model_validate({"rollout": {"profile": "c.yaml", "strategy": "canary"}})


def test_a_scale_out_step_scales_the_gates_own_stack(tmp_path: Path) -> None:
    profile = _gate(tmp_path, "rollouts/scale.yaml")
    stack = FIXTURES / "scale-stack.yaml"
    plan = _plan(profile, stack, None)
    assert plan is not None and plan.baseline == plan.candidate
    with pytest.raises(ConfigError, match="leave --baseline out"):
        _plan(profile, stack, BASELINE)


def test_the_rollouts_own_checks_apply_to_the_gates_stack(tmp_path: Path) -> None:
    # The reference stack limits a key to 100 requests a minute; the canary offers 50 a second.
    profile = _gate(tmp_path, "rollouts/canary.yaml")
    sim = FIXTURES.parent / "sim-stack.yaml"
    with pytest.raises(ConfigError) as err:
        _plan(profile, sim, BASELINE)
    assert "sim-stack.yaml" in str(err.value) and "rate_rps" in str(err.value)


def test_validate_checks_the_rollout_profile_a_gate_names(tmp_path: Path) -> None:
    good = _gate(tmp_path, "rollouts/canary.yaml")
    assert load_yaml_model(GateSpec, good).rollout is not None
    (tmp_path / "rollouts" / "bad.yaml").write_text("kind: rollout\nsteps: [0.5, 0.05]\n")
    bad = tmp_path / "bad-gate.yaml"
    bad.write_text("kind: gate\nrollout: {profile: rollouts/bad.yaml}\n")
    r = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(good), str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "gate.yaml: valid gate spec" in r.stdout
    assert "bad.yaml" in r.stderr and "steps" in r.stderr and "Traceback" not in r.stderr


def test_the_gate_command_exits_2_before_starting_anything(tmp_path: Path) -> None:
    profile = _gate(tmp_path, "rollouts/canary.yaml")
    out = tmp_path / "out"
    argv = [sys.executable, "-m", "harness", "gate", "--profile", str(profile)]
    r = subprocess.run(
        [*argv, "--stack", str(CANDIDATE), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "gate.yaml" in r.stderr and "rollout" in r.stderr and "--baseline" in r.stderr
    assert "Traceback" not in r.stderr and not out.exists()
