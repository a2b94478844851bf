"""The ownership record: a dead harness's sessions are killed whole by the next command, a live
harness's are never touched, and a session whose number now names another process is left alone."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from harness.stack import ownership
from harness.stack.ownership import Record, reap_dead_owners, session_members, start_time


@pytest.fixture(autouse=True)
def runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HARNESS_RUNS_DIR", str(tmp_path))
    return tmp_path


def _session_with_child() -> subprocess.Popen[bytes]:
    """A session leader with a child of its own (as nginx has its workers)."""
    proc = subprocess.Popen(["sh", "-c", "sleep 120 & wait"], start_new_session=True)
    deadline = time.monotonic() + 5
    while len(session_members(proc.pid, start_time(proc.pid) or 0)) < 2:
        assert time.monotonic() < deadline, "the child never started"
        time.sleep(0.02)
    return proc


def _dead_pid() -> int:
    p = subprocess.Popen(["true"])
    p.wait()
    return p.pid


def _write(runs: Path, rec: Record) -> Path:
    path = runs / "owned" / f"{rec.owner_pid}.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(rec.to_json()))
    return path


def _record(owner: int, owner_start: int, leader: subprocess.Popen[bytes], start: int) -> Record:
    rec = Record(owner, owner_start, ownership._boot_id())
    rec.sessions[leader.pid] = {"name": "svc", "start": start}
    rec.ports["run"] = [1]  # port 1 is never listening
    return rec


def test_dead_owner_session_is_killed_whole(runs: Path) -> None:
    proc = _session_with_child()
    members = session_members(proc.pid, start_time(proc.pid) or 0)
    path = _write(runs, _record(_dead_pid(), 1, proc, start_time(proc.pid) or 0))
    lines = reap_dead_owners()
    proc.wait(timeout=5)
    assert session_members(proc.pid, 0) == []
    assert not path.exists()
    assert "cleaned up after harness process" in lines[0]
    assert f"killed session {proc.pid} (2 processes" in lines[1], lines
    assert all(str(m) in lines[1] for m in members)


def test_live_owner_is_left_alone(runs: Path) -> None:
    proc = _session_with_child()
    try:
        me = os.getpid()
        path = _write(runs, _record(me, start_time(me) or 0, proc, start_time(proc.pid) or 0))
        assert reap_dead_owners() == []
        assert path.exists() and proc.poll() is None
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_reused_number_is_not_killed(runs: Path) -> None:
    """The recorded start time differs from the process now holding the number: not ours."""
    proc = _session_with_child()
    try:
        wrong = (start_time(proc.pid) or 0) - 1
        _write(runs, _record(_dead_pid(), 1, proc, wrong))
        lines = reap_dead_owners()
        assert proc.poll() is None and len(session_members(proc.pid, wrong + 1)) == 2
        assert "nothing of it was still running" in lines[0]
    finally:
        os.killpg(proc.pid, 9)
        proc.wait()


def test_unreadable_record_is_removed(runs: Path) -> None:
    (runs / "owned").mkdir()
    (runs / "owned" / "123.json").write_text("{not json")
    assert reap_dead_owners() == [f"removed unreadable ownership record {runs}/owned/123.json"]


def test_records_follow_sessions(runs: Path) -> None:
    own = ownership.Ownership()
    proc = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        own.add_session("svc", proc.pid)
        path = runs / "owned" / f"{os.getpid()}.json"
        data = json.loads(path.read_text())
        assert data["sessions"] == [{"pid": proc.pid, "name": "svc", "start": start_time(proc.pid)}]
        own.add_stack("run", [5, 3], "http://127.0.0.1:9")
        own.remove_session(proc.pid)
        assert path.exists()
        own.remove_stack("run")
        assert not path.exists()  # nothing left to own: no record
    finally:
        proc.kill()
        proc.wait()
