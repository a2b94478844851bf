"""Free-port allocation on 127.0.0.1: ports are never hard-coded."""

from __future__ import annotations

import socket


def free_ports(count: int) -> list[int]:
    """Reserve `count` distinct free ports by binding them all at once, then release them.

    Holding every socket until all are bound guarantees the ports are distinct; the window
    between release and the service binding is short and only other processes can race it.
    """
    socks: list[socket.socket] = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return [s.getsockname()[1] for s in socks]
    finally:
        for s in socks:
            s.close()


def port_is_listening(port: int, host: str = "127.0.0.1") -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((host, port)) == 0
