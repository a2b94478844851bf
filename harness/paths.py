"""Where the project keeps what `make install` puts in place (git-ignored `.tools/`)."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[1]
STACK_DIR = PROJECT_ROOT / "stack"


def tools_dir() -> Path:
    return Path(os.environ.get("HARNESS_TOOLS_DIR", PROJECT_ROOT / ".tools"))


def runs_dir() -> Path:
    return Path(os.environ.get("HARNESS_RUNS_DIR", PROJECT_ROOT / "reports" / "runs"))


def venv_bin() -> Path:
    return Path(sys.executable).parent
