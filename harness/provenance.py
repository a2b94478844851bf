"""Where and from what a report was made: commit, host, time (reports describe themselves)."""

from __future__ import annotations

import os
import platform
import socket
import subprocess
from datetime import UTC, datetime

from pydantic import BaseModel, ConfigDict

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


class HostInfo(BaseModel):
    """The machine a run was made on, the same fields in every report."""

    model_config = ConfigDict(extra="ignore")  # stored: lenient
    hostname: str = ""
    platform: str = ""
    python: str = ""
    cpus: int = 0


def host_info() -> HostInfo:
    return HostInfo(
        hostname=socket.gethostname(),
        platform=platform.platform(),
        python=platform.python_version(),
        cpus=os.cpu_count() or 0,
    )


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


def iso_at(epoch_s: float) -> str:
    """A time.time() stamp as now_iso() writes one."""
    return datetime.fromtimestamp(epoch_s, UTC).isoformat(timespec="milliseconds")
