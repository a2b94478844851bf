"""Free-port allocation on 127.0.0.1: ports are never hard-coded, and never handed out twice.

A port found free and then released can be taken by someone else before the service binds it:
another harness (tests run side by side), or the kernel for an outgoing connection. So ports
come from below the kernel's ephemeral range (outgoing connections never get them), and each one
handed out is reserved by a file in a folder every harness process on the machine shares, until
its service has had time to bind it (`HOLD_S`); a reservation older than that is taken over.
"""

from __future__ import annotations

import contextlib
import errno
import os
import random
import socket
import tempfile
import time
from pathlib import Path

# Below Linux's default ephemeral range (32768-60999) and above most well-known services.
PORT_LOW, PORT_HIGH = 20000, 32000
HOLD_S = 120.0  # longer than any service takes to bind its port after start


def _reservations() -> Path:
    d = Path(os.environ.get("HARNESS_PORTS_DIR", Path(tempfile.gettempdir()) / "harness-ports"))
    d.mkdir(parents=True, exist_ok=True)
    return d


def _reserve(port: int, folder: Path) -> bool:
    """Claim `port` for this process; False when a live reservation of another holds it."""
    path = folder / str(port)
    for _ in range(2):
        try:
            fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
        except FileExistsError:
            try:
                owner = int(path.read_text() or "0")
                age = time.time() - path.stat().st_mtime
            except (OSError, ValueError):
                owner, age = 0, HOLD_S  # half-written or gone: treat as stale
            # Held for its whole time even when its owner has died: a killed harness's ports
            # must not be handed out while what it started may still be listening on them.
            if owner != os.getpid() and age < HOLD_S:
                return False
            with contextlib.suppress(FileNotFoundError):
                path.unlink()
            continue
        with os.fdopen(fd, "w") as f:
            f.write(str(os.getpid()))
        return True
    return False


def _bindable(port: int) -> bool:
    """Free for TCP and for UDP: the log store's syslog input listens on UDP, and a port whose
    reservation has lapsed may still be held that way by a stack that has long been running."""
    for kind in (socket.SOCK_STREAM, socket.SOCK_DGRAM):
        with socket.socket(socket.AF_INET, kind) as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError as e:
                if e.errno in (errno.EADDRINUSE, errno.EACCES):
                    return False
                raise
    return True


def free_ports(count: int) -> list[int]:
    """`count` distinct ports, each free now and reserved for this process for `HOLD_S`."""
    folder = _reservations()
    rng = random.Random()
    out: list[int] = []
    for _ in range(count * 200):
        if len(out) == count:
            return out
        port = rng.randrange(PORT_LOW, PORT_HIGH)
        if port in out or not _reserve(port, folder):
            continue
        if _bindable(port):
            out.append(port)
        else:
            (folder / str(port)).unlink(missing_ok=True)
    if len(out) == count:
        return out
    raise OSError(errno.EADDRINUSE, f"no {count} free ports in {PORT_LOW}-{PORT_HIGH}")


def port_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0
