"""A container's log file exists from its launch, as a process's does: a reader that opens it at
once must not depend on when the thread copying the container's output first runs. And it
follows the container across a restart, each line once."""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from types import SimpleNamespace

from harness.stack.docker import _LogPump


def test_the_log_file_exists_before_the_copying_thread_runs(tmp_path: Path) -> None:
    log = tmp_path / "logs" / "redis.log"
    pump = _LogPump(SimpleNamespace(name="redis"), log)  # type: ignore[arg-type]
    assert not pump.is_alive()  # not started: nothing has copied anything yet
    assert log.exists() and log.read_text() == ""


def _epoch_s(stamp: str) -> float:
    return datetime.fromisoformat(stamp.replace("Z", "")[:26] + "+00:00").timestamp()


class FakeRestartedContainer:
    """Stands in for the engine's container: two starts of one log, where the second start's
    first lines carry stamps before its StartedAt (the engine records StartedAt after the
    process started; a restarted Redis on a busy machine had already logged its "Ready").
    `logs` filters by `since` as the engine does: whole or fractional seconds, inclusive."""

    START_1 = "2026-12-07T13:34:01.100000000Z"
    START_2 = "2026-12-07T13:34:07.882569952Z"
    LINES = [
        ("2026-12-07T13:34:01.100100000Z", b"1 starting\n"),
        ("2026-12-07T13:34:01.100200000Z", b"1 Ready to accept connections\n"),
        ("2026-12-07T13:34:07.882000000Z", b"2 starting\n"),  # before START_2
        ("2026-12-07T13:34:07.882500000Z", b"2 Ready to accept connections\n"),  # before START_2
        ("2026-12-07T13:34:07.990000000Z", b"2 after its StartedAt\n"),
    ]

    def __init__(self) -> None:
        self.name, self.id, self.client = "redis", "c1", None
        self.attrs: dict[str, dict[str, str]] = {"State": {"StartedAt": self.START_1}}
        self.attached = 0

    def reload(self) -> None:
        pass

    def logs(self, *, stream: bool, follow: bool, since: float | None, timestamps: bool = False):  # type: ignore[no-untyped-def]
        self.attached += 1
        first_run = self.attrs["State"]["StartedAt"] == self.START_1
        lines = self.LINES[:2] if first_run else self.LINES
        for stamp, line in lines:
            if since is not None and _epoch_s(stamp) < since:
                continue
            yield (stamp.encode() + b" " + line) if timestamps else line
        if first_run:  # killed, then restarted: the followed stream ends
            self.attrs["State"]["StartedAt"] = self.START_2


def test_a_restarted_containers_lines_are_copied_once_even_if_stamped_before_its_start(
    tmp_path: Path,
) -> None:
    container = FakeRestartedContainer()
    log = tmp_path / "redis.log"
    pump = _LogPump(container, log)  # type: ignore[arg-type]
    pump.start()
    deadline = time.monotonic() + 5
    while container.attached < 2 and time.monotonic() < deadline:
        time.sleep(0.05)
    time.sleep(0.3)  # the second stream copied (it ends at once)
    pump.finish()
    assert log.read_bytes() == b"".join(line for _, line in container.LINES)
