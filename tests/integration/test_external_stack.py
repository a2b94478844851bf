"""Gating a deployment the harness did not start (`provider: external`): a stack brought up by
`harness up` in another process, and a bare model server with no gateway at all."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml

from harness.observe.alertmanager import AlertmanagerPoller
from harness.stack.ports import free_ports
from harness.stack.process import pid_alive
from harness.tools import find_binary

pytestmark = [pytest.mark.integration, pytest.mark.gate, pytest.mark.slow]

HARNESS = [sys.executable, "-m", "harness"]
SIM_STACK = Path(__file__).parents[1] / "fixtures" / "sim-stack.yaml"
PROBES = ("streaming", "security", "injection", "pii", "cache", "cost", "monitoring",
          "alert_rule_tests", "breaker", "rate_limit")  # fmt: skip


def only(probe: str) -> str:
    """A profile's `probes:` with every probe off but one."""
    return "{" + ", ".join(f"{p}: {str(p == probe).lower()}" for p in PROBES) + "}"


# One API key per test that sends requests: a rate-limit probe spends its key's budget for the
# minute, and the tests share one stack.
KEYS = {"breaker": "sk-external-breaker", "secured": "sk-external-secured",
        "chaos": "sk-external-chaos", "renamed": "sk-external-renamed"}  # fmt: skip
# A short load judged on absolute SLOs: the external stack is the candidate, the profile the bar.
PROFILE = """kind: gate
name: external
policy: {breaker: {recovery_timeout_s: 4}, cache: {hit_speedup: 4}}
load:
  kind: load
  name: external-load
  duration_s: 8s
  workload: {max_tokens: 16, prompt_words: 12}
  load: {kind: open, rate_rps: 3, arrival: constant}
slos: [ttft_p50_ms<=1500, error_rate<=0.2]
confidence: {max_duration_s: 0s, inconclusive_is: warn}
key_checks: [slo, load generator kept its schedule]
"""


def _gate(
    tmp: Path, stack: dict[str, Any], env: dict[str, str], *extra: str, profile: str = PROFILE
) -> tuple[subprocess.CompletedProcess[str], dict[str, Any]]:
    (tmp / "profile.yaml").write_text(profile)
    (tmp / "stack.yaml").write_text(yaml.safe_dump(stack))
    r = subprocess.run(
        [
            *HARNESS,
            "gate",
            "--profile",
            str(tmp / "profile.yaml"),
            "--stack",
            str(tmp / "stack.yaml"),
            "--out",
            str(tmp / "out"),
            "--no-history",
            *extra,
        ],
        capture_output=True,
        text=True,
        timeout=400,
        env={**os.environ, **env},
    )
    path = tmp / "out" / "report.json"
    return r, json.loads(path.read_text()) if path.is_file() else {}


