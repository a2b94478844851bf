"""The one default stack: which spec file a command uses when it is given none."""

from __future__ import annotations

from pathlib import Path

from harness.paths import STACK_DIR
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec

DEFAULT_STACK_FILE = STACK_DIR / "stack.yaml"


def load_stack_spec(path: Path | None, allow_empty: bool = False) -> StackSpec:
    """The stack spec from `path`, or the reference stack (stack/stack.yaml of the project, or the
    built-in defaults where the project's file is absent, as in an installed package). An empty
    file is an error unless `allow_empty` says defaults are meant."""
    if path is not None:
        return load_yaml_model(StackSpec, path, allow_empty=allow_empty)
    if DEFAULT_STACK_FILE.is_file():
        return load_yaml_model(StackSpec, DEFAULT_STACK_FILE)
    return StackSpec()
