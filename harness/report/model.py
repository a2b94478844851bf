"""RunReport: describes a run well enough to rerun it (versions, commit, host, full spec)."""

from __future__ import annotations

import platform
import socket
import subprocess
from datetime import UTC, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from harness import __version__
from harness.paths import PROJECT_ROOT
from harness.verdict.checks import CheckResult

SCHEMA_VERSION = 1
RunOutcome = Literal["passed", "failed", "error", "interrupted", "running"]


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(
            ["git", *args], cwd=PROJECT_ROOT, capture_output=True, text=True, timeout=5
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


def host_info() -> dict[str, str | int]:
    import os

    return {
        "hostname": socket.gethostname(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpus": os.cpu_count() or 0,
    }


def now_iso() -> str:
    return datetime.now(UTC).isoformat(timespec="milliseconds")


class RunReport(BaseModel):
    # Stored output: unknown fields from newer versions are ignored, so old readers still load it.
    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    harness_version: str = __version__
    git_sha: str | None = Field(default_factory=lambda: _git("rev-parse", "HEAD"))
    git_dirty: bool | None = Field(
        default_factory=lambda: bool(_git("status", "--porcelain", "--untracked-files=no"))
    )
    host: dict[str, str | int] = Field(default_factory=host_info)
    command: str = ""
    name: str = "gate"
    started_at: str = Field(default_factory=now_iso)
    finished_at: str | None = None
    duration_s: float | None = None
    outcome: RunOutcome = "running"
    exit_code: int | None = None
    errors: list[str] = Field(default_factory=list)
    stack_spec: dict[str, Any] = Field(default_factory=dict)
    gate_spec: dict[str, Any] = Field(default_factory=dict)
    endpoints: dict[str, Any] | None = None
    startup_seconds: float | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    load: dict[str, Any] | None = None
    alerts: list[dict[str, Any]] = Field(default_factory=list)
    # CPU and peak memory of each service during the load step.
    resources: list[dict[str, Any]] = Field(default_factory=list)
    # Journal of each chaos experiment: the experiment, fault times, phase summaries, checks.
    experiments: list[dict[str, Any]] = Field(default_factory=list)
    run_dir: str | None = None

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.outcome] = out.get(c.outcome, 0) + 1
        return out
