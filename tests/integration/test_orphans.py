"""SIGKILL `harness gate` and `harness load` at chosen moments: nothing of them may be left, with
no other command run (the harness's watchdog kills every process group it started), and the next
`harness` command must find nothing either: no process of their sessions, no listening port, no
applied fault.

Each round waits for a progress marker (start-up, probes, load, a fault applied, teardown),
counts the processes of the sessions the harness's ownership record names, kills the harness with
SIGKILL, and counts again 6 s later: no process (nginx's workers included), no port, no fault,
and no watchdog still running. Then it runs the next command, whose cleanup must find nothing
left, and counts again.
"""

from __future__ import annotations

import json
import os
import queue
import random
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import httpx
import pytest
from watchdog_support import watchdogs_of

from harness.stack.ownership import Record, proc_stat, session_members
from harness.stack.ports import port_is_listening

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness"]
FIXTURES = Path(__file__).parents[1] / "fixtures"
SIM_STACK = FIXTURES / "sim-stack.yaml"

EXPERIMENT = """\
kind: experiment
title: primary-0 down briefly
load:
  kind: load
  name: orphan-experiment-load
  duration_s: 12s
  workload: {max_tokens: 8, prompt_words: 8}
  load: {kind: open, rate_rps: 2, arrival: constant, max_send_lag_ms: 250}
fault: {kind: proxy_down, targets: [primary-0]}
fault_at_s: 1s
fault_for_s: 6s
"""

PROFILE = """\
kind: gate
name: orphans
probes: {breaker: false, rate_limit: false, alert_rule_tests: false, monitoring: false,
         cost: false, injection: false}
load:
  kind: load
  name: orphan-load
  duration_s: 6s
  workload: {max_tokens: 8, prompt_words: 8}
  load: {kind: open, rate_rps: 2, arrival: constant, max_send_lag_ms: 250}
slos: [error_rate<=0.5]
# One look: these rounds are about what a kill leaves behind, not about deciding the SLOs (an
# undecided share would otherwise extend the load by up to three minutes of looks).
confidence: {max_duration_s: 0s, inconclusive_is: warn}
regression: {enabled: false}
experiments: [experiment.yaml]
"""


class Leftovers:
    """What a killed harness's ownership record says may still be there."""

    def __init__(self, record: Record) -> None:
        self.record = record

    def processes(self) -> list[int]:
        return [
            p
            for pid, s in self.record.sessions.items()
            for p in session_members(pid, int(s["start"]))
        ]

    def ports(self) -> list[int]:
        return [p for ps in self.record.ports.values() for p in ps if port_is_listening(p)]

    def faults(self) -> list[str]:
        """Disabled proxies and toxics of a Toxiproxy that still answers."""
        found = []
        for url in self.record.toxiproxy.values():
            try:
                proxies = httpx.get(f"{url}/proxies", timeout=1.0).json()
            except httpx.HTTPError:
                continue
            for name, p in proxies.items():
                if not p.get("enabled", True):
                    found.append(f"{name} disabled")
                found += [f"{name} toxic {t.get('name')}" for t in p.get("toxics", [])]
        return found


def _reader(proc: subprocess.Popen[str], lines: queue.Queue[str]) -> None:
    assert proc.stdout is not None
    for line in proc.stdout:
        lines.put(line)


def _live_at(runs: Path, pid: int) -> int:
    """Processes of the sessions harness `pid` has recorded so far (one pass over /proc: the
    kill must not wait)."""
    try:
        record = Record.from_json(json.loads((runs / "owned" / f"{pid}.json").read_text()))
    except OSError:
        return 0  # nothing started yet
    stats = (proc_stat(int(e)) for e in os.listdir("/proc") if e.isdigit())
    return sum(1 for st in stats if st and st.session in record.sessions and st.state != "Z")


def _kill_at(
    argv: list[str], marker: str, env: dict[str, str], timeout_s: float = 150.0
) -> tuple[int, int]:
    """Start the command, SIGKILL it right after a progress line matching `marker`, or at
    `@SECONDS` after it wrote its ownership record (it has started something: how long start-up
    takes depends on how busy the machine is); return its PID and how many processes its
    record's sessions held just before."""
    runs = Path(env["HARNESS_RUNS_DIR"])
    after_s = float(marker[1:]) if marker.startswith("@") else None
    kill_at: float | None = None
    proc = subprocess.Popen(
        argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env
    )
    record = runs / "owned" / f"{proc.pid}.json"
    lines: queue.Queue[str] = queue.Queue()
    threading.Thread(target=_reader, args=(proc, lines), daemon=True).start()
    seen: list[str] = []
    deadline = time.monotonic() + timeout_s
    try:
        while time.monotonic() < deadline:
            try:
                line = lines.get(timeout=0.05)
            except queue.Empty:
                if proc.poll() is not None:
                    break
                line = ""
            seen.append(line)
            if after_s is not None and kill_at is None and record.is_file():
                kill_at = time.monotonic() + after_s
            if (kill_at is not None and time.monotonic() >= kill_at) or (
                after_s is None and line and re.search(marker, line)
            ):
                live = _live_at(runs, proc.pid)
                proc.send_signal(signal.SIGKILL)
                proc.wait(timeout=10)
                return proc.pid, live
        pytest.fail(f"marker {marker!r} never came; output:\n{''.join(seen[-40:])}")
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(timeout=10)


