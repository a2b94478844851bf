"""What a harness process started, written down so the next command can remove it if it dies.

Every service and Locust runs in a session of its own (`start_new_session`): the session holds
the process and everything it starts (nginx's workers, Locust's forked workers), and its id stays
taken while any member lives, so Linux cannot hand the number to a new process meanwhile. The
record `<runs>/owned/<harness pid>.json` lists each session with its leader's start time (clock
ticks since boot, with the boot id), the stack's ports and its Toxiproxy URL. A command that
starts things first calls `reap_dead_owners()`: for each record whose harness is gone it SIGKILLs
the members of every recorded session, resets a Toxiproxy that still answers (faults left
applied), waits for the ports to close, and deletes the record. A session is only touched while
its number still names it: if the leader's PID now runs a process with another start time, the
old session is gone and its number reused, so nothing is killed.

Each session is also registered with the harness's watchdog (`watchdog.py`), which kills it the
moment the harness dies; the record is the second line of defence, for a watchdog that was
killed too.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx

from harness.clients.http import http_post
from harness.clients.poll import poll_until
from harness.paths import runs_dir
from harness.stack import watchdog
from harness.stack.ports import port_is_listening


def owned_dir() -> Path:
    return runs_dir() / "owned"


def _boot_id() -> str:
    try:
        return Path("/proc/sys/kernel/random/boot_id").read_text().strip()
    except OSError:
        return ""


@dataclass(frozen=True)
class ProcStat:
    pid: int
    state: str
    session: int
    start: int  # clock ticks since boot


def proc_stat(pid: int) -> ProcStat | None:
    """The fields of /proc/PID/stat the harness needs; None if there is no such process."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        fields = raw.rsplit(") ", 1)[1].split()
        return ProcStat(pid, fields[0], int(fields[3]), int(fields[19]))
    except (IndexError, ValueError):
        return None


def start_time(pid: int) -> int | None:
    st = proc_stat(pid)
    return st.start if st is not None and st.state != "Z" else None


def session_members(sid: int, leader_start: int) -> list[int]:
    """Live processes of session `sid` that the recorded session holds (see the module doc)."""
    leader = proc_stat(sid)
    if leader is not None and leader.start != leader_start:
        return []  # the number names another process now: the recorded session is gone
    members = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        st = proc_stat(int(entry))
        if st is not None and st.session == sid and st.state != "Z" and st.start >= leader_start:
            members.append(st.pid)
    return members


def kill_session(sid: int, leader_start: int, timeout_s: float = 5.0) -> list[int]:
    """SIGKILL every member of the session until none is left; return the PIDs killed."""
    killed: set[int] = set()

    def kill_members() -> list[int]:
        members = session_members(sid, leader_start)
        for pid in members:
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.kill(pid, signal.SIGKILL)
                killed.add(pid)
        return members

    poll_until(kill_members, timeout_s, 0.05, until=lambda left: not left)
    return sorted(killed)


