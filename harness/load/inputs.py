"""The files a load spec names (a conversations dataset, a trace): made absolute and read once
before anything starts, so a bad file fails as a configuration error (file, line, what was
expected; exit 2) rather than inside a Locust worker."""

from __future__ import annotations

from pathlib import Path

from harness.errors import ConfigError, ConfigProblem
from harness.load.dataset import read_conversations, select
from harness.load.trace import read_trace
from harness.spec.load import LoadSpec, OpenLoop


def _absolute(value: str, base: Path, source: str, field: str) -> str:
    path = (base / value).resolve()
    if not path.is_file():
        what = "is a folder" if path.is_dir() else "does not exist"
        why = (
            f"{value!r} {what} ({path}); expected a file (a relative path counts from the spec "
            "file's folder, or from the current one on the command line)"
        )
        raise ConfigError(source, [ConfigProblem(field, why)])
    return str(path)


def resolve_inputs(spec: LoadSpec, base: Path, source: str) -> LoadSpec:
    """The spec with its dataset and trace paths absolute (relative ones count from `base`), each
    file checked (a dataset up to its first conversation the length filters keep)."""
    w = spec.workload
    if w.dataset is not None:
        path = _absolute(w.dataset.path, base, source, "workload.dataset.path")
        dataset = w.dataset.model_copy(update={"path": path})
        # A file of any size is checked quickly; the run reads it whole.
        select(read_conversations(Path(path)), dataset.model_copy(update={"limit": 1}))
        spec = spec.model_copy(update={"workload": w.model_copy(update={"dataset": dataset})})
    load = spec.load
    if isinstance(load, OpenLoop) and load.trace is not None:
        path = _absolute(load.trace.path, base, source, "load.trace.path")
        trace = load.trace.model_copy(update={"path": path})
        read_trace(Path(path), trace)
        spec = spec.model_copy(update={"load": load.model_copy(update={"trace": trace})})
    return spec
