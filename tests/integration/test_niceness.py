"""A niced harness keeps its services niced: a process started in a session of its own by a
process at nice 7 runs at nice 7 and, where the kernel groups scheduling by session, so does its
new session's group (which otherwise starts at 0 and gets a full share of the CPU)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = [pytest.mark.integration]

CHILD = """
import os, subprocess, sys
from harness.niceness import keep_niceness
proc = subprocess.Popen(["sleep", "30"], start_new_session=True)
if sys.argv[1] == "keep":
    keep_niceness(proc.pid)
try:
    group = open(f"/proc/{proc.pid}/autogroup").read().strip()
except OSError:
    group = "none"
print(os.getpriority(os.PRIO_PROCESS, proc.pid), group)
proc.kill()
proc.wait()
"""


def _spawned(nice: int, keep: bool) -> tuple[int, str]:
    out = subprocess.run(
        ["nice", "-n", str(nice), sys.executable, "-c", CHILD, "keep" if keep else "plain"],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    ).stdout.split(maxsplit=1)
    return int(out[0]), out[1].strip()


def test_a_service_of_a_niced_harness_is_niced_in_its_own_session() -> None:
    nice, group = _spawned(7, keep=True)
    assert nice == 7
    if Path("/proc/self/autogroup").exists():
        assert group.endswith("nice 7"), group
        # Without it the new session's group starts at 0: what the function is for.
        _, plain = _spawned(7, keep=False)
        assert plain.endswith("nice 0"), plain


def test_a_harness_at_nice_0_leaves_its_services_alone() -> None:
    nice, group = _spawned(0, keep=True)
    assert nice == 0
    assert group == "none" or group.endswith("nice 0"), group
