"""Gating a deployment the harness did not start (`provider: external`): a stack brought up by
`harness up` in another process, and a bare model server with no gateway at all."""

from __future__ import annotations

import contextlib
import json
import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import yaml
from external_support import (
    HARNESS,
    KEYS,
    PROFILE,
    assert_breaker_gated_through_its_toxiproxy,
    assert_gated_without_toxiproxy,
    by_name,
    external_spec,
    harness_up,
    only,
    run_gate,
)
from nginx_support import nginx_argv

from harness.clients.alertmanager import AlertmanagerPoller
from harness.stack.ports import free_ports
from harness.tools import find_binary

pytestmark = [pytest.mark.integration, pytest.mark.gate, pytest.mark.slow]


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


@contextlib.contextmanager
def _nginx_front(d: Path, directives: list[str]) -> Iterator[str]:
    """A real nginx on a free loopback port whose `location /` holds `directives`; its URL."""
    (port,) = free_ports(1)
    location = "\n".join(f"            {line}" for line in directives)
    url = f"http://127.0.0.1:{port}"
    with _serving(nginx_argv(d, port, f"location / {{\n{location}\n        }}"), url, status=None):
        yield url


@pytest.fixture(scope="module")
def up_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, Any]]:
    """The simulated stack, started by `harness up` in another process."""
    with harness_up(tmp_path_factory.mktemp("up")) as endpoints:
        yield endpoints


def test_gate_an_external_stack_without_its_toxiproxy(
    tmp_path: Path, up_stack: dict[str, Any]
) -> None:
    assert_gated_without_toxiproxy(tmp_path, up_stack, up_stack["api_key"])


def test_gate_an_external_stack_with_its_toxiproxy_runs_the_breaker(
    tmp_path: Path, up_stack: dict[str, Any]
) -> None:
    assert_breaker_gated_through_its_toxiproxy(tmp_path, up_stack, KEYS["breaker"])


def test_a_deployment_declaring_nothing_fails_by_behaviour_alone(tmp_path: Path) -> None:
    """A deployment whose gateway flags no injection pattern and filters no PII, gated with no
    declared settings (nothing to compare with the policy): the probes send the policy's
    patterns and plant its PII, and each fails on what the stack does, the practice named."""
    weak = {"validation": {"injection_patterns": []}, "pii": {"enabled": False}}
    profile = (
        f"kind: gate\nload: null\nprobes: {only('injection', 'pii')}\n"
        "key_checks: [prompt-injection flagging, PII filtered from answers]\n"
    )
    (tmp_path / "up").mkdir()
    env = {"EXTERNAL_GATE_KEY": KEYS["undeclared"]}
    with harness_up(tmp_path / "up", settings=weak) as ep:
        spec = external_spec(ep, toxiproxy=False)
        r, report = run_gate(tmp_path / "gate", spec, env, profile=profile)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-2000:]
    checks = by_name(report)
    policy = checks["candidate's practices meet the policy"]
    assert policy["outcome"] == "skipped", policy
    injection = checks["prompt-injection flagging"]
    assert injection["outcome"] == "fail" and injection["measured"]["counted"] == 0, injection
    for pattern in ("ignore previous instructions", "disregard above", "system:", "assistant:"):
        want = f"llm_prompt_injection_detected_total{{pattern={pattern!r}}} grew by 0, want 1"
        assert want in injection["reasons"], injection["reasons"]
    pii = checks["PII filtered from answers"]
    assert pii["outcome"] == "fail", pii
    assert "the plain answer leaks the planted email 'jane.doe@example.com'" in pii["reasons"]
    assert pii["measured"]["email_model"] == "sim-fallback"  # the echoing model the entry lists


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
    r, _ = run_gate(tmp_path, spec, {})
    assert r.returncode == 2, r.stdout + r.stderr
    assert f"entry http://127.0.0.1:{dead}" in r.stdout and "prometheus" in r.stdout
    assert "Traceback" not in r.stdout + r.stderr
    spec["external"]["url"] = "http://192.0.2.7:8080"  # type: ignore[index]  # TEST-NET-1
    r, _ = run_gate(tmp_path, spec, {})
    assert r.returncode == 2 and "--allow-remote" in r.stderr, r.stdout + r.stderr
    assert "external.url" in r.stderr


