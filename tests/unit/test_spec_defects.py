"""Broken spec files are refused with file, line or field, and what was expected; never a
traceback. Each test plants one defect."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.spec.experiment import ExperimentSpec
from harness.spec.kinds import validate_file
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec

ROOT = Path(__file__).parents[2]
SIM_STACK = ROOT / "tests" / "fixtures" / "sim-stack.yaml"


def _error(path: Path, **kw: bool) -> str:
    with pytest.raises(ConfigError) as info:
        load_yaml_model(StackSpec, path, **kw)
    return str(info.value)


def test_non_utf8_file_names_the_line_and_byte(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_bytes(b"kind: stack\nname: caf\xe9\n")
    msg = _error(p)
    assert "line 2, column 10" in msg and "not UTF-8 (byte 0xe9)" in msg and str(p) in msg


def test_binary_file_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_bytes(b"\x7fELF\x02\x01\x01\x00\x00\x00")
    assert "binary file" in _error(p)


def test_duplicate_key_names_both_lines(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("kind: stack\nprimary:\n  replicas: 1\n  replicas: 3\n")
    msg = _error(p)
    assert "line 4" in msg and "duplicate key 'replicas' (first given on line 3)" in msg


def test_duplicate_top_level_key(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("name: a\nkind: stack\nname: b\n")
    assert "duplicate key 'name'" in _error(p)


def test_merge_keys_may_be_overridden(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    p.write_text("kind: stack\nprimary: &p {replicas: 1}\nfallback:\n  <<: *p\n  replicas: 2\n")
    spec = load_yaml_model(StackSpec, p)
    assert spec.fallback.replicas == 2


@pytest.mark.parametrize("text", ["", "\n\n", "# only a comment\n", "~\n"])
def test_empty_file_is_refused_unless_allowed(tmp_path: Path, text: str) -> None:
    p = tmp_path / "s.yaml"
    p.write_text(text)
    assert "the file is empty" in _error(p) and "--allow-empty" in _error(p)
    assert load_yaml_model(StackSpec, p, allow_empty=True) == StackSpec()


def test_odd_keys_and_values_are_config_errors(tmp_path: Path) -> None:
    p = tmp_path / "s.yaml"
    for text in (
        "1: 2\n",
        "true: x\n",
        "2024-01-01: x\n",
        "? [a, b]\n: c\n",
        "primary: [1]\n",
        "name: !!python/object:os.system x\n",
        "a: *nope\n",
        "\t- x\n",
    ):
        p.write_text(text)
        _error(p)


def test_validate_file_reads_bytes_itself(tmp_path: Path) -> None:
    p = tmp_path / "e.yaml"
    p.write_bytes(b"kind: experiment\ntitle: \xff\n")
    with pytest.raises(ConfigError, match="not UTF-8"):
        validate_file(p)


def _validate(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "harness", "validate", *args],
        capture_output=True,
        text=True,
        timeout=60,
    )


def test_gate_profile_naming_a_missing_experiment(tmp_path: Path) -> None:
    p = tmp_path / "gate.yaml"
    p.write_text(f"kind: gate\nstack: {SIM_STACK}\nexperiments: [nope.yaml]\n")
    r = _validate(str(p))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    assert "experiments[0]: 'nope.yaml' does not exist" in r.stderr
    assert str(tmp_path / "nope.yaml") in r.stderr


def test_gate_profile_naming_a_missing_stack(tmp_path: Path) -> None:
    p = tmp_path / "gate.yaml"
    p.write_text("kind: gate\nstack: ../no/stack.yaml\n")
    r = _validate(str(p))
    assert r.returncode == 2 and "stack: '../no/stack.yaml' does not exist" in r.stderr, r.stderr


EXPERIMENT = """\
kind: experiment
title: t
fault: {kind: proxy_down, targets: [primary-0]}
expect:
  alerts: [{alert: HighErrorRate}, {alert: NoSuchAlert}]
