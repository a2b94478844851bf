"""Fixtures for the gateway integration tests: real Redis, Toxiproxy, model servers and gateways.

Every service is a child process on 127.0.0.1 with a port found by binding to port 0, stopped by
PID in teardown. `FakeUpstreamServer` is the one fake: a scripted OpenAI-style server for
behaviour a real model cannot be made to show on demand (a 500, a hang, PII split across chunks).

Import the fixtures into a test module with `from gateway_fixtures import *  # noqa: F403`.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest

from harness.errors import ToolMissingError
from harness.niceness import keep_niceness
from harness.paths import PROJECT_ROOT
from harness.spec.gateway import GatewayRuntimeConfig, GatewaySettings
from harness.stack.ports import free_ports
from harness.tools import default_model_path, find_binary

__all__ = [
    "API_KEY",
    "FakeUpstreamServer",
    "GatewayProcess",
    "Toxiproxy",
    "fake_upstream",
    "gateway_factory",
    "gateway_log_dir",
    "llama_server",
    "redis_server",
    "sim_server",
    "toxiproxy",
]

API_KEY = "sk-gateway-tests"
READY_TIMEOUT_S = 60.0  # generous: other builds and test runs share the two cores
_FALLBACK_PATHS = {
    "toxiproxy-server": PROJECT_ROOT / ".tools" / "gobin" / "server",
    "llm-d-inference-sim": PROJECT_ROOT / ".tools" / "gobin" / "llm-d-inference-sim",
}


def free_port() -> int:
    return free_ports(1)[0]


def binary(name: str) -> Path:
    try:
        return find_binary(name)
    except ToolMissingError:
        alt = _FALLBACK_PATHS.get(name)
        if alt is not None and alt.is_file():
            return alt
        pytest.skip(f"{name} is not installed (make install)")


class ManagedProcess:
    """A child process with its log in a file; stopped by PID (TERM, then KILL)."""

    def __init__(
        self, name: str, argv: list[str], log_dir: Path, env: dict[str, str] | None = None
    ):
        self.name = name
        self.log_path = log_dir / f"{name}.log"
        self._log = self.log_path.open("wb")
        self.proc = subprocess.Popen(
            argv, stdout=self._log, stderr=subprocess.STDOUT, env=env, start_new_session=True
        )
        keep_niceness(self.proc.pid)

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_tail(self, lines: int = 25) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def wait_until(self, probe: Callable[[], bool], what: str, timeout_s: float = READY_TIMEOUT_S):
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(
                    f"{self.name} exited with {self.proc.returncode} before {what}; "
                    f"log tail:\n{self.log_tail()}"
                )
            with contextlib.suppress(Exception):
                if probe():
                    return
            time.sleep(0.1)
        raise RuntimeError(
            f"{self.name}: no {what} within {timeout_s:g} s; log:\n{self.log_tail()}"
        )

    def wait_http_ok(self, url: str, timeout_s: float = READY_TIMEOUT_S) -> None:
        self.wait_until(lambda: httpx.get(url, timeout=2.0).status_code == 200, f"200 from {url}")

    def stop(self, timeout_s: float = 10.0) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout_s)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout_s)
        self._log.close()


# ------------------------------------------------------------------------------------- services


@pytest.fixture(scope="session")
def gateway_log_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("gateway-services")


@pytest.fixture(scope="session")
def redis_server(gateway_log_dir: Path) -> Iterator[str]:
    """A real redis-server; yields "127.0.0.1:PORT"."""
    port = free_port()
    argv = [
        str(binary("redis-server")),
        "--bind",
        "127.0.0.1",
        "--port",
        str(port),
        "--save",
        "",
        "--appendonly",
        "no",
        "--protected-mode",
        "yes",
    ]
    proc = ManagedProcess("redis", argv, gateway_log_dir)
    try:
        proc.wait_until(lambda: _redis_ping(port), "PONG")
        yield f"127.0.0.1:{port}"
    finally:
        proc.stop()


def _redis_ping(port: int) -> bool:
    with socket.create_connection(("127.0.0.1", port), timeout=1.0) as s:
        s.sendall(b"PING\r\n")
        return s.recv(16).startswith(b"+PONG")


class Toxiproxy:
    """The Toxiproxy HTTP API with a timeout on every call (its API can stall under load)."""

    def __init__(self, api: str) -> None:
        self.api = api
        self._http = httpx.Client(base_url=api, timeout=10.0, trust_env=False)

    def create(self, name: str, upstream: str) -> str:
        """Create a proxy to upstream ("127.0.0.1:PORT"); returns its listen address."""
        r = self._http.post(
            "/proxies", json={"name": name, "listen": "127.0.0.1:0", "upstream": upstream}
        )
        r.raise_for_status()
        return str(r.json()["listen"])

    def set_enabled(self, name: str, enabled: bool) -> None:
        self._http.post(f"/proxies/{name}", json={"enabled": enabled}).raise_for_status()

    def add_toxic(self, proxy: str, toxic: str, type_: str, **attributes: int) -> None:
        body = {"name": toxic, "type": type_, "stream": "downstream", "attributes": attributes}
        self._http.post(f"/proxies/{proxy}/toxics", json=body).raise_for_status()

    def remove_toxic(self, proxy: str, toxic: str) -> None:
        self._http.delete(f"/proxies/{proxy}/toxics/{toxic}").raise_for_status()

    @contextlib.contextmanager
    def toxic(self, proxy: str, type_: str, **attributes: int) -> Iterator[None]:
        name = f"{type_}-{time.monotonic_ns()}"
        self.add_toxic(proxy, name, type_, **attributes)
        try:
            yield
        finally:
            self.remove_toxic(proxy, name)

    @contextlib.contextmanager
    def down(self, proxy: str) -> Iterator[None]:
        self.set_enabled(proxy, False)
        try:
            yield
        finally:
            self.set_enabled(proxy, True)

    def close(self) -> None:
        self._http.close()


@pytest.fixture(scope="session")
def toxiproxy(gateway_log_dir: Path) -> Iterator[Toxiproxy]:
    port = free_port()
    argv = [str(binary("toxiproxy-server")), "-host", "127.0.0.1", "-port", str(port)]
    proc = ManagedProcess("toxiproxy", argv, gateway_log_dir)
    client = Toxiproxy(f"http://127.0.0.1:{port}")
    try:
        proc.wait_http_ok(f"http://127.0.0.1:{port}/version")
        yield client
    finally:
        client.close()
        proc.stop()


@pytest.fixture(scope="session")
def sim_server(gateway_log_dir: Path) -> Iterator[str]:
    """llm-d-inference-sim serving the model names "primary" and "fallback"; yields its base URL.

    Fast and deterministic in timing (TTFT 20 ms, 5 ms per token), so most behaviour tests use it.
    """
    port = free_port()
    argv = [
        str(binary("llm-d-inference-sim")),
        "--model",
        "primary",
        "--served-model-name",
        "primary",
        "fallback",
        "--port",
        str(port),
        "--mode",
        "random",
        "--time-to-first-token",
        "20ms",
        "--inter-token-latency",
        "5ms",
        "--max-num-seqs",
        "64",
        "--max-model-len",
        "4096",
        "--seed",
        "1",
    ]
    proc = ManagedProcess("sim", argv, gateway_log_dir)
    try:
        # It listens on every interface (no host flag): always reach it on 127.0.0.1.
        proc.wait_http_ok(f"http://127.0.0.1:{port}/v1/models")
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


@pytest.fixture(scope="session")
def llama_server(gateway_log_dir: Path) -> Iterator[str]:
    """A real llama.cpp llama-server with SmolLM2-135M; yields its base URL."""
    try:
        model = default_model_path()
    except ToolMissingError as e:
        pytest.skip(str(e))
    port = free_port()
    argv = [
        str(binary("llama-server")),
        "-m",
        str(model),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "-np",
        "4",
        "-c",
        "4096",
        "-t",
        "2",
        "--metrics",
    ]
    proc = ManagedProcess("llama-server", argv, gateway_log_dir)
    try:
        try:
            proc.wait_http_ok(f"http://127.0.0.1:{port}/health", timeout_s=120)
        except RuntimeError as e:
            if proc.proc.returncode == -signal.SIGILL:
                pytest.skip(f"llama-server was built for another CPU (illegal instruction): {e}")
            raise
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.stop()


# ------------------------------------------------------------------------- the fake upstream


@dataclass
class FakeUpstreamServer:
    """A scripted OpenAI-style model server on 127.0.0.1 for exact misbehaviour.

    mode: "ok" | "status_500" | "hang" | "pii". Every received JSON body is kept in `received`.
    In "pii" mode a stream sends its deltas one by one, and with `gate` set it waits for the
    test to set the gate after the first delta (proves the gateway does not buffer streams).
    """

    mode: str = "ok"
    received: list[dict[str, Any]] = field(default_factory=list)
    gate: threading.Event | None = None
    pii_deltas: tuple[str, ...] = ("Reach me at jo", "hn@exam", "ple.com or 555-12", "3-4567 ok")
    url: str = ""
    _server: ThreadingHTTPServer | None = None
    _release: threading.Event = field(default_factory=threading.Event)

    def start(self) -> None:
        owner = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                self._send_json(200, {"status": "ok"})

            def do_POST(self) -> None:
                length = int(self.headers.get("content-length") or 0)
                body = json.loads(self.rfile.read(length) or b"{}")
                owner.received.append(body)
                chat = self.path.endswith("/chat/completions")
                if owner.mode == "status_500":
                    self._send_json(500, {"error": {"message": "scripted failure"}})
                elif owner.mode == "hang":
                    owner._release.wait(30)
                    self._send_json(500, {"error": {"message": "released"}})
                elif body.get("stream"):
                    self._stream(chat, body)
                else:
                    text = "".join(owner.pii_deltas) if owner.mode == "pii" else "fake answer"
                    self._send_json(200, _answer(chat, text, body))

            def _send_json(self, status: int, payload: Any) -> None:
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def _stream(self, chat: bool, body: dict[str, Any]) -> None:
                self.send_response(200)
                self.send_header("content-type", "text/event-stream")
                self.send_header("connection", "close")
                self.end_headers()
                deltas = owner.pii_deltas if owner.mode == "pii" else ("fake ", "answer")
                for i, delta in enumerate(deltas):
                    self._event(_chunk(chat, delta, None))
                    if i == 0 and owner.gate is not None:
                        owner.gate.wait(30)
                self._event(_chunk(chat, "", "stop"))
                if (body.get("stream_options") or {}).get("include_usage"):
                    usage = {"prompt_tokens": 3, "completion_tokens": len(deltas)}
                    self._event({"id": "fake", "choices": [], "usage": usage})
                self.wfile.write(b"data: [DONE]\n\n")
                self.wfile.flush()
                self.close_connection = True

            def _event(self, payload: Any) -> None:
                self.wfile.write(f"data: {json.dumps(payload)}\n\n".encode())
                self.wfile.flush()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        self._release.set()
        if self.gate is not None:
            self.gate.set()
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _answer(chat: bool, text: str, body: dict[str, Any]) -> dict[str, Any]:
    usage = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}
    if chat:
        choice = {"index": 0, "message": {"role": "assistant", "content": text}}
    else:
        choice = {"index": 0, "text": text}
    choice["finish_reason"] = "stop"
    return {
        "id": "fake",
        "object": "x",
        "model": body.get("model"),
        "choices": [choice],
        "usage": usage,
    }


def _chunk(chat: bool, text: str, finish: str | None) -> dict[str, Any]:
    choice: dict[str, Any] = (
        {"index": 0, "delta": {"content": text} if text else {}}
        if chat
        else {"index": 0, "text": text}
    )
    choice["finish_reason"] = finish
    return {"id": "fake", "object": "chunk", "model": "fake", "choices": [choice]}


@pytest.fixture
def fake_upstream() -> Iterator[FakeUpstreamServer]:
    server = FakeUpstreamServer()
    server.start()
    try:
        yield server
    finally:
        server.stop()


# ------------------------------------------------------------------------------------ gateways


@dataclass
class GatewayProcess:
    url: str
    process: ManagedProcess
    config: GatewayRuntimeConfig

    def client(self, **kw: Any) -> httpx.Client:
        headers = {"X-API-Key": API_KEY, **kw.pop("headers", {})}
        return httpx.Client(
            base_url=self.url, headers=headers, timeout=kw.pop("timeout", 30.0), trust_env=False
        )

    def metric(self, name: str, **labels: str) -> float | None:
        """One sample of /metrics (labels must match exactly the ones given); None if absent."""
        text = httpx.get(self.url + "/metrics", timeout=10.0, trust_env=False).text
        return metric_value(text, name, **labels)

    def log_lines(self) -> list[dict[str, Any]]:
        lines = []
        for line in self.process.log_path.read_text(errors="replace").splitlines():
            if line.startswith("{"):
                with contextlib.suppress(ValueError):
                    lines.append(json.loads(line))
        return lines


def metric_value(text: str, name: str, **labels: str) -> float | None:
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return float(sample.value)
    return None


@pytest.fixture(scope="module")
def gateway_factory(
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[Callable[..., GatewayProcess]]:
    """Start gateway replicas the way the stack does: uvicorn --factory with GATEWAY_CONFIG."""
    started: list[ManagedProcess] = []
    run_dir = tmp_path_factory.mktemp("gateways")

    def start(
        primary_urls: tuple[str, ...],
        fallback_urls: tuple[str, ...] = (),
        redis_url: str | None = None,
        settings: dict[str, Any] | None = None,
        replica: str | None = None,
        primary_model: str = "primary",
        fallback_model: str = "fallback",
    ) -> GatewayProcess:
        replica = replica or f"gw-{len(started) + 1}"
        config = GatewayRuntimeConfig(
            replica=replica,
            primary_urls=primary_urls,
            fallback_urls=fallback_urls,
            redis_url=redis_url,
            primary_model=primary_model,
            fallback_model=fallback_model,
            settings=GatewaySettings.model_validate(settings or {}),
        )
        config_path = run_dir / f"{replica}.json"
        config_path.write_text(config.model_dump_json())
        port = free_port()
        argv = [
            sys.executable,
            "-m",
            "uvicorn",
            "gateway.app:create_app",
            "--factory",
            "--app-dir",
            str(PROJECT_ROOT / "stack"),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
            "--no-access-log",
            "--loop",
            "uvloop",
            "--http",
            "httptools",
        ]
        env = {**os.environ, "GATEWAY_CONFIG": str(config_path), "GATEWAY_API_KEYS": API_KEY}
        proc = ManagedProcess(replica, argv, run_dir, env=env)
        started.append(proc)
        url = f"http://127.0.0.1:{port}"
        proc.wait_http_ok(url + "/healthz")
        return GatewayProcess(url, proc, config)

    try:
        yield start
    finally:
        for proc in started:
            proc.stop()
