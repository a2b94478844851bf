"""Where the project keeps what `make install` puts in place (git-ignored `.tools/`)."""

from __future__ import annotations

import os
import sys
from datetime import datetime
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STACK_DIR = PROJECT_ROOT / "stack"


def tools_dir() -> Path:
    return Path(os.environ.get("HARNESS_TOOLS_DIR", PROJECT_ROOT / ".tools"))


def machine_cache_dir() -> Path:
    """What every clone on this machine shares (the one `make install` fills): built tools,
    wheels, and the container images' saved layers."""
    default = Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "llm-deploy-gate"
    return Path(os.environ.get("HARNESS_MACHINE_CACHE") or default)


def model_hub_home() -> Path:
    """The model hub's folder (HF_HOME): vLLM containers get it mounted and find weights under
    its hub/ once downloaded."""
    return Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface")


def runs_dir() -> Path:
    return Path(os.environ.get("HARNESS_RUNS_DIR", PROJECT_ROOT / "reports" / "runs"))


def venv_bin() -> Path:
    return Path(sys.executable).parent


def new_run_dir(label: str) -> Path:
    """The one naming scheme of run folders: reports/runs/<date>-<time>-<ms>-<label>."""
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S-%f")[:-3]
    path = runs_dir() / f"{stamp}-{label}"
    # Two harness processes can start a run of the same label in the same millisecond.
    for n in range(2, 100):
        try:
            path.mkdir(parents=True, exist_ok=False)
            return path
        except FileExistsError:
            path = runs_dir() / f"{stamp}-{label}-{n}"
    path.mkdir(parents=True, exist_ok=False)
    return path
