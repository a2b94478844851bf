"""Where and from what a report was made: commit, host, time (reports describe themselves)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import UTC, datetime

from harness.paths import PROJECT_ROOT


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def git_sha() -> str | None:
    return _git("rev-parse", "HEAD") or None


def git_dirty() -> bool | None:
    status = _git("status", "--porcelain", "--untracked-files=no")
    return None if status is None else bool(status)


def host_info() -> dict[str, str | int]:
    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count() or 0,
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")
