"""Suite-wide settings."""

import os

import pytest
from hypothesis import settings

# Property tests check behaviour, not speed: on a busy 2-core runner an example can take longer
# than Hypothesis' default 200 ms deadline, which would fail a correct test. In CI the examples
# are derandomized (the same ones every run) and no failing-examples database is written.
settings.register_profile("suite", deadline=None)
settings.register_profile("ci", deadline=None, derandomize=True, database=None)
settings.load_profile("ci" if os.environ.get("CI") else "suite")


@pytest.fixture(autouse=True)
def _own_runs_folder(
    tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Each test's harness commands write runs, history and ownership records to a folder of
    their own: tests run side by side, and one test's gate history must not be another's
    baseline, nor its orphan records another's to reap."""
    monkeypatch.setenv("HARNESS_RUNS_DIR", str(tmp_path_factory.mktemp("runs")))
