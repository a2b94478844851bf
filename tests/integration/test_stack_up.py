"""`harness up` end to end: the real reference stack as child processes, through the real CLI."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import toxiproxy

from harness.stack.ports import port_is_listening
from harness.stack.process import descendants as children_of
from harness.stack.process import pid_alive
from harness.stack.provider import Endpoints

pytestmark = [pytest.mark.integration, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness"]


def stream_chat(nginx: str, key: str, prompt: str) -> tuple[str, int, httpx.Headers]:
    body = {
        "messages": [{"role": "user", "content": prompt}],
        "max_tokens": 24,
        "stream": True,
    }
    text, chunks = "", 0
    with httpx.stream(
        "POST",
        f"{nginx}/v1/chat/completions",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=60,
    ) as r:
        assert r.status_code == 200, r.read()
        headers = r.headers
        for line in r.iter_lines():
            if not line.startswith("data: ") or line == "data: [DONE]":
                continue
            event = json.loads(line[6:])
            for choice in event.get("choices", []):
                piece = (choice.get("delta") or {}).get("content") or ""
                if piece:
                    text += piece
                    chunks += 1
    return text, chunks, headers


@pytest.fixture
def harness_up(tmp_path: Path):  # type: ignore[no-untyped-def]
    ready = tmp_path / "ready.json"
    log = (tmp_path / "harness-up.log").open("w")
    t0 = time.monotonic()
    proc = subprocess.Popen(
        [*HARNESS, "up", "--ready-file", str(ready), "--run-dir", str(tmp_path / "run")],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    deadline = time.monotonic() + 120
    while not ready.exists():
        if proc.poll() is not None or time.monotonic() > deadline:
            proc.kill()
            pytest.fail(
                "harness up did not get ready:\n" + (tmp_path / "harness-up.log").read_text()
            )
        time.sleep(0.2)
    startup = time.monotonic() - t0
    yield proc, Endpoints.read(ready), startup, ready
    if proc.poll() is None:
        proc.kill()
        proc.wait()
    log.close()


def test_harness_up_serves_streamed_tokens_and_tears_down_clean(harness_up) -> None:  # type: ignore[no-untyped-def]
    proc, ep, startup, ready = harness_up
    print(f"\nharness up: ready file after {startup:.1f}s")
    pids = children_of(proc.pid)
    assert len(pids) >= 13, f"expected every service as a child, got {len(pids)}"

    # A streamed chat completion through nginx -> gateway -> toxiproxy -> llama.cpp.
    text, chunks, headers = stream_chat(ep.nginx, ep.api_key, "Name three colours.")
    assert chunks >= 2 and text.strip(), f"no generated tokens (chunks={chunks}, text={text!r})"
    assert headers.get("x-request-id")

    # Prometheus scrapes every service and sees each one up.
    r = httpx.get(f"{ep.prometheus}/api/v1/query", params={"query": "up"}, timeout=10).json()
    ups = {
        (s["metric"]["job"], s["metric"]["instance"]): s["value"][1] for s in r["data"]["result"]
    }
    jobs = {job for job, _ in ups}
    assert {
        "gateway",
        "model-primary",
        "model-fallback",
        "nginx",
        "redis",
        "toxiproxy",
        "alertmanager",
        "prometheus",
        "victoria-logs",
        "vlagent",
    } <= jobs
    assert all(v == "1" for v in ups.values()), ups
    assert len(ups) == 2 + 3 + 7

    # The three PRACTICES.md alert rules are loaded.
    rules = httpx.get(f"{ep.prometheus}/api/v1/rules", timeout=10).json()
    names = {rule["name"] for g in rules["data"]["groups"] for rule in g["rules"]}
    assert {"HighErrorRate", "SlowResponse", "GPUMemoryHigh"} <= names

    # Alertmanager is up and knows the harness webhook receiver.
    status = httpx.get(f"{ep.alertmanager}/api/v2/status", timeout=10).json()
    assert ep.webhook in status["config"]["original"]

    # Proxies are findable by name with the standard toxiproxy-python client.
    host, port = ep.toxiproxy.removeprefix("http://").split(":")
    client = toxiproxy.Toxiproxy()
    client.update_api_consumer(host, int(port))
    assert {"primary-0", "primary-1", "fallback-0", "redis"} <= set(client.proxies())

    # SIGTERM: the harness tears everything down and leaves no process or port behind.
    assert ep.logs is not None
    ports = [
        int(u.rsplit(":", 1)[1])
        for u in [
            ep.nginx,
            ep.prometheus,
            ep.alertmanager,
            ep.toxiproxy,
            ep.logs,
            *ep.gateways,
            *ep.model_servers,
        ]
    ]
    ports += [int(a.rsplit(":", 1)[1]) for a in ep.proxies.values()]
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=60) == 0
    assert not ready.exists(), "ready file must go when the stack goes"
    alive = [p for p in pids if pid_alive(p)]
    assert not alive, f"processes left behind: {alive}"
    listening = [p for p in ports if port_is_listening(p)]
    assert not listening, f"ports still listening: {listening}"
