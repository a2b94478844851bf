"""The floors of the house hold: `lint-imports` (in `make test`) keeps the layering contract in
pyproject.toml, and a planted import that climbs a floor, or joins two rooms of one floor, fails
it with the offending line."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parents[2]
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"


def _lint(tree: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(LINT_IMPORTS), "--no-cache", "--config", str(tree / "pyproject.toml")],
        cwd=tree,
        env={"PYTHONPATH": str(tree), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A copy of the package and its contract, to plant imports in."""
    shutil.copytree(
        ROOT / "harness", tmp_path / "harness", ignore=shutil.ignore_patterns("__pycache__")
    )
    shutil.copy(ROOT / "pyproject.toml", tmp_path / "pyproject.toml")
    return tmp_path


def test_the_house_keeps_its_floors(tree: Path) -> None:
    done = _lint(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "1 kept, 0 broken" in done.stdout


@pytest.mark.parametrize(
    ("module", "planted", "message"),
    [
        # A client reaching up into judging.
        (
            "clients/http.py",
            "from harness.verdict import checks",
            "harness.clients is not allowed to import harness.verdict",
        ),
        # A library module reaching up to a command: the circle the commands package ended.
        (
            "compare/runs.py",
            "from harness.commands import main",
            "harness.compare is not allowed to import harness.commands",
        ),
        # Two rooms of one floor.
        (
            "probes/http.py",
            "from harness.compare import stats",
            "harness.probes is not allowed to import harness.compare",
        ),
    ],
)
def test_a_planted_climb_fails_the_contract(
    tree: Path, module: str, planted: str, message: str
) -> None:
    path = tree / "harness" / module
    path.write_text(path.read_text() + f"\n{planted}  # planted\n")
    done = _lint(tree)
    assert done.returncode == 1, done.stdout + done.stderr
    assert message in done.stdout, done.stdout
    assert f"harness.{module[:-3].replace('/', '.')} ->" in done.stdout, done.stdout
