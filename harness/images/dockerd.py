"""A private Docker engine for tests and CI: Debian's dockerd with its own folders and socket.

Everything lives under `.tools/docker/` (git-ignored): data-root, exec-root, pidfile, socket, log.
It runs with no bridge network and no iptables rules, so containers can only use host networking
(every service listens on 127.0.0.1; nothing is ever sent to a bridge address). Stopped by the PID
in its pidfile, never by name.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
from dataclasses import dataclass
from pathlib import Path

from harness.clients.poll import poll_until
from harness.errors import HarnessError, ToolMissingError
from harness.paths import tools_dir

# sun_path holds 108 bytes including the terminating NUL.
_MAX_SOCKET_PATH = 107


class DockerdError(HarnessError):
    """The private dockerd could not be installed, started or stopped."""


@dataclass(frozen=True)
class DockerdPaths:
    root: Path

    @property
    def socket(self) -> Path:
        return self.root / "docker.sock"

    @property
    def host(self) -> str:
        """The DOCKER_HOST value that reaches this engine."""
        return f"unix://{self.socket}"

    @property
    def pidfile(self) -> Path:
        return self.root / "dockerd.pid"

    @property
    def log(self) -> Path:
        return self.root / "dockerd.log"

    @property
    def data_root(self) -> Path:
        return self.root / "data"

    @property
    def exec_root(self) -> Path:
        return self.root / "exec"


def default_paths() -> DockerdPaths:
    return DockerdPaths(tools_dir() / "docker")


def test_environment(paths: DockerdPaths) -> dict[str, str]:
    """Environment for testcontainers against this engine (Ryuk's image cannot be pulled here;
    a /.dockerenv file on these machines would otherwise make it guess a gateway address)."""
    return {
        "DOCKER_HOST": paths.host,
        "TESTCONTAINERS_RYUK_DISABLED": "true",
        "TESTCONTAINERS_CONNECTION_MODE": "docker_host",
    }


def resolve_docker_host() -> str | None:
    """DOCKER_HOST if set, else this project's engine if its socket exists, else None (default)."""
    env = os.environ.get("DOCKER_HOST")
    if env:
        return env
    paths = default_paths()
    return paths.host if paths.socket.exists() else None


def ensure_installed() -> Path:
    """Path of dockerd; installs Debian's docker.io when missing and we are root with apt."""
    found = shutil.which("dockerd")
    if found:
        return Path(found)
    if os.geteuid() != 0 or shutil.which("apt-get") is None:
        raise ToolMissingError("dockerd (Debian package docker.io)")
    _apt_install(["docker.io"])
    found = shutil.which("dockerd")
    if not found:
        raise DockerdError("apt-get installed docker.io but dockerd is still not on PATH")
    return Path(found)


