"""A container's log file exists from its launch, as a process's does: a reader that opens it at
once must not depend on when the thread copying the container's output first runs."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

from harness.stack.docker import _LogPump


def test_the_log_file_exists_before_the_copying_thread_runs(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "redis.log"
    pump = _LogPump(SimpleNamespace(name="redis"), log)  # type: ignore[arg-type]
    assert not pump.is_alive()  # not started: nothing has copied anything yet
    assert log.exists() and log.read_text() == ""
