"""chaos/README.md documents the whole experiment format, and `harness chaos list` shows every
experiment: a kind, parameter or metric added to the models without a word in the README fails."""

from __future__ import annotations

import subprocess
import sys

import pytest
from pydantic import BaseModel

from harness.chaos.catalog import experiment_files
from harness.paths import PROJECT_ROOT
from harness.spec.experiment import (
    FAULT_KINDS,
    AlertExpectation,
    Expectations,
    ExperimentSpec,
    LiveRules,
)
from harness.spec.loader import load_yaml_model
from harness.spec.slo import DISTRIBUTIONS, SCALARS, STATS
from harness.spec.stack import FaultsSpec, GpuSimExporterSpec

README = (PROJECT_ROOT / "chaos" / "README.md").read_text()


def _section(kind: str) -> str:
    """The README's text about one fault kind: from its bold heading to the next one."""
    start = README.index(f"**`{kind}`**")
    nxt = README.find("**`", start + 1)
    return README[start : nxt if nxt != -1 else len(README)]


@pytest.mark.parametrize("model", FAULT_KINDS, ids=lambda m: m.__name__)
def test_every_fault_kind_and_parameter_is_documented(model: type[BaseModel]) -> None:
    kind = model.model_fields["kind"].default
    text = _section(kind)
    for name in model.model_fields:
        if name in ("kind", "targets"):
            continue
        # A toxic's shared parameters are documented once, for every toxic.
        where = README if name in ("stream", "toxicity") else text
        assert f"`{name}`" in where, f"{kind}.{name} is not in chaos/README.md"
    assert f"kind: {kind}" in text, f"no example of {kind}"


@pytest.mark.parametrize(
    "model",
    [ExperimentSpec, Expectations, AlertExpectation, LiveRules, FaultsSpec, GpuSimExporterSpec],
    ids=lambda m: m.__name__,
)
def test_every_field_of_the_format_is_documented(model: type[BaseModel]) -> None:
    for name in model.model_fields:
        assert f"`{name}`" in README or f"{name}:" in README, f"{model.__name__}.{name}"


def test_every_expectation_metric_and_phase_is_documented() -> None:
    for name in (*SCALARS, *DISTRIBUTIONS, *STATS, "before", "during", "after"):
        assert f"`{name}`" in README, name


def test_the_readme_lists_every_experiment_here() -> None:
    for path in experiment_files([]):
        assert f"`{path.name}`" in README or path.name in README, path.name


def test_chaos_list_shows_title_fault_and_expectations() -> None:
    r = subprocess.run(
        [sys.executable, "-m", "harness", "chaos", "list"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 0, r.stderr
    for path in experiment_files([]):
        exp = load_yaml_model(ExperimentSpec, path)
        assert f"{path.name}: {exp.title}" in r.stdout
        assert f"fault:  {exp.fault.kind} on {', '.join(exp.fault.targets)}" in r.stdout
        for expr in (*exp.expect.before, *exp.expect.during, *exp.expect.after):
            assert expr in r.stdout
        for alert in exp.expect.alerts:
            assert f"{alert.alert} fires within" in r.stdout


def test_chaos_list_refuses_a_bad_file(tmp_path) -> None:  # type: ignore[no-untyped-def]
    bad = tmp_path / "bad.yaml"
    bad.write_text("kind: experiment\ntitle: x\nfault: {kind: latency, targets: [p]}\n")
    r = subprocess.run(
        [sys.executable, "-m", "harness", "chaos", "list", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stdout + r.stderr
    assert "latency_ms" in r.stderr and "Traceback" not in r.stderr
