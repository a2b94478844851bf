"""A niced harness keeps its services niced.

Every service and Locust process runs in a session of its own (`start_new_session`), and where
the kernel groups scheduling by session (autogroup, on by default in desktop and many server
kernels) a new session starts at nice 0 whatever the nice value of the process that made it:
`nice harness gate` would still run its stack at full weight beside everything else. The new
session's group is given the caller's nice value (raising it needs no privilege).
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path


def keep_niceness(pid: int) -> None:
    """Give the session group of `pid` (just started in a new session) this process's nice
    value, when it is above 0 and the kernel groups by session; otherwise nothing."""
    nice = os.getpriority(os.PRIO_PROCESS, 0)
    if nice <= 0:
        return
    with contextlib.suppress(OSError):  # no autogroup here, or the process is already gone
        Path(f"/proc/{pid}/autogroup").write_text(str(nice))
