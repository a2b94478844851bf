"""One readiness vocabulary for processes and containers: each check says what it waits for."""

from __future__ import annotations

import socket
from dataclasses import dataclass

import httpx

from harness.clients.http import http_get


@dataclass(frozen=True)
class HttpReady:
    """Ready when GET url answers `status` (and the body contains `body_contains`, if set)."""

    url: str
    status: int = 200
    body_contains: str | None = None

    def probe(self) -> str | None:
        """None when ready, otherwise why not."""
        try:
            r = http_get(self.url, timeout=1.0)
        except httpx.HTTPError as exc:
            return f"GET {self.url}: {type(exc).__name__}"
        if r.status_code != self.status:
            return f"GET {self.url}: status {r.status_code}, want {self.status}"
        if self.body_contains is not None and self.body_contains not in r.text:
            return f"GET {self.url}: body lacks {self.body_contains!r}"
        return None

    def describe(self) -> str:
        return f"GET {self.url} -> {self.status}"


@dataclass(frozen=True)
class TcpReady:
    """Ready when a TCP connection to host:port opens (and `expect` answers `send`, if set)."""

    host: str
    port: int
    send: bytes | None = None
    expect: bytes | None = None

    def probe(self) -> str | None:
        try:
            with socket.create_connection((self.host, self.port), timeout=1.0) as s:
                if self.send is not None:
                    s.sendall(self.send)
                    data = s.recv(64)
                    if self.expect is not None and not data.startswith(self.expect):
                        return f"{self.host}:{self.port} answered {data!r}"
        except OSError as exc:
            return f"connect {self.host}:{self.port}: {exc.strerror or exc}"
        return None

    def describe(self) -> str:
        return f"TCP {self.host}:{self.port}"


def redis_ready(port: int) -> TcpReady:
    return TcpReady("127.0.0.1", port, send=b"PING\r\n", expect=b"+PONG")


ReadyCheck = HttpReady | TcpReady
