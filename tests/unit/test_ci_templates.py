"""The CI templates in ci-templates/: valid against the GitHub Actions and GitLab CI schemas
(check-jsonschema's vendored copies: offline), and every command they run is one the docs give:
the README (`make gate`, `make install`) or the page on nightly runs and CI templates."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from harness.tools import find_binary

ROOT = Path(__file__).parents[2]
TEMPLATES = {
    "github-actions.yml": "vendor.github-workflows",
    "gitlab-ci.yml": "vendor.gitlab-ci",
}
CHECK = Path(sys.executable).parent / "check-jsonschema"
# The project's own commands in a template (package installs and `cat` are the CI's plumbing).
PROJECT_COMMAND = re.compile(r"^(make \w+|\.venv/bin/harness .+)$")
# Where a template's commands are written down for its users.
COMMAND_DOCS = ("README.md", "docs/compare-and-nightly.md")


def check(path: Path, schema: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(CHECK), "--builtin-schema", schema, str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_is_valid(name: str) -> None:
    r = check(ROOT / "ci-templates" / name, TEMPLATES[name])
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("name", "old", "new", "error"),
    [
        (
            "github-actions.yml",
            "    runs-on: ubuntu-latest",
            "    runs_on: ubuntu-latest",
            "is not valid",
        ),
        ("github-actions.yml", "  pull_request:", "  pull-request:", "pull-request"),
        ("gitlab-ci.yml", "  script:", "  scirpt:", "'scirpt' was unexpected"),
        (
            "gitlab-ci.yml",
            "    when: always\n    expire_in: 30",
            "    when: sometimes\n    expire_in: 30",
            "'sometimes' is not one of",
        ),
    ],
)
def test_a_broken_template_fails_the_schema(
    tmp_path: Path, name: str, old: str, new: str, error: str
) -> None:
    text = (ROOT / "ci-templates" / name).read_text()
    assert old in text
    broken = tmp_path / name
    broken.write_text(text.replace(old, new))
    r = check(broken, TEMPLATES[name])
    assert r.returncode == 1 and error in r.stdout, r.stdout + r.stderr


def _commands(node: object) -> list[str]:
    """Every shell line under a `run:` (GitHub) or `script:` (GitLab) key."""
    out: list[str] = []
    if isinstance(node, dict):
        for key, value in node.items():
            if key in ("run", "script"):
                lines = value if isinstance(value, list) else str(value).splitlines()
                out += [str(x).strip() for x in lines]
            else:
                out += _commands(value)
    elif isinstance(node, list):
        for item in node:
            out += _commands(item)
    return out


@pytest.mark.parametrize("name", sorted(TEMPLATES))
def test_template_runs_documented_commands(name: str) -> None:
    docs = [(ROOT / doc).read_text() for doc in COMMAND_DOCS]
    commands = [
        c
        for c in _commands(yaml.safe_load((ROOT / "ci-templates" / name).read_text()))
        if PROJECT_COMMAND.match(c)
    ]
    assert "make gate" in commands
    assert any(c.startswith(".venv/bin/harness nightly --history ") for c in commands)
    for c in commands:
        assert any(c in text for text in docs), f"{name} runs `{c}`, not in {COMMAND_DOCS}"


def actionlint(path: Path) -> subprocess.CompletedProcess[str]:
    """actionlint as the template's users run it, with shellcheck on the `run:` scripts."""
    binary = find_binary("actionlint")
    shellcheck = find_binary("shellcheck")
    return subprocess.run(
        [str(binary), "-shellcheck", str(shellcheck), "-no-color", str(path)],
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_github_template_passes_actionlint() -> None:
    r = actionlint(ROOT / "ci-templates" / "github-actions.yml")
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.mark.parametrize(
    ("old", "new", "error"),
    [
        # An expression the runner cannot evaluate: a context that does not exist.
        (
            "key: nightly-history-${{ github.run_id }}\n          restore-keys",
            "key: nightly-history-${{ gitub.run_id }}\n          restore-keys",
            "undefined variable",
        ),
        # A shell defect in a `run:` script, found by shellcheck through actionlint.
        (
            'run: cat gate-runs/*-gate/summary.md >> "$GITHUB_STEP_SUMMARY"',
            "run: cat gate-runs/*-gate/summary.md >> $GITHUB_STEP_SUMMARY",
            "shellcheck",
        ),
    ],
)
def test_a_broken_github_template_fails_actionlint(
    tmp_path: Path, old: str, new: str, error: str
) -> None:
    text = (ROOT / "ci-templates" / "github-actions.yml").read_text()
    assert old in text
    broken = tmp_path / "github-actions.yml"
    broken.write_text(text.replace(old, new))
    r = actionlint(broken)
    assert r.returncode == 1 and error in r.stdout, r.stdout + r.stderr