@pytest.fixture
def bare_simulator() -> Iterator[str]:
    """llm-d-inference-sim alone: an OpenAI-compatible server with no gateway in front."""
    (port,) = free_ports(1)
    url = f"http://127.0.0.1:{port}"
    sim = [
        str(find_binary("llm-d-inference-sim")),
        "--model",
        "bare-model",
        "--port",
        str(port),
        "--time-to-first-token",
        "40ms",
        "--inter-token-latency",
        "5ms",
    ]
    with _serving(sim, f"{url}/health"):
        yield url


def test_gate_a_bare_model_server(tmp_path: Path, bare_simulator: str) -> None:
    spec = {
        "kind": "stack",
        "name": "bare",
        "provider": "external",
        "external": {"url": bare_simulator, "api_key_env": None, "gateway": None},
    }
    r, report = run_gate(tmp_path, spec, {})
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = by_name(report)
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
    r, report = run_gate(tmp_path, spec, {}, profile=slow)
    assert r.returncode == 1, r.stdout[-4000:]
    assert by_name(report)["SLO ttft_p50_ms<=20"]["outcome"] == "fail"


def test_alerts_read_from_alertmanagers_api(tmp_path: Path) -> None:
    """An alert posted to a real Alertmanager is seen firing, then resolved, by the poller."""
    (port,) = free_ports(1)
    conf = tmp_path / "am.yml"
    conf.write_text("route: {receiver: none, group_wait: 1s}\nreceivers: [{name: none}]\n")
    url = f"http://127.0.0.1:{port}"
    am = [
        str(find_binary("prometheus-alertmanager")),
        "--config.file",
        str(conf),
        "--storage.path",
        str(tmp_path / "data"),
        "--web.listen-address",
        f"127.0.0.1:{port}",
        "--cluster.listen-address=",
    ]
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
    (tmp_path / "htpasswd").write_text("gate:{PLAIN}s3cret\n")
    location = [
        "auth_basic prometheus;",
        f"auth_basic_user_file {tmp_path / 'htpasswd'};",
        f"proxy_pass {up_stack['prometheus']};",
    ]
    with _nginx_front(tmp_path / "nginx", location) as url:
        yield url


def test_a_secured_prometheus_is_read_with_credentials(
    tmp_path: Path, up_stack: dict[str, Any], secured_prometheus: str
) -> None:
    spec = external_spec(up_stack, toxiproxy=False)
    spec["external"]["prometheus"] = {
        "url": secured_prometheus,
        "auth": {"kind": "basic", "username_env": "PROM_USER", "password_env": "PROM_PASSWORD"},
    }
    # One request first: the gateways' request counters appear with it.
    httpx.post(
        f"{up_stack['nginx']}/v1/chat/completions",
        timeout=30,
        headers={"Authorization": f"Bearer {KEYS['secured']}"},
        json={"messages": [{"role": "user", "content": "hi"}], "max_tokens": 4},
    ).raise_for_status()
    # A short load too: its server view is read from the same Prometheus, with the credentials.
    load = (
        "{kind: load, name: secured, duration_s: 4s, workload: {max_tokens: 8, prompt_words: 8},"
        " load: {kind: open, rate_rps: 2, arrival: constant, max_send_lag_ms: 250}}"
    )
    profile = (
        f"kind: gate\nload: {load}\nslos: [error_rate<=0.5]\n"
        "key_checks: [metrics and alert rules]\n"
        f"confidence: {{max_duration_s: 0s, inconclusive_is: warn}}\nprobes: {only('monitoring')}\n"
    )
    env = {"EXTERNAL_GATE_KEY": KEYS["secured"], "PROM_USER": "gate", "PROM_PASSWORD": "s3cret"}
    r, report = run_gate(tmp_path, spec, env, profile=profile)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    assert by_name(report)["metrics and alert rules"]["outcome"] == "pass"
    looks = [json.loads(p.read_text()) for p in (tmp_path / "out").glob("*/**/report.json")]
    views = [look["server"] for look in looks if look.get("server")]
    assert views and all(not v["errors"] and v["profiles"] for v in views), views
    assert "s3cret" not in (tmp_path / "out" / "report.json").read_text()
    # A wrong password: Prometheus is named unreachable before anything runs.
    r, _ = run_gate(tmp_path, spec, {**env, "PROM_PASSWORD": "wrong"}, profile=profile)
    assert r.returncode == 2 and f"prometheus {secured_prometheus}" in r.stdout, r.stdout
    assert "answered 401" in r.stdout


