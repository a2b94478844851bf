"""`harness rollout --strategy scale_out` of a deployment that scales itself: the harness sends
the burst and watches, it does not act. The deployment is the test's own: llm-d-inference-sim
replicas behind an nginx, a Prometheus scraping them, a stand-in Kubernetes API server (no
cluster runs on these machines: it serves the Deployment and its Service's endpoints as the
Kubernetes API does) and a stand-in autoscaler in the test that reads the same signal as an
HPA would, raises the Deployment's replicas, starts a replica a second later (as a pod is
scheduled) and puts it in rotation."""

from __future__ import annotations

import contextlib
import json
import re
import signal
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from load_fixtures import free_port, run_harness, stop, wait_http
from nginx_support import nginx_argv

from harness.clients.poll import poll_until
from harness.stack.planner import prometheus_def
from harness.tools import find_binary

pytestmark = [pytest.mark.integration, pytest.mark.slow]

MODEL = "sim-model"
TOKEN = "stand-in-token"
TARGET_RPS = 12.0  # per replica: the deployment's autoscaler's and the profile's
PROFILE = {
    "kind": "rollout",
    "name": "test-external-scale-out",
    "strategy": "scale_out",
    "load": {
        "workload": {"prompt_words": 8, "max_tokens": 8, "ignore_eos": True},
        "load": {"kind": "open", "rate_rps": 8, "arrival": "constant", "max_send_lag_ms": 500},
        "shape": {
            "kind": "spike",
            "base_fraction": 1.0,
            "spike_multiplier": 3,
            "spike_at_s": "3s",
            "spike_s": "14s",
        },
        "duration_s": "20s",
    },
    "autoscale": {
        "target_rps_per_replica": TARGET_RPS,
        "min_replicas": 1,
        "max_replicas": 2,
        "rate_window_s": "3s",
        "poll_s": "0.25s",
        "ttft_p95_ms": 1000,
        "recover_within_s": "10s",
        "serve_within_s": "10s",
    },
    "switch": {"settle_s": "1s"},
    "bake_s": "0s",
}


def _sim_argv(port: int) -> list[str]:
    return [
        str(find_binary("llm-d-inference-sim")),
        *("--model", MODEL, "--port", str(port), "--mode", "random", "--seed", "1"),
        *("--time-to-first-token", "20ms", "--inter-token-latency", "5ms"),
        *("--max-num-seqs", "64", "--max-model-len", "4096"),
        *("--zmq-endpoint", f"tcp://127.0.0.1:{free_port()}"),
    ]


class StandInKubernetesApi(ThreadingHTTPServer):
    """A stand-in for the Kubernetes API server: one Deployment ("sim", namespace "serving")
    and its Service's Endpoints, as the Kubernetes API serves them (bearer token checked)."""

    def __init__(self) -> None:
        self.desired, self.ready = 1, 1
        self.endpoints: list[int] = []  # ports of the replicas in rotation (127.0.0.1)
        self.lock = threading.Lock()
        super().__init__(("127.0.0.1", 0), _ApiHandler)
        self.url = f"http://127.0.0.1:{self.server_address[1]}"

    def kubeconfig(self, path: Path) -> Path:
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "stand-in", "cluster": {"server": self.url}}],
            "users": [{"name": "harness", "user": {"token": TOKEN}}],
            "contexts": [
                {"name": "stand-in", "context": {"cluster": "stand-in", "user": "harness"}}
            ],
            "current-context": "stand-in",
        }
        path.write_text(yaml.safe_dump(config))
        return path

    def deployment(self) -> dict[str, Any]:
        labels = {"app": "sim"}
        return {
            "apiVersion": "apps/v1",
            "kind": "Deployment",
            "metadata": {"name": "sim", "namespace": "serving"},
            "spec": {
                "replicas": self.desired,
                "selector": {"matchLabels": labels},
                "template": {
                    "metadata": {"labels": labels},
                    "spec": {"containers": [{"name": "sim", "image": "llm-d-inference-sim"}]},
                },
            },
            "status": {"replicas": self.desired, "readyReplicas": self.ready},
        }

    def service_endpoints(self) -> dict[str, Any]:
        # One subset per replica: each listens on a port of its own.
        return {
            "apiVersion": "v1",
            "kind": "Endpoints",
            "metadata": {"name": "sim", "namespace": "serving"},
            "subsets": [
                {"addresses": [{"ip": "127.0.0.1"}], "ports": [{"port": p}]} for p in self.endpoints
            ],
        }


class _ApiHandler(BaseHTTPRequestHandler):
    server: StandInKubernetesApi

    def do_GET(self) -> None:
        if self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self._send(401, {"kind": "Status", "code": 401, "reason": "Unauthorized"})
        with self.server.lock:
            if self.path.startswith("/apis/apps/v1/namespaces/serving/deployments/sim"):
                return self._send(200, self.server.deployment())
            if self.path.startswith("/api/v1/namespaces/serving/endpoints/sim"):
                return self._send(200, self.server.service_endpoints())
        self._send(404, {"kind": "Status", "code": 404, "reason": "NotFound"})

    def _send(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, format: str, *args: object) -> None:
        pass


