"""The load processes the harness starts share its clock: the anchor is handed down, so a
wall-clock step between the harness's start and a worker's cannot move the worker's samples off
the harness's fault times."""

from __future__ import annotations

import os
import subprocess
import sys

from harness.load import clock

PRINT_ANCHOR = "from harness.load import clock; print(repr(clock._ANCHOR))"


def child_anchor(env: dict[str, str]) -> float:
    out = subprocess.run(
        [sys.executable, "-c", PRINT_ANCHOR], env=env, capture_output=True, text=True, check=True
    )
    return float(out.stdout)


def test_a_child_given_the_anchor_is_on_the_parents_clock() -> None:
    base = {k: v for k, v in os.environ.items() if k != clock.ANCHOR_ENV}
    # A stand-in for a wall clock stepped 11 s since the harness started.
    stepped = clock._ANCHOR + 11.0
    assert child_anchor({**base, clock.ANCHOR_ENV: repr(stepped)}) == stepped
    assert child_anchor({**base, **clock.anchor_env()}) == clock._ANCHOR
