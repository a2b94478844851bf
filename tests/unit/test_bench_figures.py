"""The benchmarks' figures file: one line per run, with what a figure depends on."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

from harness.paths import PROJECT_ROOT


def _figures() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "bench_figures", PROJECT_ROOT / "benchmarks" / "figures.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_each_run_appends_one_line_with_its_commit_machine_and_figures(tmp_path: Path) -> None:
    figures = _figures()
    path = tmp_path / "figures.jsonl"
    figures.record("bench_x", {"users": 32}, {"ratio": 1.04}, path=path)
    figures.record("bench_x", {"users": 32}, {"ratio": 0.98}, path=path)
    lines = [json.loads(line) for line in path.read_text().splitlines()]
    assert [line["figures"]["ratio"] for line in lines] == [1.04, 0.98]  # kept, not replaced
    first = lines[0]
    assert first["bench"] == "bench_x" and first["args"] == {"users": 32}
    assert first["commit"] and first["date"].endswith("+00:00")
    assert first["machine"]["cores"] >= 1 and first["machine"]["memory_gib"] > 0
