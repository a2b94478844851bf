"""The suite bounds itself: a hung test fails with its traceback in minutes, and each phase of
`make test` is bounded well inside CI's 90 minutes."""

from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def test_the_suite_has_a_per_test_and_a_per_phase_timeout() -> None:
    ini = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["pytest"]["ini_options"]
    assert 0 < float(ini["timeout"]) <= 600
    # Three phases one after another (parallel; `make gate`'s test with the unit tests beside it;
    # serial): all inside CI's 5,400 s with room for the install.
    assert 0 < float(ini["session_timeout"]) * 3 <= 4800


def test_a_planted_hang_fails_by_timeout_with_its_traceback(tmp_path: Path) -> None:
    (tmp_path / "test_hang.py").write_text(
        "import time\n\ndef test_hangs():\n    time.sleep(600)\n"
    )
    r = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-p",
            "no:randomly",
            "-p",
            "no:cacheprovider",
            "-c",
            str(ROOT / "pyproject.toml"),
            "--rootdir",
            str(tmp_path),
            "-o",
            "timeout=3",
            str(tmp_path / "test_hang.py"),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp_path,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 1, out
    assert "Timeout" in out and "time.sleep(600)" in out, out  # the hung line, in the traceback


def test_every_test_module_has_a_basename_of_its_own() -> None:
    # The test folders are not packages: two modules of one name collide when one pytest run
    # collects both (the serial phase collects the whole tree), and collection stops.
    names = [p.name for p in (ROOT / "tests").rglob("test_*.py")]
    assert sorted(n for n in set(names) if names.count(n) > 1) == []


def test_the_serial_phase_collects_where_serial_tests_may_live() -> None:
    # A test marked serial outside SERIAL_HOMES is refused at collection; a home the Makefile's
    # last phase does not collect would run its serial tests in no phase at all.
    from conftest import SERIAL_HOMES  # tests/conftest.py, on the path as pytest's rootdir conftest

    line = next(
        x for x in (ROOT / "Makefile").read_text().splitlines() if x.startswith("SERIAL_PATHS")
    )
    paths = line.split(":=", 1)[1].split()
    assert sorted(p.rstrip("/") for p in paths) == sorted(h.rstrip("/") for h in SERIAL_HOMES)


def test_the_rollouts_are_spread_through_the_queue_after_the_first_ones() -> None:
    # Run last, six at a time, they saturated the runner and identical canaries stayed undecided.
    from conftest import _places

    light = [f"tests/integration/test_gate.py::test_{i}" for i in range(6)]
    heavy = [f"tests/integration/test_rollout.py::test_{i}" for i in range(3)]
    units = [*light, *heavy, "tests/integration/test_nightly.py"]
    order = sorted(units, key=_places(units).__getitem__)
    assert order[0] == "tests/integration/test_nightly.py"  # START_FIRST stays first
    kinds = "".join("H" if "rollout" in u else "L" for u in order[1:])
    assert kinds == "LHLLHLLHL"
    assert [u for u in order if "rollout" in u] == heavy  # each kind in its own order
