"""Children the tests start, as a user's terminal starts them."""

from __future__ import annotations

import signal
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from harness.stack.process import ProcessService


def default_sigint() -> None:
    """A `preexec_fn`: SIGINT back to its default. A test run started as a background job of a
    non-interactive shell inherits SIGINT ignored, and Python then installs no KeyboardInterrupt
    handler: a test that presses Ctrl-C on the harness would see it ignored."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


def interrupt_after(argv: list[str], line_marker: str, wait_s: float) -> tuple[int, str, set[int]]:
    """Start `argv` as a terminal would, press Ctrl-C `wait_s` after a line containing
    `line_marker` (or two minutes), and return its exit code, its output and the PIDs of its
    descendants just before the Ctrl-C (none may outlive it)."""
    import subprocess
    import time

    from harness.stack.process import descendants

    proc = subprocess.Popen(
        argv,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        preexec_fn=default_sigint,  # Ctrl-C must reach it
    )
    assert proc.stdout is not None
    seen = []
    deadline = time.monotonic() + 120
    for line in proc.stdout:
        seen.append(line)
        if line_marker in line or time.monotonic() > deadline:
            break
    time.sleep(wait_s)
    pids = descendants(proc.pid)
    proc.send_signal(signal.SIGINT)
    rest, _ = proc.communicate(timeout=120)
    return proc.returncode, "".join(seen) + rest, pids


def bare_service(
    name: str, argv: list[str], log: Path, env: dict[str, str] | None = None
) -> ProcessService:
    """A `ProcessService` of `argv` with placeholder port, readiness and image: for tests of
    starting, sampling and stopping, which never wait for it to be ready."""
    from harness.stack.plan import ServiceDef
    from harness.stack.process import ProcessService
    from harness.stack.readiness import TcpReady

    definition = ServiceDef(
        name=name,
        role="test",
        argv=argv,
        port=1,
        ready=TcpReady("127.0.0.1", 1),
        image="none",
        tier=0,
        env=env or {},
    )
    return ProcessService(definition, log)
