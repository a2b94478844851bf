"""Epoch seconds from the monotonic clock: comparable across worker processes, immune to NTP steps.

The anchor (wall - monotonic) is taken once per process; every timestamp after that is monotonic.
"""

from __future__ import annotations

import time

_ANCHOR = time.time() - time.perf_counter()


def now() -> float:
    return _ANCHOR + time.perf_counter()
