"""Epoch seconds from the monotonic clock: comparable across processes, immune to NTP steps.

The anchor (wall - monotonic) is taken once, by the harness process, and handed to the load
processes it starts (`ANCHOR_ENV`), so the fault times it records and the samples its workers
write are on one clock: anchored per process, a wall-clock step between the harness's start and
a worker's (a VM's clock corrected after a pause: 11 s once, minutes into a gate) put a fault
11 s off its requests. A worker started elsewhere (`--master-bind`) anchors itself.
"""

from __future__ import annotations

import os
import time

ANCHOR_ENV = "HARNESS_CLOCK_ANCHOR"
_ANCHOR = (
    float(os.environ[ANCHOR_ENV]) if ANCHOR_ENV in os.environ else time.time() - time.perf_counter()
)


def now() -> float:
    return _ANCHOR + time.perf_counter()


def anchor_env() -> dict[str, str]:
    """The environment entry that puts a child process on this process's clock."""
    return {ANCHOR_ENV: repr(_ANCHOR)}