@dataclass
class Deployment:
    """The test's deployment: its entry, its Prometheus, the stand-in API, its replicas."""

    d: Path
    api: StandInKubernetesApi
    nginx: subprocess.Popen[bytes]
    entry: str
    prometheus: str
    sims: list[subprocess.Popen[bytes]] = field(default_factory=list)
    in_rotation: list[int] = field(default_factory=list)

    def rotate(self, ports: list[int]) -> None:
        """Put these replicas behind nginx (a graceful reload) and in Prometheus' targets."""
        servers = "".join(f"server 127.0.0.1:{p};\n" for p in ports)
        (self.d / "pool.conf").write_text(f"upstream pool {{\n{servers}keepalive 32;\n}}\n")
        self.nginx.send_signal(signal.SIGHUP)
        targets = [{"targets": [f"127.0.0.1:{p}" for p in ports], "labels": {}}]
        (self.d / "targets.json").write_text(json.dumps(targets))
        with self.api.lock:
            self.api.endpoints = list(ports)
        self.in_rotation = list(ports)

    def start_replica(self) -> int:
        return _start_sim(self.d, self.sims)


def _start_sim(d: Path, sims: list[subprocess.Popen[bytes]]) -> int:
    """A replica started and answering its health check; its port."""
    port = free_port()
    log = d / f"sim-{port}.log"
    with log.open("wb") as f:
        proc = subprocess.Popen(_sim_argv(port), stdout=f, stderr=subprocess.STDOUT)
    sims.append(proc)
    wait_http(f"http://127.0.0.1:{port}/health", proc, log)
    return port


def _prometheus(d: Path, port: int) -> list[str]:
    config = {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s"},
        "scrape_configs": [
            {
                "job_name": "model-primary",
                "file_sd_configs": [{"files": [str(d / "targets.json")], "refresh_interval": "1s"}],
            }
        ],
    }
    (d / "prometheus.yml").write_text(yaml.safe_dump(config))
    return prometheus_def(d / "prometheus.yml", d, port, tier=0).argv


@contextlib.contextmanager
def _deployment(d: Path) -> Iterator[Deployment]:
    api = StandInKubernetesApi()
    threading.Thread(target=api.serve_forever, daemon=True).start()
    procs: list[subprocess.Popen[bytes]] = []
    sims: list[subprocess.Popen[bytes]] = []
    try:
        prom_port, entry_port = free_port(), free_port()
        (d / "targets.json").write_text("[]")
        prom_log = d / "prometheus.log"
        with prom_log.open("wb") as f:
            prom = subprocess.Popen(_prometheus(d, prom_port), stdout=f, stderr=subprocess.STDOUT)
        procs.append(prom)
        server = """location / {
            proxy_pass http://pool;
            proxy_http_version 1.1;
            proxy_set_header Connection "";
            proxy_buffering off;
        }"""
        argv = nginx_argv(d / "front", entry_port, server, f"include {d}/pool.conf;", 1024)
        first = _start_sim(d, sims)
        (d / "pool.conf").write_text(f"upstream pool {{ server 127.0.0.1:{first}; }}\n")
        nginx_log = d / "nginx.log"
        with nginx_log.open("wb") as f:
            nginx = subprocess.Popen(argv, stdout=f, stderr=subprocess.STDOUT)
        procs.append(nginx)
        entry, prometheus = f"http://127.0.0.1:{entry_port}", f"http://127.0.0.1:{prom_port}"
        wait_http(f"{entry}/v1/models", nginx, nginx_log)
        wait_http(f"{prometheus}/-/ready", prom, prom_log)
        dep = Deployment(d, api, nginx, entry, prometheus, sims)
        dep.rotate([first])
        # Serving, as a deployment under test is: its replica scraped (Prometheus' discovery
        # hands a new target to its scraper within 5 s).
        up = poll_until(
            lambda: _query(prometheus, 'up{job="model-primary"} == 1'), 30.0, 0.5, until=bool
        )
        assert up, "Prometheus never scraped the first replica"
        yield dep
    finally:
        for proc in [*procs, *sims]:
            stop(proc)
        api.shutdown()
        api.server_close()


