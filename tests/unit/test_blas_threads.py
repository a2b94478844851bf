"""The harness's own processes load numpy with one BLAS thread; the services it starts do not
inherit that setting, and a user's own setting is kept."""

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
from process_support import bare_service

import harness.stack.process as process

SHOW = "import os, harness; print(os.environ.get('OPENBLAS_NUM_THREADS'), harness.SERVICE_ENV_DROP)"


def _run(env: dict[str, str]) -> str:
    out = subprocess.run([sys.executable, "-c", SHOW], env=env, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    return out.stdout.strip()


def test_the_harness_sets_one_blas_thread_unless_the_user_chose() -> None:
    env = {k: v for k, v in os.environ.items() if k != "OPENBLAS_NUM_THREADS"}
    assert _run(env) == "1 ('OPENBLAS_NUM_THREADS',)"
    assert _run({**env, "OPENBLAS_NUM_THREADS": "4"}) == "4 ()"


def test_a_service_gets_the_environment_without_the_harness_own_setting(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "1")
    monkeypatch.setattr(process, "SERVICE_ENV_DROP", ("OPENBLAS_NUM_THREADS",))
    seen = tmp_path / "env.txt"
    code = (
        f"import os; open({str(seen)!r}, 'w').write(repr((os.environ.get('OPENBLAS_NUM_THREADS'), "
        "os.environ.get('KEPT'))))"
    )
    svc = bare_service("env", [sys.executable, "-c", code], tmp_path / "env.log", {"KEPT": "1"})
    svc.start()
    deadline = time.monotonic() + 10
    while svc.alive() and time.monotonic() < deadline:
        time.sleep(0.02)
    svc.stop()
    assert seen.read_text() == "(None, '1')"
