"""A watchdog that removes what the harness started the moment the harness is gone.

The harness starts it once, with the first process group or container it starts, and tells it
through a pipe on the watchdog's stdin, one line each:

    +group PID START        a process group it started (leader PID, the leader's start time)
    -group PID              that group was stopped
    +container NAME HOST    a container it is starting (on the engine at HOST; empty: from the
                            environment, DOCKER_HOST or the default socket)
    -container NAME         that container was removed

When the pipe reaches end of file (the harness died, even by SIGKILL: the kernel closes a dead
process's descriptors; or it exited, and then waits for the watchdog) the watchdog SIGKILLs every
group still registered with one killpg (a group outlives its leader: nginx's workers go with their
master), removes every container still registered, says on stderr what it removed, and exits.

It kills nothing it was not told about. A group is forgotten as soon as it has no process left,
since its number may then go to another process; a group whose leader's PID names a process
with another start time is gone already, its number reused, and is never signalled.

It is not tied to the harness by PR_SET_PDEATHSIG (that would kill it with the harness), it
sits in a session of its own (a ^C on the terminal, or a CI runner killing the harness's process
group, leaves it to do its work), and it runs as a script on the standard library alone
(docker's SDK is imported only to remove containers), so it starts in milliseconds.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import select
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

_PRUNE_EVERY_S = 0.5  # how long an emptied group's number stays registered, at most


def _start_ticks(pid: int) -> int | None:
    """Field 22 of /proc/PID/stat (clock ticks since boot); a zombie still has it. This script
    runs without the harness package, so it does not use harness.stack.ownership's reader."""
    try:
        raw = Path(f"/proc/{pid}/stat").read_text()
        return int(raw.rsplit(") ", 1)[1].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _ours(pgid: int, start: int) -> bool:
    """Whether the registered group still has a process (and its number was not reused)."""
    ticks = _start_ticks(pgid)
    if ticks is not None:
        return ticks == start
    try:
        # The leader is gone; while any member lives the number cannot be reused.
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass
    return True


def docker_remove(name: str, host: str) -> None:
    """Remove a container by name or id through docker's API (force: a running one too)."""
    import docker
    import docker.errors

    client = (
        docker.APIClient(base_url=host, timeout=10) if host else docker.from_env(timeout=10).api
    )
    try:
        with contextlib.suppress(docker.errors.NotFound):
            client.remove_container(name, v=True, force=True)
    finally:
        client.close()


class Registry:
    """What the harness registered and has not stopped yet (the watchdog's side)."""

    def __init__(self) -> None:
        self.groups: dict[int, int] = {}  # pgid -> leader's start ticks
        self.containers: dict[str, str] = {}  # name -> docker host ("" from the environment)

    def apply(self, line: str) -> None:
        verb, _, rest = line.strip().partition(" ")
        try:
            if verb == "+group":
                pgid, start = rest.split()
                self.groups[int(pgid)] = int(start)
            elif verb == "-group":
                self.groups.pop(int(rest), None)
            elif verb == "+container":
                name, _, host = rest.partition(" ")
                self.containers[name] = host
            elif verb == "-container":
                self.containers.pop(rest, None)
        except ValueError:
            pass  # a malformed line must not cost the watchdog its other registrations

    def prune(self) -> None:
        for pgid, start in list(self.groups.items()):
            if not _ours(pgid, start):
                del self.groups[pgid]

    def remove_all(self, remove_container: Callable[[str, str], None]) -> list[str]:
        """SIGKILL every registered group, then remove every registered container."""
        done: list[str] = []
        for pgid, start in self.groups.items():
            if not _ours(pgid, start):
                continue
            with contextlib.suppress(ProcessLookupError, PermissionError):
                os.killpg(pgid, signal.SIGKILL)
                done.append(f"killed process group {pgid}")

        def remove(item: tuple[str, str]) -> str:
            try:
                remove_container(*item)
                return f"removed container {item[0]}"
            except Exception as exc:  # an engine that is gone or refuses: say so, go on
                return f"could not remove container {item[0]}: {exc}"

        if self.containers:
            with ThreadPoolExecutor(max_workers=min(8, len(self.containers))) as pool:
                done += pool.map(remove, self.containers.items())
        return done


def serve(fd: int, remove_container: Callable[[str, str], None] = docker_remove) -> list[str]:
    """Read registrations from `fd` until end of file, then remove what is still registered."""
    registry = Registry()
    pending = b""
    next_prune = time.monotonic() + _PRUNE_EVERY_S
    while True:
        readable, _, _ = select.select([fd], [], [], max(0.0, next_prune - time.monotonic()))
        if time.monotonic() >= next_prune:
            registry.prune()
            next_prune = time.monotonic() + _PRUNE_EVERY_S
        if not readable:
            continue
        chunk = os.read(fd, 65536)
        if not chunk:
            break
        *lines, pending = (pending + chunk).split(b"\n")
        for line in lines:
            registry.apply(line.decode(errors="replace"))
    return registry.remove_all(remove_container)


def main(argv: list[str]) -> None:
    done = serve(sys.stdin.fileno())
    if done:
        with contextlib.suppress(OSError):
            print(
                f"harness watchdog: harness process {argv[1]} is gone: {'; '.join(done)}",
                file=sys.stderr,
                flush=True,
            )


class Watchdog:
    """The harness's side: starts the watchdog with the first registration and keeps it told."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._fd: int | None = None  # the pipe's write end (a raw fd: no buffer, no lock)
        self._proc: subprocess.Popen[bytes] | None = None  # held: not collected while it runs
        self._registered: dict[str, str] = {}  # key -> its "+" line, for a watchdog started anew

    def add_group(self, pgid: int, start: int) -> None:
        self._update(f"group {pgid}", f"+group {pgid} {start}")

    def remove_group(self, pgid: int) -> None:
        self._update(f"group {pgid}", f"-group {pgid}")

    def add_container(self, name: str, docker_host: str | None) -> None:
        self._update(f"container {name}", f"+container {name} {docker_host or ''}")

    def remove_container(self, name: str) -> None:
        self._update(f"container {name}", f"-container {name}")

    def _update(self, key: str, line: str) -> None:
        with self._lock:
            if line.startswith("+"):
                self._registered[key] = line
            elif self._registered.pop(key, None) is None:
                return
            if self._fd is not None and self._send([line]):
                return
            if self._registered:
                self._start()

    def _send(self, lines: Iterable[str]) -> bool:
        assert self._fd is not None
        try:
            # One write per line, each under PIPE_BUF: a killed harness never leaves half a line.
            for line in lines:
                os.write(self._fd, f"{line}\n".encode())
            return True
        except OSError:  # it died: a new one is started with everything still registered
            os.close(self._fd)
            self._fd = None
            return False

    def _start(self) -> None:
        read_end, write_end = os.pipe()
        try:
            self._proc = subprocess.Popen(
                # -P: this script's folder, which holds harness/stack/docker.py, must not shadow
                # docker's SDK; otherwise the same packages as the harness.
                [sys.executable, "-P", __file__, str(os.getpid())],
                stdin=read_end,
                stdout=subprocess.DEVNULL,
                cwd="/",
                start_new_session=True,
            )
        except BaseException:
            os.close(write_end)
            raise
        finally:
            os.close(read_end)
        self._fd = write_end
        self._send(list(self._registered.values()))

    def close(self, timeout_s: float = 15.0) -> None:
        """At the harness's normal exit: close the pipe and wait for the watchdog to finish, so
        nothing of the harness outlives it (the watchdog only has work left after a crash)."""
        with self._lock:
            if self._fd is None:
                return
            os.close(self._fd)
            self._fd = None
        if self._proc is not None:
            with contextlib.suppress(subprocess.TimeoutExpired):
                self._proc.wait(timeout_s)

    def _after_fork_in_child(self) -> None:
        """A forked child must not hold the pipe open (the watchdog would wait for the child
        too) nor speak for its parent's groups."""
        self._lock = threading.Lock()
        if self._fd is not None:
            os.close(self._fd)
            self._fd = None
        self._registered = {}


_current = Watchdog()
os.register_at_fork(after_in_child=_current._after_fork_in_child)
atexit.register(_current.close)


def current() -> Watchdog:
    return _current


if __name__ == "__main__":
    main(sys.argv)