def _checks(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"]}


@contextlib.contextmanager
def _serving(argv: list[str], ready: str, status: int | None = 200) -> Iterator[None]:
    """A real server of the test's own, stopped by its PID whatever happens; ready once `ready`
    answers with `status` (with anything, when None)."""
    proc = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                code: int | None = httpx.get(ready, timeout=1).status_code
            except httpx.HTTPError:
                code = None
            if code is not None and (status is None or code == status):
                break
            assert time.monotonic() < deadline and proc.poll() is None, f"{argv[0]} not ready"
            time.sleep(0.2)
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _nginx(d: Path, port: int, directives: list[str]) -> list[str]:
    """The command line of a real nginx on 127.0.0.1:`port` whose `location /` holds
    `directives`."""
    location = "\n".join(f"            {line}" for line in directives)
    d.mkdir()
    # As root, nginx's workers would run as nobody and could not read files under tmp_path.
    user = "user root root;" if os.geteuid() == 0 else ""
    conf = d / "nginx.conf"
    conf.write_text(f"""daemon off;
{user}
worker_processes 1;
pid {d}/nginx.pid;
error_log {d}/error.log;
events {{ worker_connections 64; }}
http {{
    access_log off;
    client_body_temp_path {d}/body; proxy_temp_path {d}/proxy;
    fastcgi_temp_path {d}/fcgi; uwsgi_temp_path {d}/uwsgi; scgi_temp_path {d}/scgi;
    server {{
        listen 127.0.0.1:{port};
        location / {{
{location}
        }}
    }}
}}
""")
    return [str(find_binary("nginx")), "-p", str(d), "-c", str(conf), "-e", str(d / "error.log")]


@pytest.fixture(scope="module")
def up_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The simulated stack, started by `harness up` in another process
    (and the tests' own keys)."""
    d = tmp_path_factory.mktemp("up")
    ready = d / "ready.json"
    spec = yaml.safe_load(SIM_STACK.read_text())
    spec["gateway"]["settings"]["auth"] = {"api_keys": ["sk-harness-local", *KEYS.values()]}
    (d / "stack.yaml").write_text(yaml.safe_dump(spec))
    proc = subprocess.Popen(
        [*HARNESS, "up", "--stack", str(d / "stack.yaml"), "--ready-file", str(ready)],
        stdout=(d / "up.log").open("w"),
        stderr=subprocess.STDOUT,
    )
    try:
        deadline = time.monotonic() + 120
        while not ready.is_file():
            assert proc.poll() is None and time.monotonic() < deadline, (d / "up.log").read_text()
            time.sleep(0.5)
        yield json.loads(ready.read_text())
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=60)
        assert not pid_alive(proc.pid)


def _external(ep: dict[str, Any], toxiproxy: bool) -> dict[str, Any]:
    ext: dict[str, Any] = {
        "url": ep["nginx"],
        "api_key_env": "EXTERNAL_GATE_KEY",
        "gateways": ep["gateways"],
        "prometheus": {"url": ep["prometheus"]},
        "alertmanager": {"url": ep["alertmanager"]},
    }
    if toxiproxy:
        ext["toxiproxy"] = {
            "url": ep["toxiproxy"],
            "proxies": {"primary": ["primary-0", "primary-1"]},
        }
    return {"kind": "stack", "name": "staging", "provider": "external", "external": ext}


def test_gate_an_external_stack_without_its_toxiproxy(
    tmp_path: Path, up_stack: dict[str, Any]
) -> None:
    r, report = _gate(
        tmp_path, _external(up_stack, toxiproxy=False), {"EXTERNAL_GATE_KEY": up_stack["api_key"]}
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = _checks(report)
    for name in (
        "streamed completion",
        "authentication and input validation",
        "response cache",
        "cost accounting",
        "prompt-injection flagging",
        "metrics and alert rules",
        "rate limit per API key",
    ):
        assert checks[name]["outcome"] == "pass", checks[name]
    # Judged from the served-by header (24 requests are too few to decide a 0.9 share: warn).
    primary = checks["served by the primary pool"]
    assert primary["outcome"] in ("pass", "warn") and primary["measured"]["estimate"] == 1
    breaker = checks["circuit breaker opens and recovers"]
    assert breaker["outcome"] == "skipped"
    assert breaker["reasons"] == ["cannot run on this stack: no Toxiproxy in the stack spec"]
    assert checks["alert rule unit tests (promtool)"]["outcome"] == "skipped"
    assert checks["candidate's practices meet the policy"]["outcome"] == "skipped"
    assert checks["SLO ttft_p50_ms<=1500"]["outcome"] == "pass"
    # The key is never written into a report.
    assert up_stack["api_key"] not in (tmp_path / "out" / "report.json").read_text()
    assert report["endpoints"]["provider"] == "external"


def test_gate_an_external_stack_with_its_toxiproxy_runs_the_breaker(
    tmp_path: Path, up_stack: dict[str, Any]
) -> None:
    profile = (
        "kind: gate\npolicy: {breaker: {recovery_timeout_s: 4}}\nload: null\n"
        f"probes: {only('breaker')}\nkey_checks: [circuit breaker opens and recovers]\n"
    )
    r, report = _gate(
        tmp_path,
        _external(up_stack, toxiproxy=True),
        {"EXTERNAL_GATE_KEY": KEYS["breaker"]},
        profile=profile,
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert _checks(report)["circuit breaker opens and recovers"]["outcome"] == "pass"


def test_unreachable_and_remote_addresses_are_named_before_anything_runs(tmp_path: Path) -> None:
    (dead,) = free_ports(1)
    spec = {
        "kind": "stack",
        "provider": "external",
        "external": {
            "url": f"http://127.0.0.1:{dead}",
            "api_key_env": None,
            "prometheus": {"url": f"http://127.0.0.1:{dead}"},
        },
    }
    r, _ = _gate(tmp_path, spec, {})
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"entry http://127.0.0.1:{dead}" in r.stdout and "prometheus" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    spec["external"]["url"] = "http://192.0.2.7:8080"  # type: ignore[index]  # TEST-NET-1
    r, _ = _gate(tmp_path, spec, {})
    assert r.returncode == 2 and "--allow-remote" in r.stderr, r.stdout + r.stderr
    assert "external.url" in r.stderr


@pytest.fixture
def bare_simulator() -> Iterator[str]:
    """llm-d-inference-sim alone: an OpenAI-compatible server with no gateway in front."""
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    sim = [str(find_binary("llm-d-inference-sim")), "--model", "bare-model", "--port", str(port),
           "--time-to-first-token", "40ms", "--inter-token-latency", "5ms"]  # fmt: skip
    with _serving(sim, f"{url}/health"):
        yield url


def test_gate_a_bare_model_server(tmp_path: Path, bare_simulator: str) -> None:
    spec = {
        "kind": "stack",
        "name": "bare",
        "provider": "external",
        "external": {"url": bare_simulator, "api_key_env": None, "gateway": None},
    }
    r, report = _gate(tmp_path, spec, {})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = _checks(report)
    assert checks["SLO ttft_p50_ms<=1500"]["outcome"] == "pass"
    assert checks["SLO error_rate<=0.2"]["outcome"] == "pass"
    assert checks["SLO ttft_p50_ms<=1500"]["measured"]["n"] >= 20
    for name in (
        "response cache",
        "authentication and input validation",
        "cost accounting",
        "rate limit per API key",
        "served by the primary pool",
    ):
        assert checks[name]["outcome"] == "skipped", checks[name]
        assert checks[name]["reasons"][0].startswith("cannot run on this stack: no gateway")
    assert report["endpoints"]["served_models"] == {"primary": "bare-model"}  # from /v1/models
    # The same server made slow is caught by the same profile: the SLO fails the gate.
    slow = PROFILE.replace("ttft_p50_ms<=1500", "ttft_p50_ms<=20")
    r, report = _gate(tmp_path, spec, {}, profile=slow)
    assert r.returncode == 1, r.stdout[-4000:]
    assert _checks(report)["SLO ttft_p50_ms<=20"]["outcome"] == "fail"


def test_alerts_read_from_alertmanagers_api(tmp_path: Path) -> None:
    """An alert posted to a real Alertmanager is seen firing, then resolved, by the poller."""
    (port,) = free_ports(1)
    conf = tmp_path / "am.yml"
    conf.write_text("route: {receiver: none, group_wait: 1s}\nreceivers: [{name: none}]\n")
    url = f"http://127.0.0.1:{port}"
    am = [str(find_binary("prometheus-alertmanager")), "--config.file", str(conf),
          "--storage.path", str(tmp_path / "data"), "--web.listen-address", f"127.0.0.1:{port}",
          "--cluster.listen-address="]  # fmt: skip
    with _serving(am, f"{url}/-/ready"):
        poller = AlertmanagerPoller(url, interval_s=0.5).start()
        try:
            ends = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 4))
            httpx.post(
                f"{url}/api/v2/alerts",
                json=[
                    {
                        "labels": {"alertname": "HighErrorRate", "severity": "critical"},
                        "annotations": {"summary": "planted"},
                        "endsAt": ends,
                    }
                ],
                timeout=5,
            ).raise_for_status()
            fired = poller.wait_for("HighErrorRate", "firing", timeout_s=10)
            assert fired is not None and fired.typed().receiver == "alertmanager-api"
            assert poller.wait_for("HighErrorRate", "resolved", timeout_s=20) is not None
            assert poller.errors == 0
        finally:
            poller.close()


@pytest.fixture
def secured_prometheus(tmp_path: Path, up_stack: dict[str, Any]) -> Iterator[str]:
    """The stack's Prometheus behind a real nginx that wants basic auth (user gate, password
    s3cret), as a deployment's monitoring usually is."""
    (port,) = free_ports(1)
    (tmp_path / "htpasswd").write_text("gate:{PLAIN}s3cret\n")
    location = ["auth_basic prometheus;", f"auth_basic_user_file {tmp_path / 'htpasswd'};",
                f"proxy_pass {up_stack['prometheus']};"]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with _serving(_nginx(tmp_path / "nginx", port, location), url, status=None):
        yield url


def test_a_secured_prometheus_is_read_with_credentials(
    tmp_path: Path, up_stack: dict[str, Any], secured_prometheus: str
) -> None:
    spec = _external(up_stack, toxiproxy=False)
    spec["external"]["prometheus"] = {
        "url": secured_prometheus,
        "auth": {"kind": "basic", "username_env": "PROM_USER", "password_env": "PROM_PASSWORD"},
    }
    # One request first: the gateways' request counters appear with it.
    httpx.post(f"{up_stack['nginx']}/v1/chat/completions", timeout=30,
               headers={"Authorization": f"Bearer {KEYS['secured']}"},
               json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
               ).raise_for_status()  # fmt: skip
    profile = (
        "kind: gate\nload: null\nkey_checks: [metrics and alert rules]\n"
        f"probes: {only('monitoring')}\n"
    )
    env = {"EXTERNAL_GATE_KEY": KEYS["secured"], "PROM_USER": "gate", "PROM_PASSWORD": "s3cret"}
    r, report = _gate(tmp_path, spec, env, profile=profile)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert _checks(report)["metrics and alert rules"]["outcome"] == "pass"
    assert "s3cret" not in (tmp_path / "out" / "report.json").read_text()
    # A wrong password: Prometheus is named unreachable before anything runs.
    r, _ = _gate(tmp_path, spec, {**env, "PROM_PASSWORD": "wrong"}, profile=profile)
    assert r.returncode == 2 and f"prometheus {secured_prometheus}" in r.stdout, r.stdout
    assert "answered 401" in r.stdout


def test_chaos_on_an_external_stack_through_its_toxiproxy(
    tmp_path: Path, up_stack: dict[str, Any]
) -> None:
    """A network fault through the deployment's own Toxiproxy; a process fault is skipped."""
    spec = _external(up_stack, toxiproxy=True)
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(spec))
    exp = yaml.safe_load((Path(__file__).parents[2] / "chaos" / "primary-down-fallback.yaml")
                         .read_text())  # fmt: skip
    exp["load"].update(duration_s="16s", load={"kind": "open", "rate_rps": 3,
                                               "arrival": "constant"})  # fmt: skip
    exp.update(fault_at_s="4s", fault_for_s="6s")
    exp["expect"] = {"during": ["fallback_share>=0.5", "error_rate<=0.2"]}
    (tmp_path / "down.yaml").write_text(yaml.safe_dump(exp))
    kill = {**exp, "title": "kill a primary", "fault": {"kind": "kill", "targets": ["primary-0"]}}
    (tmp_path / "kill.yaml").write_text(yaml.safe_dump(kill))
    r = subprocess.run(
        [*HARNESS, "chaos", str(tmp_path / "down.yaml"), str(tmp_path / "kill.yaml"), "--stack",
         str(tmp_path / "stack.yaml"), "--out", str(tmp_path / "out")],
        capture_output=True, text=True, timeout=300,
        env={**os.environ, "EXTERNAL_GATE_KEY": KEYS["chaos"]},
    )  # fmt: skip
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = _checks(json.loads((tmp_path / "out" / "report.json").read_text()))
    during = checks["primary pool down, fallback serves: during the fault, fallback_share>=0.5"]
    assert during["outcome"] == "pass", during
    assert checks["kill a primary"]["outcome"] == "skipped"
    assert "no process handles" in checks["kill a primary"]["reasons"][0]


