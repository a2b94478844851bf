"""Rollouts with `--provider docker`: both versions, the split front and the replaced replicas as
containers, every reload (the front's weights, the gateways' pools) through the engine's API.

A blue-green of an identical candidate switches and rolls back without losing a stream; a rolling
update replaces each primary replica with a container of the candidate's server, drained first.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from docker_support import DOCKER_SUITE, SIM_IMAGES, Engine

from harness.paths import PROJECT_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow, *DOCKER_SUITE]

FIXTURES = PROJECT_ROOT / "tests" / "fixtures" / "rollout"


def _rollout(tmp_path: Path, candidate: str, profile: str) -> tuple[str, dict[str, Any]]:
    out = tmp_path / "out"
    argv = [
        *(sys.executable, "-m", "harness", "rollout", "--provider", "docker"),
        *("--baseline", str(FIXTURES / "baseline.yaml")),
        *("--candidate", str(FIXTURES / candidate)),
        *("--profile", str(FIXTURES / profile), "--out", str(out)),
    ]
    r = subprocess.run(argv, capture_output=True, text=True, timeout=600)
    output = r.stdout[-4000:] + r.stderr[-2000:]
    assert r.returncode == 0, output
    return output, json.loads((out / "report.json").read_text())


def _containers(engine: Engine) -> list[str]:
    return [str(c.name) for c in engine.client.containers.list(all=True)]


def test_blue_green_on_containers_switches_and_rolls_back_without_losing_a_stream(
    docker_engine: Engine, tmp_path: Path
) -> None:
    docker_engine.require(*SIM_IMAGES)
    _, report = _rollout(tmp_path, "baseline.yaml", "blue-green.yaml")
    moves = [c for c in report["checks"] if "->" in c["name"]]
    assert len(moves) >= 2, report["checks"]
    for check in moves:
        m = check["measured"]
        assert check["outcome"] == "pass", check
        assert m["requests"] > 0 and m["failed"] == m["cut_silently"] == 0
    assert _containers(docker_engine) == []


def test_a_rolling_update_replaces_each_replica_with_a_container(
    docker_engine: Engine, tmp_path: Path
) -> None:
    docker_engine.require(*SIM_IMAGES)
    _, report = _rollout(tmp_path, "candidate-rolling.yaml", "rolling.yaml")
    replaced = [c for c in report["checks"] if c["name"].startswith("rolling update:")]
    assert [c["outcome"] for c in replaced] == ["pass", "pass"], replaced
    for check in replaced:
        m = check["measured"]
        assert m["failed"] == m["cut_silently"] == 0 and m["cold_start_s"] > 0
    logs = tmp_path / "out" / "baseline" / "logs"
    # Each gateway container re-read its pools four times (out and back in, per replica).
    for gateway in ("gateway-0", "gateway-1"):
        assert (logs / f"{gateway}.log").read_text().count('"pools_reloaded"') == 4
    assert _containers(docker_engine) == []
