"""The benchmarks' figures, kept per commit: each run appends one JSON line to
`benchmarks/figures.jsonl` (the bench, its arguments, its figures, the commit, the machine and
the date), so a slide shows as a series rather than as a number that was quietly replaced.
Commit the line with the change it measures; the READMEs quote the latest.
"""

from __future__ import annotations

import json
import os
import platform
import subprocess
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
FIGURES = ROOT / "benchmarks" / "figures.jsonl"


def _git(*args: str) -> str:
    try:
        out = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, timeout=10)
    except (OSError, subprocess.SubprocessError):
        return ""
    return out.stdout.strip() if out.returncode == 0 else ""


def commit() -> str:
    """HEAD's short hash, `+changes` when the tree differs from it (what was measured)."""
    head = _git("rev-parse", "--short=12", "HEAD") or "unknown"
    dirty = _git("status", "--porcelain", "--untracked-files=no", "--", "harness", "stack")
    return head + ("+changes" if dirty else "")


def machine() -> dict[str, Any]:
    """What a figure depends on: the CPU, how many cores, the memory, the Python."""
    model = ""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return {
        "cpu": model or platform.processor() or platform.machine(),
        "cores": os.cpu_count(),
        "memory_gib": round(mem_gib, 1),
        "python": platform.python_version(),
        "load_average_1m": round(os.getloadavg()[0], 2),
    }


def record(bench: str, args: dict[str, Any], figures: dict[str, Any], path: Path = FIGURES) -> None:
    """Append one run's figures; say where."""
    line = {
        "bench": bench,
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "machine": machine(),
        "args": args,
        "figures": figures,
    }
    with path.open("a", encoding="utf-8") as f:
        f.write(json.dumps(line, sort_keys=True) + "\n")
    print(f"figures appended to {path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}")
