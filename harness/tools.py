"""Find the binaries and model files the stack runs; a missing one gets an actionable error."""

from __future__ import annotations

import shutil
from pathlib import Path

from harness.errors import ToolMissingError
from harness.paths import tools_dir, venv_bin

DEFAULT_MODEL_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"

# Debian packages install these on PATH; the Go-built ones live in .tools/bin.
_SYSTEM_DIRS = (Path("/usr/sbin"), Path("/usr/bin"), Path("/usr/local/bin"))


def find_binary(name: str) -> Path:
    candidates = [tools_dir() / "bin", venv_bin(), *_SYSTEM_DIRS]
    for d in candidates:
        p = d / name
        if p.is_file():
            return p
    found = shutil.which(name)
    if found:
        return Path(found)
    raise ToolMissingError(f"binary {name!r}", candidates)


def default_model_path() -> Path:
    p = tools_dir() / "models" / DEFAULT_MODEL_FILE
    if not p.is_file():
        raise ToolMissingError(f"model file {DEFAULT_MODEL_FILE}", [p.parent])
    return p
