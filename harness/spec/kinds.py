"""Which model a spec file is: its top-level `kind` (default "stack"); unknown kinds are listed."""

from __future__ import annotations

from pathlib import Path

from pydantic import BaseModel

from harness.errors import ConfigError, ConfigProblem
from harness.spec.experiment import ExperimentSpec
from harness.spec.gate import GateSpec
from harness.spec.load import LoadSpec
from harness.spec.loader import parse_model, read_yaml_mapping
from harness.spec.rollout import RolloutSpec
from harness.spec.stack import StackSpec

SPEC_KINDS: dict[str, type[BaseModel]] = {
    "stack": StackSpec,
    "load": LoadSpec,
    "gate": GateSpec,
    "experiment": ExperimentSpec,
    "rollout": RolloutSpec,
}


def validate_file(path: Path, *, allow_empty: bool = False) -> str:
    """Validate a spec file of any registered kind; return the kind. Raises ConfigError."""
    data = read_yaml_mapping(path, allow_empty=allow_empty)
    # `kind` is optional where a file's use says what it is (`harness chaos` reads experiments);
    # here a file without one is read by what it holds: a fault makes it an experiment.
    kind = data.get("kind", "experiment" if "fault" in data else "stack")
    model = SPEC_KINDS.get(str(kind))
    valid = ", ".join(sorted(SPEC_KINDS))
    if model is None:
        raise ConfigError(
            str(path), [ConfigProblem("kind", f"unknown kind {kind!r}; valid: {valid}")]
        )
    try:
        parse_model(model, data, str(path))
    except ConfigError as e:
        if "kind" not in data:
            e.problems.append(
                ConfigProblem(
                    "kind",
                    f"absent, so the file was read as a {kind} spec; name its kind ({valid})",
                )
            )
        raise
    return str(kind)
