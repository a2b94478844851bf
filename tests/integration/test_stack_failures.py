"""Start-up failures are named with evidence, and nothing is left behind."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.errors import ServiceStartError
from harness.spec.loader import parse_model
from harness.spec.stack import StackSpec
from harness.stack import start_stack
from harness.stack.ports import port_is_listening

pytestmark = [pytest.mark.integration]

HARNESS = [sys.executable, "-m", "harness"]


def test_a_service_that_cannot_start_is_named_with_its_log_tail(tmp_path: Path) -> None:
    bogus = tmp_path / "no-such-model.gguf"
    spec = parse_model(
        StackSpec, {"primary": {"replicas": 1, "server": {"model_path": str(bogus)}}}, "test"
    )
    seen: list[str] = []
    with (
        pytest.raises(ServiceStartError) as info,
        start_stack(spec, run_dir=tmp_path / "run", progress=seen.append),
    ):
        pytest.fail("the stack must not come up")
    err = info.value
    assert err.service == "primary-0"
    assert "exited with code" in str(err)
    assert err.log_tail, "the error must carry the service's log tail"
    # Everything that did start (toxiproxy, redis, alertmanager, ...) was stopped again.
    run = tmp_path / "run"
    assert (run / "logs" / "primary-0.log").exists()
    assert any("stopping" in line for line in seen)
    prom = yaml.safe_load((run / "config" / "prometheus.yml").read_text())
    ports = [
        int(target.rsplit(":", 1)[1])
        for job in prom["scrape_configs"]
        for group in job["static_configs"]
        for target in group["targets"]
    ]
    held = [p for p in ports if port_is_listening(p)]
    assert not held, f"ports still held after a failed start: {held}"


def test_cli_validate_exits_2_with_file_and_field(tmp_path: Path) -> None:
    bad = tmp_path / "stack.yaml"
    bad.write_text("gateway:\n  replicas: 0\n")
    r = subprocess.run([*HARNESS, "validate", str(bad)], capture_output=True, text=True)
    assert r.returncode == 2
    assert f"{bad}: gateway.replicas" in r.stderr


def test_cli_up_with_a_bad_spec_starts_nothing(tmp_path: Path) -> None:
    bad = tmp_path / "stack.yaml"
    bad.write_text("primary:\n  replicas: many\n")
    r = subprocess.run(
        [*HARNESS, "up", "--stack", str(bad), "--run-dir", str(tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2, r.stderr
    assert "primary.replicas" in r.stderr
    assert not (tmp_path / "run").exists()
