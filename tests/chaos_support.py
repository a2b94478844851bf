"""`harness chaos` as the chaos tests run it: experiment files on a stack spec, one report."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

from harness.paths import PROJECT_ROOT

SIM_STACK = PROJECT_ROOT / "tests" / "fixtures" / "sim-stack.yaml"
# The simulated stack with HTTP fault fronts and the simulated GPU exporter.
SIM_CHAOS_STACK = PROJECT_ROOT / "tests" / "fixtures" / "sim-chaos-stack.yaml"
CHAOS = PROJECT_ROOT / "chaos"


def run_chaos(
    tmp_path: Path,
    *experiments: str | Path,
    stack: Path = SIM_STACK,
    timeout_s: float = 900,
    options: tuple[str, ...] = (),
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    """Run the experiments (names in chaos/, or paths) on `stack` with the command's `options`;
    the result and report.json."""
    out = tmp_path / "out"
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "harness",
            "chaos",
            *(str(CHAOS / e) for e in experiments),  # a path replaces CHAOS
            *options,
            "--stack",
            str(stack),
            "--out",
            str(out),
        ],
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    report = json.loads((out / "report.json").read_text())
    return r, report