class StandInAutoscaler(threading.Thread):
    """The deployment's autoscaler, a stand-in for an HPA on a custom metric: the replicas'
    request rate from Prometheus per replica in rotation, above the target for a second, raises
    the Deployment's replicas (once), starts the replica, marks it ready and, unless told not
    to, puts it in rotation."""

    def __init__(self, dep: Deployment, put_in_rotation: bool = True) -> None:
        super().__init__(daemon=True)
        self.dep, self.put_in_rotation = dep, put_in_rotation
        self.done = threading.Event()

    def run(self) -> None:
        above = None
        deadline = time.monotonic() + 60  # bounded: the test's burst is 20 s
        while not self.done.is_set() and time.monotonic() < deadline:
            per = self._rate() / max(1, len(self.dep.in_rotation))
            above = (above or time.monotonic()) if per > TARGET_RPS else None
            if above is not None and time.monotonic() - above >= 1.0:
                with self.dep.api.lock:
                    self.dep.api.desired = 2
                time.sleep(1.0)  # the pod scheduled and its container pulled, as in a cluster
                port = self.dep.start_replica()
                with self.dep.api.lock:
                    self.dep.api.ready = 2
                if self.put_in_rotation:
                    self.dep.rotate([*self.dep.in_rotation, port])
                return
            self.done.wait(0.5)

    def _rate(self) -> float:
        rows = _query(self.dep.prometheus, "sum(rate(vllm:request_success_total[3s]))")
        return float(rows[0]["value"][1]) if rows else 0.0


def _query(prometheus: str, q: str) -> list[dict[str, Any]]:
    try:
        r = httpx.get(f"{prometheus}/api/v1/query", params={"query": q}, timeout=2)
        rows: list[dict[str, Any]] = r.json()["data"]["result"]
    except (httpx.HTTPError, KeyError, ValueError):
        return []
    return rows


def _spec(tmp_path: Path, dep: Deployment, kubernetes: bool) -> Path:
    replicas: dict[str, Any] = {
        "signal": "sum(rate(vllm:request_success_total[{window}s]))",
        "served": "sum by (instance) (vllm:request_success_total)",
    }
    if kubernetes:
        kubeconfig = dep.api.kubeconfig(tmp_path / "kubeconfig")
        replicas["kubernetes"] = {
            "kubeconfig": str(kubeconfig),
            "namespace": "serving",
            "deployment": "sim",
        }
    external = {
        "url": dep.entry,
        "model": MODEL,
        "api_key_env": None,
        "gateway": None,
        "prometheus": {"url": dep.prometheus},
        "replicas": replicas,
    }
    path = tmp_path / "deployment.yaml"
    path.write_text(yaml.safe_dump({"kind": "stack", "provider": "external", "external": external}))
    return path


def _scale_out(
    tmp_path: Path, kubernetes: bool, put_in_rotation: bool = True
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    profile = tmp_path / "scale-out.yaml"
    profile.write_text(yaml.safe_dump(PROFILE))
    with _deployment(tmp_path / "deployment-run") as dep:
        spec = _spec(tmp_path, dep, kubernetes)
        hpa = StandInAutoscaler(dep, put_in_rotation)
        hpa.start()
        try:
            out = tmp_path / "out"
            r = run_harness(
                "rollout", "--baseline", spec, "--profile", profile, "--out", out, timeout_s=120
            )
        finally:
            hpa.done.set()
            hpa.join(timeout=30)
    return r, json.loads((out / "report.json").read_text())


def _check(report: dict[str, Any], prefix: str) -> dict[str, Any]:
    return next(c for c in report["checks"] if c["name"].startswith(prefix))


@pytest.mark.parametrize("kubernetes", [True, False], ids=["kubernetes-api", "prometheus"])
def test_a_deployment_that_scales_itself_under_the_burst_is_timed(
    tmp_path: Path, kubernetes: bool
) -> None:
    (tmp_path / "deployment-run").mkdir()
    r, report = _scale_out(tmp_path, kubernetes)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-2000:]
    out = _check(report, "scale-out: a replica added")
    m = out["measured"]
    assert out["outcome"] == "pass" and m["scale_outs"] == 1, out
    assert m["peak_rps_per_replica"] > TARGET_RPS
    assert m["serving_after_decision_s"] is not None and m["serving_after_decision_s"] >= 0
    (event,) = [e for e in report["rollout"]["scale_events"] if e["kind"] == "out"]
    assert re.fullmatch(r"127\.0\.0\.1:\d+", event["replica"]), event
    if kubernetes:  # the decision is the Deployment's replicas raised, before the replica was up
        assert m["decision_after_crossing_s"] is not None and m["decision_after_crossing_s"] >= 0
        assert m["ready_after_decision_s"] >= 1.0, m  # the stand-in's second to schedule
    else:  # Prometheus alone sees the replica arrive: its decision is not seen
        assert m["ready_after_decision_s"] == 0, m
    assert _check(report, "scale-out: TTFT p95")["outcome"] == "pass"
    assert (
        "the burst ran its course; 1 replica(s) added by the deployment"
        in (report["rollout"]["stopped"])
    )


def test_a_replica_the_deployment_never_puts_in_rotation_fails_the_scale_out(
    tmp_path: Path,
) -> None:
    (tmp_path / "deployment-run").mkdir()
    r, report = _scale_out(tmp_path, kubernetes=True, put_in_rotation=False)
    assert r.returncode == 1, r.stdout[-3000:] + r.stderr[-2000:]
    out = _check(report, "scale-out: a replica added")
    assert out["outcome"] == "fail"
    assert "never put in rotation" in " ".join(out["reasons"]), out
    assert out["measured"]["ready_after_decision_s"] is not None
