"""Services as child processes: each in a session of its own, recorded in the harness's ownership
record and registered with its watchdog (so nothing outlives a dead harness), stopped as one,
logs to a file."""

from __future__ import annotations

import functools
import os
import signal
import subprocess
import threading
import time
from collections import deque
from pathlib import Path
from typing import IO

from harness import SERVICE_ENV_DROP
from harness.errors import StackError
from harness.niceness import keep_niceness
from harness.stack import ownership
from harness.stack.plan import ServiceDef

_PR_SET_PDEATHSIG = 1


def _die_with_parent(parent: int) -> None:
    """Runs in the child before exec: if the harness dies (even by SIGKILL), the kernel sends
    the service SIGKILL. Its own children get no such signal: the watchdog kills the group."""
    try:
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGKILL)
    except OSError:
        pass
    if os.getppid() != parent:  # the harness died before the signal was armed: never start
        os._exit(1)


def tail_file(path: Path, lines: int = 30) -> str:
    try:
        with path.open("rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode("utf-8", errors="replace")
    except OSError:
        return ""
    return "\n".join(deque(data.splitlines(), maxlen=lines))


class ProcessService:
    """One service running as a child process (a ServiceHandle)."""

    def __init__(self, definition: ServiceDef, log_path: Path) -> None:
        self.name = definition.name
        self.definition = definition
        self.log_path = log_path
        self._proc: subprocess.Popen[bytes] | None = None
        self._log: IO[bytes] | None = None
        self._paused = False
        self._start_ticks: int | None = None

    def start(self) -> None:
        self.log_path.parent.mkdir(parents=True, exist_ok=True)
        self._log = self.log_path.open("ab")
        env = {k: v for k, v in os.environ.items() if k not in SERVICE_ENV_DROP}
        env.update(self.definition.env)
        # Own session and process group: a terminal's Ctrl-C reaches only the harness, which
        # then stops services in order; and kill/pause faults hit the whole service.
        self._proc = subprocess.Popen(
            self.definition.argv,
            stdin=subprocess.DEVNULL,
            stdout=self._log,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
            # PDEATHSIG follows the starting *thread*: only tie it to the main thread.
            preexec_fn=functools.partial(_die_with_parent, os.getpid())
            if threading.current_thread() is threading.main_thread()
            else None,
        )
        keep_niceness(self._proc.pid)
        self._start_ticks = ownership.start_time(self._proc.pid)
        ownership.current().add_session(self.name, self._proc.pid)

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def alive(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def exit_code(self) -> int | None:
        return self._proc.poll() if self._proc else None

    def _signal(self, sig: int) -> None:
        if self._proc is None or self._proc.poll() is not None:
            return
        try:
            os.killpg(self._proc.pid, sig)
        except ProcessLookupError:
            pass

    def pause(self) -> None:
        self._signal(signal.SIGSTOP)
        self._paused = True

    def resume(self) -> None:
        self._signal(signal.SIGCONT)
        self._paused = False

    def reload(self) -> None:
        # The leader only: nginx's master restarts its workers itself.
        if self._proc is None or self._proc.poll() is not None:
            raise StackError(f"{self.name} is not running: no process to reload")
        os.kill(self._proc.pid, signal.SIGHUP)

    def kill(self) -> None:
        self._signal(signal.SIGKILL)
        if self._proc is not None:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass

    def stop(self, timeout_s: float = 5.0) -> None:
        proc = self._proc
        if proc is None:
            return
        if proc.poll() is None:
            if self._paused:
                self.resume()  # a stopped process cannot act on SIGTERM
            self._signal(signal.SIGTERM)
            try:
                proc.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                self._signal(signal.SIGKILL)
                proc.wait(timeout=5)
        # Processes that outlived the leader (its session: nginx's workers) get no second chance.
        if self._start_ticks is not None:
            ownership.kill_session(proc.pid, self._start_ticks)
        ownership.current().remove_session(proc.pid)
        if self._log is not None:
            self._log.close()
            self._log = None

    def restart(self) -> None:
        self.stop()
        time.sleep(0.1)
        self.start()

    def log_tail(self, lines: int = 30) -> str:
        return tail_file(self.log_path, lines)


class ProcessLauncher:
    """The local provider's launcher."""

    kind = "local"

    def launch(self, definition: ServiceDef, log_path: Path) -> ProcessService:
        svc = ProcessService(definition, log_path)
        svc.start()
        return svc

    def close(self) -> None:
        """Nothing shared to release: each ProcessService stops itself."""


def descendants(pid: int) -> set[int]:
    """Every descendant PID of `pid`, read from /proc (never matched by name)."""
    found: set[int] = set()
    todo = [pid]
    while todo:
        p = todo.pop()
        try:
            tasks = os.listdir(f"/proc/{p}/task")
        except OSError:
            continue
        for t in tasks:
            try:
                kids = Path(f"/proc/{p}/task/{t}/children").read_text().split()
            except OSError:
                continue
            for k in map(int, kids):
                if k not in found:
                    found.add(k)
                    todo.append(k)
    return found


def pid_alive(pid: int) -> bool:
    """True for a running (not zombie) process."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(") ", 1)[1].split()[0]
    except (OSError, IndexError):
        return False
    return state != "Z"