@pytest.fixture
def renaming_gateway(tmp_path: Path, up_stack: dict[str, Any]) -> Iterator[str]:
    """Another gateway's names: a real nginx in front of the stack that hides X-Served-By and
    X-Cache and answers X-Backend and X-Cache-Status instead."""
    (port,) = free_ports(1)
    location = [
        f"proxy_pass {up_stack['nginx']};", "proxy_http_version 1.1;", "proxy_buffering off;",
        "proxy_hide_header X-Served-By;", "proxy_hide_header X-Cache;",
        "add_header X-Backend $upstream_http_x_served_by always;",
        "add_header X-Cache-Status $upstream_http_x_cache always;",
    ]  # fmt: skip
    url = f"http://127.0.0.1:{port}"
    with _serving(_nginx(tmp_path / "renaming", port, location), url, status=None):
        yield url


def test_a_gateway_with_other_names_is_gated_under_them(
    tmp_path: Path, up_stack: dict[str, Any], renaming_gateway: str
) -> None:
    """Its headers named in the spec, its key sent bare in X-API-Key: the cache probe and the
    primary share read the renamed headers; named as the reference, the same gateway fails."""
    spec: dict[str, Any] = {
        "kind": "stack", "name": "renamed", "provider": "external",
        "external": {"url": renaming_gateway, "api_key_env": "EXTERNAL_GATE_KEY",
                     "auth_header": "X-API-Key", "auth_scheme": "",
                     "gateway": {"served_by": "X-Backend", "cache": "X-Cache-Status"}},
    }  # fmt: skip
    profile = PROFILE.replace(
        "key_checks: [slo, load generator kept its schedule]",
        f"probes: {only('cache')}\nkey_checks: [response cache, slo]",
    )
    env = {"EXTERNAL_GATE_KEY": KEYS["renamed"]}
    r, report = _gate(tmp_path, spec, env, profile=profile)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = _checks(report)
    assert checks["response cache"]["outcome"] == "pass", checks["response cache"]
    assert checks["served by the primary pool"]["measured"]["estimate"] == 1
    # The same gateway under the reference names: no X-Cache, no X-Served-By to read.
    spec["external"]["gateway"] = {}
    (tmp_path / "ref").mkdir()
    r, report = _gate(tmp_path / "ref", spec, env, profile=profile)
    assert r.returncode == 1, r.stdout[-4000:]
    checks = _checks(report)
    assert checks["response cache"]["outcome"] == "fail"
    assert checks["served by the primary pool"]["measured"]["estimate"] == 0
