"""The `harness` command with `--provider docker`: what a user types, end to end.

`harness up` brings the simulated stack up as containers and goes away on SIGTERM without leaving
a container; `harness chaos` runs an experiment of chaos/ on the container stack and judges it.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
from chaos_support import run_chaos
from docker_support import DOCKER_SUITE, SIM_IMAGES, Engine

from harness.paths import PROJECT_ROOT

pytestmark = [pytest.mark.docker, pytest.mark.slow, *DOCKER_SUITE]

SIM_STACK = PROJECT_ROOT / "tests" / "fixtures" / "sim-stack.yaml"


def _containers(engine: Engine) -> list[str]:
    return [str(c.name) for c in engine.client.containers.list(all=True)]


def _wait_ready_file(proc: subprocess.Popen[str], ready: Path, timeout_s: float) -> dict:  # type: ignore[type-arg]
    deadline = time.monotonic() + timeout_s
    while not ready.exists():
        if proc.poll() is not None:
            raise AssertionError(f"harness up exited {proc.returncode}: {proc.stdout.read()}")  # type: ignore[union-attr]
        assert time.monotonic() < deadline, f"no ready file after {timeout_s}s"
        time.sleep(0.2)
    return json.loads(ready.read_text())  # type: ignore[no-any-return]


def test_harness_up_with_docker_streams_through_nginx_and_sigterm_leaves_nothing(
    docker_engine: Engine, tmp_path: Path
) -> None:
    docker_engine.require(*SIM_IMAGES)
    assert _containers(docker_engine) == []
    ready = tmp_path / "endpoints.json"
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "harness",
            "up",
            "--provider",
            "docker",
            "--stack",
            str(SIM_STACK),
            "--ready-file",
            str(ready),
            "--run-dir",
            str(tmp_path / "run"),
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        endpoints = _wait_ready_file(proc, ready, timeout_s=120)
        assert endpoints["nginx"].startswith("http://127.0.0.1:")
        assert len(_containers(docker_engine)) >= 10  # every service is a container
        text = ""
        with httpx.stream(
            "POST",
            f"{endpoints['nginx']}/v1/chat/completions",
            json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 8, "stream": True},
            headers={"Authorization": f"Bearer {endpoints['api_key']}"},
            timeout=30,
        ) as r:
            assert r.status_code == 200, r.read()
            for line in r.iter_lines():
                if line.startswith("data: ") and line != "data: [DONE]":
                    for choice in json.loads(line[6:])["choices"]:
                        text += (choice.get("delta") or {}).get("content") or ""
        assert text
    finally:
        proc.send_signal(signal.SIGTERM)
        output = proc.communicate(timeout=90)[0]
    assert proc.returncode in (0, 130, 143), output[-3000:]
    assert not ready.exists(), "the ready file outlived the stack"
    assert _containers(docker_engine) == [], output[-3000:]


@pytest.mark.chaos
def test_chaos_experiment_on_the_container_stack(docker_engine: Engine, tmp_path: Path) -> None:
    docker_engine.require(*SIM_IMAGES)
    r, report = run_chaos(
        tmp_path,
        "primary-down-fallback.yaml",
        stack=SIM_STACK,
        timeout_s=600,
        options=("--provider", "docker"),
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert report["outcome"] == "passed"
    (journal,) = report["experiments"]
    assert journal["phases"]["during"]["served"]["counts"].get("fallback", 0) > 0
    assert _containers(docker_engine) == []
