"""Which model a spec file is: its top-level `kind` (default "stack"); unknown kinds are listed."""

from __future__ import annotations

from pathlib import Path

import yaml
from pydantic import BaseModel

from harness.errors import ConfigError, ConfigProblem
from harness.spec.experiment import ExperimentSpec
from harness.spec.gate import GateSpec
from harness.spec.load import LoadSpec
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec

SPEC_KINDS: dict[str, type[BaseModel]] = {
    "stack": StackSpec,
    "load": LoadSpec,
    "gate": GateSpec,
    "experiment": ExperimentSpec,
}


def register_kind(kind: str, model: type[BaseModel]) -> None:
    SPEC_KINDS[kind] = model


def validate_file(path: Path) -> str:
    """Validate a spec file of any registered kind; return the kind. Raises ConfigError."""
    try:
        data = yaml.safe_load(path.read_text())
    except (OSError, yaml.YAMLError):
        data = None  # load_yaml_model reports these with the right words
    kind = data.get("kind", "stack") if isinstance(data, dict) else "stack"
    model = SPEC_KINDS.get(str(kind))
    if model is None:
        valid = ", ".join(sorted(SPEC_KINDS))
        raise ConfigError(
            str(path), [ConfigProblem("kind", f"unknown kind {kind!r}; valid: {valid}")]
        )
    load_yaml_model(model, path)
    return str(kind)