def _record_of(runs: Path, pid: int) -> Record:
    path = runs / "owned" / f"{pid}.json"
    assert path.is_file(), f"no ownership record for harness {pid}"
    return Record.from_json(json.loads(path.read_text()))


@pytest.fixture(scope="module")
def workspace(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, str]]:
    root = tmp_path_factory.mktemp("orphans")
    (root / "profile.yaml").write_text(PROFILE)
    (root / "experiment.yaml").write_text(EXPERIMENT)
    env = {**os.environ, "HARNESS_RUNS_DIR": str(root / "runs")}
    return root, env


AFTER_KILL_S = 6.0

GATE_MOMENTS = {
    "start-up": r"\] starting: .*nginx",
    "probes": r"^probes:",
    "load": r"^load: orphan-load",
    "experiment": r"^  fault: proxy_down",
    "teardown": r"^stopping \d+ services",
}
# "load  2s/20s done 3": Locust has been running and sending for a while.
LOAD_MOMENTS = {"start-up": r"\] ready: .*nginx", "load": r"^load +[1-9]\d*s/20s +done [1-9]"}


def _round(root: Path, env: dict[str, str], argv: list[str], marker: str) -> int:
    """One kill round; returns how many processes the harness's sessions held at the kill."""
    runs = root / "runs"
    pid, live = _kill_at(argv, marker, env)
    killed = time.monotonic()
    left = Leftovers(_record_of(runs, pid))
    time.sleep(max(0.0, killed + AFTER_KILL_S - time.monotonic()))
    # With no other command run: the watchdog has killed every group and ended itself.
    unattended = {
        "processes": left.processes(),
        "ports": left.ports(),
        "faults": left.faults(),
        "watchdogs": watchdogs_of(pid),
    }
    # The next command that starts things cleans up first (this one then fails on its file).
    nxt = subprocess.run(
        [*HARNESS, "chaos", str(root / "no-such-file.yaml")],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert nxt.returncode == 2 and "Traceback" not in nxt.stderr, nxt.stderr
    assert f"cleaned up after harness process {pid}" in nxt.stderr, nxt.stderr
    assert not (runs / "owned" / f"{pid}.json").exists()
    counts = {"processes": left.processes(), "ports": left.ports(), "faults": left.faults()}
    print(
        f"{' '.join(argv[3:5])} killed at {marker!r} with {live} processes running: "
        f"{AFTER_KILL_S:g} s later {unattended}; after the next command {counts}"
    )
    assert unattended == {"processes": [], "ports": [], "faults": [], "watchdogs": []}
    assert counts == {"processes": [], "ports": [], "faults": []}, nxt.stderr
    return live


@pytest.mark.parametrize("moment", list(GATE_MOMENTS))
def test_gate_killed_leaves_nothing(workspace: tuple[Path, dict[str, str]], moment: str) -> None:
    root, env = workspace
    argv = [
        *HARNESS,
        "gate",
        "--profile",
        str(root / "profile.yaml"),
        "--stack",
        str(SIM_STACK),
        "--out",
        str(root / f"out-{moment}"),
        "--no-history",
    ]
    live = _round(root, env, argv, GATE_MOMENTS[moment])
    # Until teardown the kill hits a running stack: the zero counts after it are the
    # watchdog's doing, not an empty record's.
    assert moment == "teardown" or live > 0, live


# Two rounds each at random moments too (the seed is printed with the round).
# A fresh draw each run. Side by side, every worker collects the tests and must draw the same
# moments: xdist gives all workers of one run the same id.
_RUN_ID = os.environ.get("PYTEST_XDIST_TESTRUNUID")
SEED = int(
    os.environ.get("HARNESS_ORPHAN_SEED") or (int(_RUN_ID[:8], 16) if _RUN_ID else int(time.time()))
)
_rng = random.Random(SEED)
RANDOM_GATE = [f"@{_rng.uniform(1, 22):.1f}" for _ in range(2)]
RANDOM_LOAD = [f"@{_rng.uniform(1, 14):.1f}" for _ in range(2)]


@pytest.mark.parametrize("after", RANDOM_GATE)
def test_gate_killed_at_a_random_moment(workspace: tuple[Path, dict[str, str]], after: str) -> None:
    root, env = workspace
    print(f"HARNESS_ORPHAN_SEED={SEED}")
    argv = [
        *HARNESS,
        "gate",
        "--profile",
        str(root / "profile.yaml"),
        "--stack",
        str(SIM_STACK),
        "--out",
        str(root / f"out-random{after}"),
        "--no-history",
    ]
    _round(root, env, argv, after)


@pytest.mark.parametrize("after", RANDOM_LOAD)
def test_load_killed_at_a_random_moment(workspace: tuple[Path, dict[str, str]], after: str) -> None:
    root, env = workspace
    print(f"HARNESS_ORPHAN_SEED={SEED}")
    argv = [
        *HARNESS,
        "load",
        "--stack",
        str(SIM_STACK),
        "--rate",
        "2",
        "--duration",
        "20s",
        "--max-tokens",
        "8",
    ]
    _round(root, env, argv, after)


@pytest.mark.parametrize("moment", list(LOAD_MOMENTS))
def test_load_killed_leaves_nothing(workspace: tuple[Path, dict[str, str]], moment: str) -> None:
    root, env = workspace
    argv = [
        *HARNESS,
        "load",
        "--stack",
        str(SIM_STACK),
        "--rate",
        "2",
        "--duration",
        "20s",
        "--max-tokens",
        "8",
    ]
    _round(root, env, argv, LOAD_MOMENTS[moment])


def test_faults_left_on_a_toxiproxy_that_survived_are_reset(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A Toxiproxy the record names that still answers (started outside the harness's sessions
    here, as one in a container would be) gets every proxy enabled and every toxic removed."""
    from harness.clients.toxiproxy import ToxiproxyClient
    from harness.stack.ownership import _boot_id, reap_dead_owners
    from harness.stack.ports import free_ports
    from harness.tools import find_binary

    api, listen, upstream = free_ports(3)
    url = f"http://127.0.0.1:{api}"
    proc = subprocess.Popen(
        [str(find_binary("toxiproxy-server")), "-host", "127.0.0.1", "-port", str(api)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 20
        while not port_is_listening(api):
            assert time.monotonic() < deadline and proc.poll() is None
            time.sleep(0.05)
        with ToxiproxyClient(url) as toxi:
            toxi.create_proxy("primary-0", f"127.0.0.1:{listen}", f"127.0.0.1:{upstream}")
            toxi.create_proxy("primary-1", f"127.0.0.1:{upstream}", f"127.0.0.1:{listen}")
            toxi.set_enabled("primary-0", False)
            toxi.add_toxic("primary-1", "latency", {"latency": 500}, name="harness_latency")
        rec = Record(2**22 + 1, 1, _boot_id())  # an owner that is gone
        rec.toxiproxy["run"] = url
        left = Leftovers(rec)
        assert sorted(left.faults()) == ["primary-0 disabled", "primary-1 toxic harness_latency"]
        (tmp_path / "owned").mkdir()
        (tmp_path / "owned" / f"{rec.owner_pid}.json").write_text(json.dumps(rec.to_json()))
        monkeypatch.setenv("HARNESS_RUNS_DIR", str(tmp_path))
        lines = reap_dead_owners()
        assert any("every toxic removed, proxies enabled" in line for line in lines), lines
        assert left.faults() == []
    finally:
        proc.kill()
        proc.wait()


def test_a_stack_records_its_sessions_and_removes_them_on_teardown(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """nginx's workers live in nginx's session and process group (so stopping or reaping the
    session takes them); a normal teardown leaves no process of any session and no record."""
    from harness.spec.loader import load_yaml_model
    from harness.spec.stack import StackSpec
    from harness.stack import start_stack
    from harness.stack.process import descendants

    monkeypatch.setenv("HARNESS_RUNS_DIR", str(tmp_path))
    record = tmp_path / "owned" / f"{os.getpid()}.json"
    spec = load_yaml_model(StackSpec, SIM_STACK)
    with start_stack(spec, run_dir=tmp_path / "run", wait_for_scrapes=False) as stack:
        rec = Record.from_json(json.loads(record.read_text()))
        assert {s["name"] for s in rec.sessions.values()} == set(stack.services)
        nginx = stack.services["nginx"].pid
        assert nginx is not None
        workers = descendants(nginx)
        assert workers, "nginx has no worker"
        for w in workers:
            st = proc_stat(w)
            assert st is not None and st.session == nginx and os.getpgid(w) == nginx
        assert set(workers) < set(session_members(nginx, int(rec.sessions[nginx]["start"])))
    assert not record.exists()
    assert all(session_members(pid, int(s["start"])) == [] for pid, s in rec.sessions.items())
    assert Leftovers(rec).ports() == []
