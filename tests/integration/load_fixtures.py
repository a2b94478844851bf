"""Fixtures of the load tests: llm-d-inference-sim processes with known timings, a Prometheus,
and the real `harness` command line as a child process.

Import the fixtures into a test module (`from load_fixtures import simulator  # noqa: F401`).
Every process is started here, reached on 127.0.0.1 only, and stopped by its PID.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from nginx_support import nginx_argv
from process_support import default_sigint

from harness.clients.prometheus import PrometheusClient
from harness.niceness import keep_niceness
from harness.stack.ports import free_ports
from harness.tools import find_binary

__all__ = ["idle_closing_nginx", "prometheus", "simulator"]

HARNESS = [sys.executable, "-m", "harness"]
FIXTURES = Path(__file__).resolve().parent.parent / "fixtures"


def run_harness(
    *args: str | Path,
    timeout_s: float = 120.0,
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """`harness ARGS...` to the end, as a user runs it (from `cwd`, with `env` added to the
    environment); stdout and stderr captured."""
    return subprocess.run(
        [*HARNESS, *map(str, args)],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        stdin=subprocess.DEVNULL,
        preexec_fn=default_sigint,
        cwd=cwd,
        env={**os.environ, **(env or {})},
    )


def start_harness(*args: str | Path, log: Path) -> subprocess.Popen[bytes]:
    """`harness ARGS...` in the background, in its own session (stop_harness ends it by PID)."""
    with log.open("wb") as f:
        proc = subprocess.Popen(
            [*HARNESS, *map(str, args)],
            stdout=f,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
            preexec_fn=default_sigint,
        )
    keep_niceness(proc.pid)
    return proc


def stop_harness(proc: subprocess.Popen[bytes]) -> None:
    """Kill what is left of a harness started by start_harness (its session only)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


def wait_for_samples(run_dir: Path, proc: subprocess.Popen[bytes], log: Path) -> None:
    """Until a Locust worker has flushed a sample under run_dir (any depth), or fail."""
    deadline = time.monotonic() + 60
    while not any(p.stat().st_size > 0 for p in run_dir.glob("**/samples/samples-*.jsonl")):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise AssertionError(f"no samples under {run_dir}:\n{log.read_text()[-3000:]}")
        time.sleep(0.2)


def free_port() -> int:
    return free_ports(1)[0]


def wait_http(url: str, proc: subprocess.Popen[bytes], log: Path, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{url}: process exited {proc.returncode}:\n{log.read_text()[-2000:]}"
            )
        try:
            if httpx.get(url, timeout=1.0).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{url} not ready in {timeout_s}s:\n{log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGCONT)  # a paused process cannot act on SIGTERM
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)


@dataclass
class Sim:
    url: str
    port: int
    proc: subprocess.Popen[bytes]
    ttft_ms: int
    itl_ms: int

    def pause(self) -> None:
        os.kill(self.proc.pid, signal.SIGSTOP)

    def resume(self) -> None:
        os.kill(self.proc.pid, signal.SIGCONT)


SimFactory = Callable[..., Sim]


@pytest.fixture
def simulator(tmp_path: Path) -> Iterator[SimFactory]:
    """Start llm-d-inference-sim with given timings: simulator(ttft_ms=200, itl_ms=50, ...)."""
    binary = find_binary("llm-d-inference-sim")
    started: list[Sim] = []

    def start(ttft_ms: int = 100, itl_ms: int = 20, max_num_seqs: int = 64, *extra: str) -> Sim:
        port = free_port()
        log = tmp_path / f"sim-{port}.log"
        argv = [
            str(binary),
            "--model",
            "sim-model",
            "--port",
            str(port),
            "--mode",
            "random",
            "--time-to-first-token",
            f"{ttft_ms}ms",
            "--inter-token-latency",
            f"{itl_ms}ms",
            "--max-num-seqs",
            str(max_num_seqs),
            "--max-model-len",
            "4096",
            "--seed",
            "1",
            # its KV-event publisher defaults to tcp://127.0.0.1:5557; keep two sims apart
            "--zmq-endpoint",
            f"tcp://127.0.0.1:{free_port()}",
            *extra,
        ]
        with log.open("wb") as f:
            proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        sim = Sim(f"http://127.0.0.1:{port}", port, proc, ttft_ms, itl_ms)
        started.append(sim)
        wait_http(f"{sim.url}/health", proc, log)
        return sim

    try:
        yield start
    finally:
        for sim in started:
            stop(sim.proc)


# One streamed completion, canned: nginx answers every POST with it.
_SSE_ANSWER = (
    'data: {"choices":[{"index":0,"delta":{"role":"assistant","content":"hi"}}]}\\n\\n'
    'data: {"choices":[{"index":0,"delta":{"content":" there"},"finish_reason":"length"}]}\\n\\n'
    "data: [DONE]\\n\\n"
)


@pytest.fixture
def idle_closing_nginx(tmp_path: Path) -> Iterator[Callable[[int], str]]:
    """A real nginx that closes keep-alive connections idle longer than `keepalive_ms` (as
    llama-server does), answering every completion with a canned stream; returns its URL."""
    procs: list[subprocess.Popen[bytes]] = []

    def start(keepalive_ms: int) -> str:
        port = free_port()
        d = tmp_path / f"nginx-{port}"
        server = f"""location /v1/ {{
            default_type text/event-stream;
            return 200 '{_SSE_ANSWER}';
        }}
        location = /health {{ return 200 'ok'; }}"""
        argv = nginx_argv(
            d, port, server, http=f"keepalive_timeout {keepalive_ms}ms;", connections=256
        )
        log = d / "stdout.log"
        with log.open("wb") as f:
            proc = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        procs.append(proc)
        wait_http(f"http://127.0.0.1:{port}/health", proc, log)
        return f"http://127.0.0.1:{port}"

    try:
        yield start
    finally:
        for proc in procs:
            stop(proc)


def _all_up(client: PrometheusClient, n: int) -> bool:
    ts = client.targets()
    return len(ts) == n and all(t.health == "up" for t in ts)


@pytest.fixture
def prometheus(tmp_path: Path) -> Iterator[Callable[[list[str]], str]]:
    """Start Prometheus scraping the given host:port targets every second; returns its URL."""
    binary = find_binary("prometheus")
    procs: list[subprocess.Popen[bytes]] = []

    def start(targets: list[str]) -> str:
        port = free_port()
        d = tmp_path / f"prom-{port}"
        d.mkdir()
        cfg = d / "prometheus.yml"
        cfg.write_text(
            "global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n"
            "scrape_configs:\n  - job_name: models\n    static_configs:\n"
            f"      - targets: [{', '.join(repr(t) for t in targets)}]\n"
        )
        log = d / "prometheus.log"
        with log.open("wb") as f:
            proc = subprocess.Popen(
                [
                    str(binary),
                    f"--config.file={cfg}",
                    f"--storage.tsdb.path={d / 'data'}",
                    f"--web.listen-address=127.0.0.1:{port}",
                ],
                stdout=f,
                stderr=subprocess.STDOUT,
            )
        procs.append(proc)
        url = f"http://127.0.0.1:{port}"
        wait_http(f"{url}/-/ready", proc, log)
        # Target discovery hands over new targets every 5 s: wait for the first good scrape.
        deadline = time.monotonic() + 30
        with PrometheusClient(url) as client:
            while not _all_up(client, len(targets)):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"prometheus never scraped {targets}: {client.targets()}")
                time.sleep(0.2)
        return url

    try:
        yield start
    finally:
        for p in procs:
            stop(p)