@dataclass
class Record:
    """One harness process's record (mutable; written whole on every change)."""

    owner_pid: int
    owner_start: int
    boot_id: str
    sessions: dict[int, dict[str, Any]] = field(default_factory=dict)  # leader pid -> name, start
    ports: dict[str, list[int]] = field(default_factory=dict)  # run label -> ports
    toxiproxy: dict[str, str] = field(default_factory=dict)  # run label -> URL

    def to_json(self) -> dict[str, Any]:
        return {
            "owner": {"pid": self.owner_pid, "start": self.owner_start, "boot_id": self.boot_id},
            "sessions": [{"pid": pid, **s} for pid, s in sorted(self.sessions.items())],
            "ports": self.ports,
            "toxiproxy": self.toxiproxy,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Record:
        o = d["owner"]
        rec = cls(int(o["pid"]), int(o["start"]), str(o.get("boot_id", "")))
        for s in d.get("sessions", []):
            rec.sessions[int(s["pid"])] = {"name": str(s["name"]), "start": int(s["start"])}
        rec.ports = {str(k): [int(p) for p in v] for k, v in d.get("ports", {}).items()}
        rec.toxiproxy = {str(k): str(v) for k, v in d.get("toxiproxy", {}).items()}
        return rec

    def empty(self) -> bool:
        return not self.sessions and not self.ports and not self.toxiproxy

    def owner_alive(self) -> bool:
        if self.boot_id != _boot_id():
            return False
        return start_time(self.owner_pid) == self.owner_start


class Ownership:
    """This process's record: sessions are added as they start and removed once stopped."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._record: Record | None = None

    def _rec(self) -> Record:
        if self._record is None or self._record.owner_pid != os.getpid():
            pid = os.getpid()
            self._record = Record(pid, start_time(pid) or 0, _boot_id())
        return self._record

    def _write(self) -> None:
        rec = self._rec()
        path = owned_dir() / f"{rec.owner_pid}.json"
        if rec.empty():
            path.unlink(missing_ok=True)
            return
        path.parent.mkdir(parents=True, exist_ok=True)
        tmp = path.with_suffix(".tmp")
        tmp.write_text(json.dumps(rec.to_json(), indent=1))
        os.replace(tmp, path)

    def add_session(self, name: str, pid: int) -> None:
        start = start_time(pid)
        if start is None:
            return  # already gone: nothing to leave behind
        with self._lock:
            self._rec().sessions[pid] = {"name": name, "start": start}
            self._write()
        # The session's leader leads its process group too: killed whole if the harness dies.
        watchdog.current().add_group(pid, start)

    def remove_session(self, pid: int) -> None:
        watchdog.current().remove_group(pid)
        with self._lock:
            if self._rec().sessions.pop(pid, None) is not None:
                self._write()

    def add_stack(self, label: str, ports: list[int], toxiproxy_url: str | None) -> None:
        with self._lock:
            rec = self._rec()
            rec.ports[label] = sorted(set(ports))
            if toxiproxy_url:
                rec.toxiproxy[label] = toxiproxy_url
            self._write()

    def remove_stack(self, label: str) -> None:
        with self._lock:
            rec = self._rec()
            rec.ports.pop(label, None)
            rec.toxiproxy.pop(label, None)
            self._write()


_current = Ownership()


def current() -> Ownership:
    return _current


def _reset_toxiproxy(url: str) -> bool:
    """Clear every toxic and re-enable every proxy of a Toxiproxy that still answers."""
    try:
        return http_post(f"{url}/reset", timeout=2.0).status_code < 300
    except httpx.HTTPError:
        return False


def _wait_closed(ports: list[int], timeout_s: float = 5.0) -> list[int]:
    return poll_until(
        lambda: [p for p in ports if port_is_listening(p)],
        timeout_s,
        0.1,
        until=lambda left: not left,
    )


def reap_record(rec: Record) -> list[str]:
    """Remove what a dead harness left; one line per thing removed or still in the way."""
    lines: list[str] = []
    same_boot = rec.boot_id == _boot_id()
    for pid, s in sorted(rec.sessions.items()):
        killed = kill_session(pid, int(s["start"])) if same_boot else []
        if killed:
            lines.append(
                f"{s['name']}: killed session {pid} ({len(killed)} processes: "
                f"{', '.join(map(str, killed))})"
            )
    for url in rec.toxiproxy.values():
        if same_boot and _reset_toxiproxy(url):
            lines.append(f"toxiproxy {url} still answered: every toxic removed, proxies enabled")
    ports = sorted({p for ps in rec.ports.values() for p in ps})
    still = _wait_closed(ports) if same_boot and ports else []
    if still:
        lines.append("still listening (not ours to kill): " + ", ".join(map(str, still)))
    return lines


def reap_dead_owners(progress: Callable[[str], None] | None = None) -> list[str]:
    """Find records of harness processes that are gone, remove their leftovers, delete the
    records, and report (through `progress`, and as the return value) what was removed."""
    report: list[str] = []
    folder = owned_dir()
    if not folder.is_dir():
        return report
    for path in sorted(folder.glob("*.json")):
        try:
            rec = Record.from_json(json.loads(path.read_text()))
        except (OSError, ValueError, KeyError, TypeError):
            report.append(f"removed unreadable ownership record {path}")
            path.unlink(missing_ok=True)
            continue
        if rec.owner_alive():
            continue
        lines = reap_record(rec)
        path.unlink(missing_ok=True)
        head = f"cleaned up after harness process {rec.owner_pid}, which is gone"
        report.append(head + (":" if lines else ": nothing of it was still running"))
        report += [f"  {line}" for line in lines]
    for tmp in folder.glob("*.tmp"):  # a record being written when its owner was killed
        if tmp.stem.isdigit() and start_time(int(tmp.stem)) is None:
            tmp.unlink(missing_ok=True)
    if progress is not None:
        for line in report:
            progress(line)
    return report