"""


def test_experiment_naming_an_unknown_alert_rule(tmp_path: Path) -> None:
    p = tmp_path / "e.yaml"
    p.write_text(EXPERIMENT)
    r = _validate(str(p), "--stack", str(SIM_STACK))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "expect.alerts[1].alert: unknown 'NoSuchAlert'" in r.stderr
    assert "GPUMemoryHigh, HighErrorRate, SlowResponse" in r.stderr


def test_gate_profile_whose_experiment_names_unknown_things(tmp_path: Path) -> None:
    (tmp_path / "e.yaml").write_text(
        EXPERIMENT.replace("primary-0", "primary-9").replace(
            "title: t", "title: t\nload: {kind: load, model: no-such-model, duration_s: 30s}"
        )
    )
    p = tmp_path / "gate.yaml"
    p.write_text(f"kind: gate\nstack: {SIM_STACK}\nexperiments: [e.yaml]\n")
    r = _validate(str(p))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "fault.targets: unknown 'primary-9'" in r.stderr
    assert "load.model: unknown 'no-such-model'" in r.stderr and "sim-model" in r.stderr


def test_gate_refuses_before_starting_anything(tmp_path: Path) -> None:
    p = tmp_path / "gate.yaml"
    p.write_text("kind: gate\nexperiments: [missing.yaml]\n")
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "gate",
            "--profile",
            str(p),
            "--stack",
            str(SIM_STACK),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "HARNESS_RUNS_DIR": str(tmp_path / "runs")},
    )
    assert r.returncode == 2 and "experiments[0]" in r.stderr, r.stderr
    assert not (tmp_path / "out").exists()


def test_validate_allow_empty(tmp_path: Path) -> None:
    p = tmp_path / "empty.yaml"
    p.write_text("")
    r = _validate(str(p))
    assert r.returncode == 2 and "empty" in r.stderr, r.stderr
    r = _validate(str(p), "--allow-empty")
    assert r.returncode == 0 and "valid stack spec" in r.stdout, r.stderr


def test_every_defect_through_the_cli_exits_2_without_traceback(tmp_path: Path) -> None:
    files = {
        "latin1.yaml": b"name: caf\xe9\n",
        "binary.yaml": bytes(range(256)),
        "dup.yaml": b"kind: gate\nname: a\nname: b\n",
        "empty.yaml": b"",
        "list.yaml": b"- a\n- b\n",
        "deep.yaml": b"a: " + b"[" * 5000 + b"]" * 5000 + b"\n",
    }
    for name, data in files.items():
        (tmp_path / name).write_bytes(data)
    r = _validate(*(str(tmp_path / n) for n in files))
    assert r.returncode == 2 and "Traceback" not in r.stderr, r.stderr
    for name in files:
        assert f"invalid configuration in {tmp_path / name}" in r.stderr, (name, r.stderr)


def test_shipped_experiments_name_only_what_the_reference_stack_has() -> None:
    from harness.spec.experiment import apply_stack_overrides
    from harness.stack.names import experiment_problems

    stack = load_yaml_model(StackSpec, ROOT / "stack" / "stack.yaml")
    for path in sorted((ROOT / "chaos").glob("*.yaml")):
        exp = load_yaml_model(ExperimentSpec, path)
        merged = apply_stack_overrides(stack, [exp.stack_overrides], str(path))
        assert experiment_problems(exp, merged) == [], path


def test_run_experiment_refuses_an_unknown_alert_before_any_load(tmp_path: Path) -> None:
    """Experiments run from Python (pytest -m chaos) get the same check as the CLI's."""
    from types import SimpleNamespace
    from typing import cast

    from harness.chaos.runner import run_experiment
    from harness.stack import RunningStack

    p = tmp_path / "e.yaml"
    p.write_text(EXPERIMENT)
    exp = load_yaml_model(ExperimentSpec, p)
    stack = SimpleNamespace(
        spec=load_yaml_model(StackSpec, SIM_STACK),
        endpoints=SimpleNamespace(proxies={"primary-0": "x"}),
        services={},
    )
    with pytest.raises(ConfigError, match="no alert rule named NoSuchAlert"):
        run_experiment(exp, cast(RunningStack, stack), tmp_path, source=str(p))
    assert not (tmp_path / "samples").exists()


def test_alias_bombs_are_refused_and_quoted_values_cut_short(tmp_path: Path) -> None:
    p = tmp_path / "g.yaml"
    p.write_text("a: &a [1]\n" + "".join(f"k{i}: *a\n" for i in range(201)))
    assert "line 202, column 7: not valid YAML: more than 200 aliases" in _error(p)
    p.write_text("kind: gate\nslos: [" + ", ".join(["[" * 5 + "1" + "]" * 5] * 50) + "]\n")
    with pytest.raises(ConfigError) as info:
        validate_file(p)
    assert all(len(line) < 300 for line in str(info.value).splitlines())


def test_gate_load_naming_a_model_no_pool_serves(tmp_path: Path) -> None:
    p = tmp_path / "gate.yaml"
    p.write_text(f"kind: gate\nstack: {SIM_STACK}\nload: {{kind: load, model: nope}}\n")
    r = _validate(str(p))
    assert r.returncode == 2, r.stdout + r.stderr
    assert "load.model: unknown 'nope'; expected one of the stack's served models" in r.stderr
