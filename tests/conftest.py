"""Suite-wide settings."""

import json
import os
import resource
import time
from collections import Counter
from collections.abc import Iterator
from typing import Any

import pytest
from hypothesis import settings
from xdist.scheduler import LoadScopeScheduling

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


class _SuiteScheduling(LoadScopeScheduling):
    """`--dist loadgroup` as this suite needs it. A module is one unit, so its module-scoped
    stack starts once and its tests run in order on one worker; the modules whose tests each
    bring up a stack of their own (and the unit tests) are spread test by test; the groups in
    `SHARED_RESOURCE_GROUPS` run on one worker each. (xdist's own `xdist_group` marks rename
    node ids, which pytest 9.2's node ids no longer allow, so this is decided by path here.)
    The units go out in the order `pytest_collection_modifyitems` gives them."""

    def _split_scope(self, nodeid: str) -> str:
        return _unit(nodeid)


# Test folders that share one global resource: the docker tests share one private dockerd.
SHARED_RESOURCE_GROUPS = {"tests/docker/": "docker"}
# Each of these tests starts what it needs itself: they run side by side.
SPREAD_TEST_BY_TEST = (
    "tests/unit/",
    "tests/chaos/test_experiments.py",
    "tests/integration/test_gate.py",
    "tests/integration/test_gate_defects.py",
    "tests/integration/test_gate_cache_hits.py",
    "tests/integration/test_engine_checks.py",
    "tests/integration/test_orphans.py",
    "tests/integration/test_load_cli.py",
    "tests/integration/test_load_workloads.py",
    # Thirteen rollouts of 10-40 s each: one after another on one worker they were the phase's
    # long pole.
    "tests/integration/test_rollout.py",
    # A canary as a gate's step: two gates of 20-35 s.
    "tests/integration/test_gate_rollout.py",
    # Six external rollouts of 4-14 s each (their simulators start again on each worker).
    "tests/integration/test_rollout_external.py",
)
# Single tests of about two minutes: in xdist's order (units with the most tests first) they
# started when the queue was nearly empty and ran on alone for a minute after the other workers
# were done. They start first instead, in this order. (All the long tests first ran the heavy
# ones together: each got slower and the phase took 100 s more.)
START_FIRST = ("tests/integration/test_nightly.py",)

# Rollouts run two stacks each under 50-60 requests/s. In xdist's order they came last and ran
# six at a time: the machine saturated and identical canaries stayed undecided through every
# look, twice. They are spread evenly through the queue instead (after `START_FIRST`).
SPREAD_THROUGH = ("tests/integration/test_rollout", "tests/integration/test_gate_rollout.py")

# Where `make test`'s last phase collects (SERIAL_PATHS in the Makefile: the same paths).
SERIAL_HOMES = ("tests/integration/", "tests/unit/load/test_load_client.py")


def _serial_home(item: pytest.Item) -> bool:
    return item.nodeid.startswith(SERIAL_HOMES)


def _unit(nodeid: str) -> str:
    """The unit of work a test is scheduled in (see `_SuiteScheduling`)."""
    for prefix, group in SHARED_RESOURCE_GROUPS.items():
        if nodeid.startswith(prefix):
            return group
    module = nodeid.split("::", 1)[0]
    return nodeid if module.startswith(SPREAD_TEST_BY_TEST) else module


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """xdist's order of units (the most tests first, each unit's tests together and in their
    order), with `START_FIRST`'s ahead of them in its order and the `SPREAD_THROUGH` units
    spread evenly among the rest. Every worker sorts the same way.

    `make test`'s last phase collects SERIAL_HOMES alone (the whole suite's collection took
    10 s of it): a test marked serial elsewhere would run in no phase, so it is refused."""
    stray = [i.nodeid for i in items if i.get_closest_marker("serial") and not _serial_home(i)]
    if stray:
        raise pytest.UsageError(
            f"tests marked serial must be in one of {', '.join(SERIAL_HOMES)} (make test runs "
            "them from there): " + ", ".join(stray)
        )
    count = Counter(_unit(item.nodeid) for item in items)
    items.sort(key=lambda item: (_start_rank(item.nodeid), -count[_unit(item.nodeid)]))
    place = _places(list(dict.fromkeys(_unit(item.nodeid) for item in items)))
    items.sort(key=lambda item: place[_unit(item.nodeid)])


def _places(units: list[str]) -> dict[str, tuple[int, float]]:
    """A sort key per unit: `START_FIRST`'s first, then the others in their order with the
    `SPREAD_THROUGH` ones at even intervals among them (each kind keeps its own order)."""
    rest = [u for u in units if _start_rank(u) == len(START_FIRST)]
    heavy = [u for u in rest if u.startswith(SPREAD_THROUGH)]
    light = [u for u in rest if not u.startswith(SPREAD_THROUGH)]
    place = {u: (0, float(i)) for i, u in enumerate(units) if _start_rank(u) < len(START_FIRST)}
    for kind in (light, heavy):
        place.update({u: (1, (i + 0.5) / len(kind)) for i, u in enumerate(kind)})
    return place


def _start_rank(nodeid: str) -> int:
    """The place of the first `START_FIRST` prefix that `nodeid` has; after them all if none."""
    return next(
        (rank for rank, prefix in enumerate(START_FIRST) if nodeid.startswith(prefix)),
        len(START_FIRST),
    )


def pytest_xdist_make_scheduler(config: pytest.Config, log: Any) -> LoadScopeScheduling | None:
    if config.getvalue("dist") == "loadgroup":
        config.option.loadscopereorder = False  # the order sorted above
        return _SuiteScheduling(config, log)
    return None


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_protocol(item: pytest.Item) -> Iterator[None]:
    """With SUITE_CPU_LOG set (a file), each test's wall time, start and worker, and the CPU it
    cost: the worker's own and that of the processes it started and reaped (their children's
    too), one JSON line a test. How the suite's time is spent on a CPU-bound runner
    (docs/development.md)."""
    path = os.environ.get("SUITE_CPU_LOG")
    if not path:
        yield
        return

    def cpu() -> tuple[float, float]:
        me, kids = (resource.getrusage(w) for w in (resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN))
        return me.ru_utime + me.ru_stime, kids.ru_utime + kids.ru_stime

    (me0, kids0), t0, started = cpu(), time.monotonic(), time.time()
    yield
    (me1, kids1), wall = cpu(), time.monotonic() - t0
    # When and on which worker it ran: which tests overlapped (and, beside the machine's busy
    # cores from /proc/stat over the same seconds, where a phase left the cores idle).
    line = {
        "test": item.nodeid,
        "worker": os.environ.get("PYTEST_XDIST_WORKER", ""),
        "started": round(started, 2),
        "wall_s": round(wall, 2),
        "cpu_s": round(me1 - me0, 2),
        "children_cpu_s": round(kids1 - kids0, 2),
    }
    with open(path, "a") as f:
        f.write(json.dumps(line) + "\n")