def test_chaos_on_an_external_stack_through_its_toxiproxy(
    tmp_path: Path, up_stack: dict[str, Any]
) -> None:
    """A network fault through the deployment's own Toxiproxy; a process fault is skipped. The
    spec names no gateway replicas and no Prometheus: the steady state is read from what it
    has, a fresh request through the front door, and what it lacks is named."""
    spec = external_spec(up_stack, toxiproxy=True)
    for lacking in ("gateways", "prometheus", "alertmanager"):
        del spec["external"][lacking]
    (tmp_path / "stack.yaml").write_text(yaml.safe_dump(spec))
    exp = yaml.safe_load(
        (Path(__file__).parents[2] / "chaos" / "primary-down-fallback.yaml").read_text()
    )
    # The shipped experiment's load at 3 a second: its own send-lag bound (250 ms) kept, as a
    # user running it gets (replacing the whole `load` had put the 50 ms default in its place).
    exp["load"]["duration_s"] = "16s"
    exp["load"]["load"].update(rate_rps=3, arrival="constant")
    exp.update(fault_at_s="4s", fault_for_s="6s")
    exp["expect"] = {"during": ["fallback_share>=0.5", "error_rate<=0.2"]}
    (tmp_path / "down.yaml").write_text(yaml.safe_dump(exp))
    kill = {**exp, "title": "kill a primary", "fault": {"kind": "kill", "targets": ["primary-0"]}}
    (tmp_path / "kill.yaml").write_text(yaml.safe_dump(kill))
    r = subprocess.run(
        [
            *HARNESS,
            "chaos",
            str(tmp_path / "down.yaml"),
            str(tmp_path / "kill.yaml"),
            "--stack",
            str(tmp_path / "stack.yaml"),
            "--out",
            str(tmp_path / "out"),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        env={**os.environ, "EXTERNAL_GATE_KEY": KEYS["chaos"]},
    )
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = by_name(json.loads((tmp_path / "out" / "report.json").read_text()))
    during = checks["primary pool down, fallback serves: during the fault, fallback_share>=0.5"]
    assert during["outcome"] == "pass", during
    steady = checks["primary pool down, fallback serves: started from steady state"]
    assert steady["outcome"] == "pass" and steady["measured"]["signals"] == "a request", steady
    assert steady["reasons"] == [
        "steady: a fresh request answered by the primary pool",
        "not part of the hypothesis: breakers: no gateway replicas known",
        "not part of the hypothesis: alerts: the stack has no Prometheus",
    ], steady
    assert checks["kill a primary"]["outcome"] == "skipped"
    assert "no process handles" in checks["kill a primary"]["reasons"][0]


@pytest.fixture
def renaming_gateway(tmp_path: Path, up_stack: dict[str, Any]) -> Iterator[str]:
    """Another gateway's names: a real nginx in front of the stack that hides X-Served-By and
    X-Cache and answers X-Backend and X-Cache-Status instead."""
    location = [
        f"proxy_pass {up_stack['nginx']};",
        "proxy_http_version 1.1;",
        "proxy_buffering off;",
        "proxy_hide_header X-Served-By;",
        "proxy_hide_header X-Cache;",
        "add_header X-Backend $upstream_http_x_served_by always;",
        "add_header X-Cache-Status $upstream_http_x_cache always;",
    ]
    with _nginx_front(tmp_path / "renaming", location) as url:
        yield url


def test_a_gateway_with_other_names_is_gated_under_them(
    tmp_path: Path, up_stack: dict[str, Any], renaming_gateway: str
) -> None:
    """Its headers named in the spec, its key sent bare in X-API-Key: the cache probe and the
    primary share read the renamed headers; named as the reference, the same gateway fails."""
    spec: dict[str, Any] = {
        "kind": "stack",
        "name": "renamed",
        "provider": "external",
        "external": {
            "url": renaming_gateway,
            "api_key_env": "EXTERNAL_GATE_KEY",
            "auth_header": "X-API-Key",
            "auth_scheme": "",
            "gateway": {"served_by": "X-Backend", "cache": "X-Cache-Status"},
        },
    }
    profile = PROFILE.replace(
        "key_checks: [slo, load generator kept its schedule]",
        f"probes: {only('cache')}\nkey_checks: [response cache, slo]",
    )
    env = {"EXTERNAL_GATE_KEY": KEYS["renamed"]}
    r, report = run_gate(tmp_path, spec, env, profile=profile)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = by_name(report)
    assert checks["response cache"]["outcome"] == "pass", checks["response cache"]
    assert checks["served by the primary pool"]["measured"]["estimate"] == 1
    # The same gateway under the reference names: no X-Cache, no X-Served-By to read.
    spec["external"]["gateway"] = {}
    r, report = run_gate(tmp_path / "ref", spec, env, profile=profile)
    assert r.returncode == 1, r.stdout[-4000:]
    checks = by_name(report)
    assert checks["response cache"]["outcome"] == "fail"
    assert checks["served by the primary pool"]["measured"]["estimate"] == 0


@pytest.fixture
def renaming_metrics(tmp_path: Path, up_stack: dict[str, Any]) -> Iterator[list[str]]:
    """Each gateway replica behind a real nginx whose /metrics calls the cost counter
    `acme_spend_usd_total`: another gateway's metric name."""
    urls = []
    with contextlib.ExitStack() as stack:
        for i, gateway in enumerate(up_stack["gateways"]):
            location = [
                f"proxy_pass {gateway};",
                'proxy_set_header Accept-Encoding "";',
                "sub_filter_types *;",
                "sub_filter_once off;",
                "sub_filter llm_cost_usd_total acme_spend_usd_total;",
            ]
            urls.append(stack.enter_context(_nginx_front(tmp_path / f"metrics-{i}", location)))
        yield urls


def test_metric_names_and_error_answers_are_mapped_one_by_one(
    tmp_path: Path, up_stack: dict[str, Any], renaming_metrics: list[str]
) -> None:
    """One metric under another name: read under it, the cost check passes; the same mapping on
    a gateway without that name fails it, as do error answers mapped to another status or
    `code`; an item marked absent skips its check, named."""
    assert "acme_spend_usd_total" in httpx.get(f"{renaming_metrics[0]}/metrics").text
    profile = (
        f"kind: gate\nload: null\nprobes: {only('cost', 'injection', 'security')}\n"
        "key_checks: [cost accounting]\n"
    )
    env = {"EXTERNAL_GATE_KEY": KEYS["mapped"]}
    spec = external_spec(up_stack, toxiproxy=False)
    spec["external"]["gateway"] = {"metrics": {"llm_cost_usd_total": "acme_spend_usd_total"}}
    spec["external"]["gateways"] = renaming_metrics
    r, report = run_gate(tmp_path / "renamed", spec, env, profile=profile)
    assert r.returncode == 0, r.stdout[-4000:] + r.stderr[-2000:]
    checks = by_name(report)
    for name in (
        "cost accounting",
        "prompt-injection flagging",
        "authentication and input validation",
    ):
        assert checks[name]["outcome"] == "pass", checks[name]
    # The same mapping on the stack's own gateways (no such metric there), and a wrong status.
    spec["external"]["gateways"] = up_stack["gateways"]
    spec["external"]["gateway"]["errors"] = {
        "missing_key": 403,
        "unknown_key": {"status": 403, "code": "unknown_api_key"},
    }
    r, report = run_gate(tmp_path / "wrong", spec, env, profile=profile)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-2000:]
    checks = by_name(report)
    assert checks["cost accounting"]["outcome"] == "fail"
    assert "acme_spend_usd_total did not grow" in checks["cost accounting"]["reasons"]
    security = checks["authentication and input validation"]
    assert security["outcome"] == "fail"
    assert "no key: POST answered 401, want [403]" in security["reasons"]
    assert (
        "unknown key: POST 403 error code 'invalid_api_key', want 'unknown_api_key'"
        in security["reasons"]
    )
    # Marked absent: skipped with the item named, never passed; a skipped key check fails.
    spec["external"]["gateway"] = {
        "metrics": {"llm_cost_usd_total": None, "llm_prompt_injection_detected_total": None},
        "errors": {"unknown_key": None},
    }
    r, report = run_gate(tmp_path / "absent", spec, env, profile=profile)
    assert r.returncode == 1, r.stdout[-4000:] + r.stderr[-2000:]
    checks = by_name(report)
    for name, item in (
        ("cost accounting", "metric `llm_cost_usd_total`"),
        ("prompt-injection flagging", "metric `llm_prompt_injection_detected_total`"),
        ("authentication and input validation", "error `unknown_key`"),
    ):
        assert checks[name]["outcome"] == "skipped", checks[name]
        assert checks[name]["reasons"] == [
            f"cannot run on this stack: the gateway contract marks {item} absent"
        ]
    assert checks["key checks ran"]["outcome"] == "fail"
