"""Shared by the tests of the SIGKILL watchdog: finding the watchdogs a harness started."""

from __future__ import annotations

import os
from pathlib import Path


def watchdogs_of(pid: int) -> list[int]:
    """Watchdog processes (harness/stack/watchdog.py) started by harness process `pid`."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            argv = Path(f"/proc/{entry}/cmdline").read_bytes().rstrip(b"\0").split(b"\0")
        except OSError:
            continue
        # Any checkout's watchdog script, so an absence check cannot pass on a path mismatch.
        if len(argv) > 2 and argv[-2].endswith(b"/watchdog.py") and argv[-1] == str(pid).encode():
            found.append(int(entry))
    return found
