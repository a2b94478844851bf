"""The watchdog: when the harness's pipe closes it kills every registered process group (members
that outlived their leader too) and removes every registered container, and touches nothing else:
not a group it was told was stopped, not a group whose leader's number was reused, not a process
it never heard of."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from watchdog_support import watchdogs_of

from harness.stack import watchdog
from harness.stack.ownership import start_time

ROOT = Path(__file__).parents[2]


def _group_with_child() -> subprocess.Popen[bytes]:
    """A group leader with a child of its own (as nginx's master has its workers)."""
    proc = subprocess.Popen(["sh", "-c", "sleep 120 & wait"], start_new_session=True)
    _wait(lambda: len(_members(proc.pid)) == 2, "the child never started")
    return proc


def _members(pgid: int) -> list[int]:
    """Live (not zombie) processes of the process group, read from /proc."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            fields = Path(f"/proc/{entry}/stat").read_text().rsplit(") ", 1)[1].split()
        except (OSError, IndexError):
            continue
        if fields[2] == str(pgid) and fields[0] != "Z":
            found.append(int(entry))
    return found


def _wait(condition: Callable[[], bool], why: str, timeout_s: float = 5.0) -> float:
    t0 = time.monotonic()
    while not condition():
        assert time.monotonic() - t0 < timeout_s, why
        time.sleep(0.01)
    return time.monotonic() - t0


@pytest.fixture
def groups() -> Iterator[list[subprocess.Popen[bytes]]]:
    made: list[subprocess.Popen[bytes]] = []
    yield made
    for proc in made:
        if _members(proc.pid):
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait()


def test_closed_pipe_kills_registered_groups_and_nothing_else(
    groups: list[subprocess.Popen[bytes]],
) -> None:
    orphaned, alive, stopped, reused, unknown = (_group_with_child() for _ in range(5))
    groups += [orphaned, alive, stopped, reused, unknown]
    starts = {p.pid: start_time(p.pid) for p in groups}
    # The leader dies first (as PDEATHSIG kills it with the harness): its child stays.
    orphaned.kill()
    orphaned.wait()
    assert len(_members(orphaned.pid)) == 1
    dog = subprocess.Popen(
        [sys.executable, "-P", watchdog.__file__, "1"],
        stdin=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert dog.stdin is not None
    lines = [
        f"+group {orphaned.pid} {starts[orphaned.pid]}",
        f"+group {alive.pid} {starts[alive.pid]}",
        f"+group {stopped.pid} {starts[stopped.pid]}",
        f"-group {stopped.pid}",
        # Its number now names a process started at another time: the registered group is gone.
        f"+group {reused.pid} {(starts[reused.pid] or 0) - 1}",
        "+group not-a-number",
    ]
    dog.stdin.write("".join(f"{line}\n" for line in lines).encode())
    dog.stdin.close()
    assert dog.wait(timeout=5) == 0
    assert _members(orphaned.pid) == [] and _members(alive.pid) == []
    for proc in (stopped, reused, unknown):
        assert len(_members(proc.pid)) == 2, "a group not registered was touched"
    assert dog.stderr is not None
    said = dog.stderr.read().decode()
    assert f"killed process group {orphaned.pid}; killed process group {alive.pid}" in said, said


def test_a_group_emptied_on_its_own_is_forgotten(groups: list[subprocess.Popen[bytes]]) -> None:
    """Once a registered group has no process left its number may be handed out again: the
    watchdog drops it then, not at the end."""
    proc = _group_with_child()
    groups.append(proc)
    registry = watchdog.Registry()
    registry.apply(f"+group {proc.pid} {start_time(proc.pid)}")
    registry.prune()
    assert list(registry.groups) == [proc.pid]
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()

    def forgotten() -> bool:
        registry.prune()  # kept while a zombie of it is unreaped: the number is still taken
        return not registry.groups

    _wait(forgotten, "an emptied group stayed registered")


class FakeEngine:
    """Stands in for docker's API: records the removals asked of it; one name it cannot remove."""

    def __init__(self, refuse: str = "") -> None:
        self.removed: list[tuple[str, str]] = []
        self.refuse = refuse

    def remove(self, name: str, host: str) -> None:
        if name == self.refuse:
            raise ConnectionError("engine gone")
        self.removed.append((name, host))


def test_registered_containers_are_removed_on_their_engine() -> None:
    read_end, write_end = os.pipe()
    lines = [
        "+container gate-1-nginx unix:///run/my engine/docker.sock",
        "+container gate-1-redis ",
        "+container gate-1-stopped unix:///x.sock",
        "-container gate-1-stopped",
        "+container gate-1-toxiproxy tcp://127.0.0.1:2375",
    ]
    os.write(write_end, "".join(f"{line}\n" for line in lines).encode())
    os.close(write_end)
    engine = FakeEngine(refuse="gate-1-toxiproxy")
    done = watchdog.serve(read_end, engine.remove)
    os.close(read_end)
    assert sorted(engine.removed) == [
        ("gate-1-nginx", "unix:///run/my engine/docker.sock"),
        ("gate-1-redis", ""),
    ]
    assert "could not remove container gate-1-toxiproxy: engine gone" in done


STAND_IN = """\
import os, signal, subprocess, sys, time
from harness.stack import ownership, watchdog
leader = subprocess.Popen(["sh", "-c", "sleep 120 & wait"], start_new_session=True)
time.sleep(0.3)
ownership.current().add_session("svc", leader.pid)
if len(sys.argv) > 1:  # the watchdog dies: the next registration starts one with everything
    watchdog.current()._proc.kill()
    watchdog.current()._proc.wait()
    other = subprocess.Popen(["sleep", "120"], start_new_session=True)
    ownership.current().add_session("other", other.pid)
    print(other.pid, flush=True)
forked = os.fork()  # holds a copy of every descriptor unless the watchdog's is closed in it
if forked == 0:
    time.sleep(120)
    os._exit(0)
print(leader.pid, forked, flush=True)
time.sleep(120)
"""


@pytest.mark.parametrize("watchdog_killed", [False, True])
def test_a_harness_killed_outright_takes_its_groups_within_a_second(
    tmp_path: Path, watchdog_killed: bool
) -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_RUNS_DIR": str(tmp_path)}
    argv = [sys.executable, "-c", STAND_IN] + (["x"] if watchdog_killed else [])
    harness = subprocess.Popen(argv, stdout=subprocess.PIPE, text=True, env=env)
    assert harness.stdout is not None
    pids = [int(p) for p in harness.stdout.readline().split()]
    if watchdog_killed:
        pids += [int(p) for p in harness.stdout.readline().split()]
    *groups, forked = pids
    try:
        _wait(lambda: all(_members(g) for g in groups), "the groups never started")
        harness.send_signal(signal.SIGKILL)
        harness.wait()
        took = _wait(lambda: not any(_members(g) for g in groups), "groups outlived the harness")
        print(f"every registered group gone {took:.2f} s after the SIGKILL")
        assert took < 1.0
        assert start_time(forked) is not None, "the forked child is not the watchdog's to kill"
    finally:
        harness.stdout.close()
        os.kill(forked, signal.SIGKILL)
        for g in groups:
            if _members(g):
                os.killpg(g, signal.SIGKILL)


EXITS = """\
import os, subprocess, sys
from harness.stack import ownership
leader = subprocess.Popen(["sleep", "120"], start_new_session=True)
ownership.current().add_session("svc", leader.pid)
print(os.getpid(), leader.pid, flush=True)
if sys.argv[1] == "crash":  # a harness whose teardown never ran
    raise SystemExit(3)
ownership.current().remove_session(leader.pid)
leader.kill()
leader.wait()
"""


@pytest.mark.parametrize("how", ["clean", "crash"])
def test_a_harness_that_exits_leaves_no_watchdog_behind(tmp_path: Path, how: str) -> None:
    """On a normal exit the harness waits for its watchdog: when the harness is gone, so is the
    watchdog, having killed whatever a crash left registered."""
    env = {**os.environ, "PYTHONPATH": str(ROOT), "HARNESS_RUNS_DIR": str(tmp_path)}
    with (tmp_path / "stderr").open("w") as err:
        proc = subprocess.Popen(
            [sys.executable, "-c", EXITS, how],
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
            env=env,
        )
        out, _ = proc.communicate(timeout=60)
    harness, leader = map(int, out.split())
    assert watchdogs_of(harness) == []
    said = (tmp_path / "stderr").read_text()
    assert proc.returncode == (3 if how == "crash" else 0), said
    assert (f"killed process group {leader}" in said) == (how == "crash"), said
    _wait(lambda: _members(leader) == [], "the crashed harness's group outlived it")