def _apt_install(packages: list[str]) -> None:
    cmd = ["apt-get", "install", "-y", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    if subprocess.run(cmd, env=env, capture_output=True, check=False).returncode == 0:
        return
    # Package lists may be missing or stale: refresh once, then retry.
    subprocess.run(["apt-get", "update"], env=env, capture_output=True, check=False)
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise DockerdError(f"`{' '.join(cmd)}` failed:\n{done.stderr[-2000:]}")


def running_pid(paths: DockerdPaths) -> int | None:
    """PID of this project's dockerd if it runs (checked against its command line)."""
    try:
        pid = int(paths.pidfile.read_text().strip())
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except (OSError, ValueError):
        return None
    # A recycled PID must not be mistaken for ours: match the binary and our data-root.
    if not cmdline or not cmdline[0].endswith(b"dockerd"):
        return None
    ours = f"--data-root={paths.data_root}".encode()
    return pid if ours in cmdline else None


def ping(paths: DockerdPaths, timeout_s: float = 2.0) -> bool:
    import docker

    try:
        client = docker.DockerClient(base_url=paths.host, timeout=int(max(1, timeout_s)))
    except docker.errors.DockerException:
        return False
    try:
        return bool(client.ping())
    except Exception:  # any transport error means "not ready yet"
        return False
    finally:
        client.close()


def start(paths: DockerdPaths | None = None, timeout_s: float = 30.0) -> tuple[DockerdPaths, bool]:
    """Start the engine unless it already runs; returns (paths, started_now)."""
    paths = paths or default_paths()
    if running_pid(paths) is not None and ping(paths):
        return paths, False
    if len(str(paths.socket)) > _MAX_SOCKET_PATH:
        raise DockerdError(
            f"socket path {paths.socket} is longer than {_MAX_SOCKET_PATH} bytes; "
            "set HARNESS_TOOLS_DIR to a shorter folder"
        )
    binary = ensure_installed()
    for d in (paths.root, paths.data_root, paths.exec_root):
        d.mkdir(parents=True, exist_ok=True)
    # A socket left by a killed engine makes dockerd refuse to start.
    paths.socket.unlink(missing_ok=True)
    argv = [
        str(binary),
        f"--data-root={paths.data_root}",
        f"--exec-root={paths.exec_root}",
        f"--pidfile={paths.pidfile}",
        f"--host={paths.host}",
        # No docker0 bridge and no NAT rules: containers get host networking or nothing.
        "--bridge=none",
        "--iptables=false",
        "--ip-masq=false",
        "--shutdown-timeout=5",
        "--log-level=warn",
    ]
    with paths.log.open("ab") as log:
        # Own session: the engine outlives `harness images dockerd start` and ignores our ^C.
        proc = subprocess.Popen(
            argv,
            stdout=log,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    # Until it answers, or exits (its exit code is then the error).
    if poll_until(lambda: proc.poll() is not None or ping(paths, timeout_s=1.0), timeout_s, 0.2):
        if proc.returncode is not None:
            raise DockerdError(f"dockerd exited with {proc.returncode}\n{_log_tail(paths)}")
        return paths, True
    _terminate(proc.pid, grace_s=5.0)
    raise DockerdError(f"dockerd did not answer within {timeout_s:.0f} s\n{_log_tail(paths)}")


def stop(paths: DockerdPaths | None = None, grace_s: float = 20.0) -> bool:
    """Stop the engine by its pidfile; returns whether one was running."""
    paths = paths or default_paths()
    pid = running_pid(paths)
    if pid is None:
        return False
    _terminate(pid, grace_s)
    paths.pidfile.unlink(missing_ok=True)
    _unmount_below(paths.root)
    return True


def _unmount_below(root: Path) -> None:
    """Unmount what dockerd left mounted under its folder (exec-root/netns/default), so that
    `rm -rf .tools` works; a stopped engine mounts it again when it starts."""
    try:
        mounts = Path("/proc/self/mounts").read_text().splitlines()
    except OSError:
        return
    targets = [line.split()[1] for line in mounts if len(line.split()) > 1]
    for target in sorted((t for t in targets if t.startswith(f"{root}/")), reverse=True):
        subprocess.run(["umount", target], capture_output=True, check=False)


def _terminate(pid: int, grace_s: float) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGTERM)
    if poll_until(lambda: not _alive(pid), grace_s, 0.1):
        return
    with contextlib.suppress(ProcessLookupError):
        os.kill(pid, signal.SIGKILL)


def _alive(pid: int) -> bool:
    # Reap it if it is our child (started in this process), so it does not linger as a zombie.
    with contextlib.suppress(ChildProcessError):
        done, _ = os.waitpid(pid, os.WNOHANG)
        if done == pid:
            return False
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


def _log_tail(paths: DockerdPaths, lines: int = 20) -> str:
    try:
        text = paths.log.read_text(errors="replace")
    except OSError:
        return ""
    return f"--- last lines of {paths.log} ---\n" + "\n".join(text.splitlines()[-lines:])
