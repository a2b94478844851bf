"""The external stack spec: validation, loopback safety, secrets from the environment, and which
checks a stack that the harness did not start can serve."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from harness import wire
from harness.errors import ConfigError
from harness.gate.steps import experiment_needs
from harness.measure.server import GATEWAY, under_names
from harness.spec.experiment import ExperimentSpec
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec
from harness.stack.external import check_env, check_remote, is_loopback
from harness.stack.provider import Endpoints, RunningStack
from harness.verdict.practices import (
    InjectionAnswer,
    judge_cost,
    judge_injection,
    judge_rate_limit,
)
from harness.wire import ERRORS, METRICS, ErrorAnswer


def load(tmp_path: Path, text: str) -> StackSpec:
    p = tmp_path / "stack.yaml"
    p.write_text(text)
    return load_yaml_model(StackSpec, p)


def test_external_needs_its_section_and_a_url(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="needs an `external:` section"):
        load(tmp_path, "kind: stack\nprovider: external\n")
    with pytest.raises(ConfigError) as e:
        load(tmp_path, "kind: stack\nprovider: external\nexternal: {url: 'ftp://x'}\n")
    assert "external.url" in str(e.value) and "expected an http(s) URL" in str(e.value)
    with pytest.raises(ConfigError, match="needs provider 'external'"):
        load(tmp_path, "kind: stack\nexternal: {url: 'http://127.0.0.1:1'}\n")
    with pytest.raises(ConfigError, match="token_env"):
        load(
            tmp_path,
            "kind: stack\nprovider: external\nexternal:\n  url: http://127.0.0.1:1\n"
            "  prometheus: {url: 'http://127.0.0.1:2', auth: {kind: bearer}}\n",
        )


def test_only_loopback_without_allow_remote(tmp_path: Path) -> None:
    assert is_loopback("http://127.0.0.1:8080") and is_loopback("http://localhost:1")
    assert is_loopback("http://[::1]:80")
    # Documentation-range addresses (RFC 5737): refused before any request, never reached.
    for far in ("http://192.0.2.3", "http://198.51.100.1:8000", "https://example.com"):
        assert not is_loopback(far)
    spec = load(
        tmp_path,
        "kind: stack\nprovider: external\nexternal:\n  url: http://203.0.113.7:80\n"
        "  prometheus: {url: 'http://127.0.0.1:9090'}\n",
    )
    assert spec.external is not None
    with pytest.raises(ConfigError) as e:
        check_remote(spec.external.urls(), allow_remote=False, source="s.yaml")
    assert "external.url" in str(e.value) and "--allow-remote" in str(e.value)
    assert "prometheus" not in str(e.value)
    check_remote(spec.external.urls(), allow_remote=True, source="s.yaml")


def test_secrets_come_from_the_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    spec = load(
        tmp_path,
        "kind: stack\nprovider: external\nexternal:\n  url: http://127.0.0.1:1\n"
        "  api_key_env: GATE_TEST_KEY\n  prometheus:\n    url: http://127.0.0.1:2\n"
        "    auth: {kind: basic, username_env: GATE_U, password_env: GATE_P}\n",
    )
    assert spec.external is not None
    for name in ("GATE_TEST_KEY", "GATE_U", "GATE_P"):
        monkeypatch.delenv(name, raising=False)
    with pytest.raises(ConfigError) as e:
        check_env(spec.external, "s.yaml")
    assert all(n in str(e.value) for n in ("GATE_TEST_KEY", "GATE_U", "GATE_P"))
    monkeypatch.setenv("GATE_TEST_KEY", "k")
    monkeypatch.setenv("GATE_U", "u")
    monkeypatch.setenv("GATE_P", "p")
    check_env(spec.external, "s.yaml")
    assert spec.external.prometheus is not None
    assert spec.external.prometheus.headers() == {"Authorization": "Basic dTpw"}


def _running(spec: StackSpec) -> RunningStack:
    ep = Endpoints(
        nginx="http://127.0.0.1:1",
        prometheus="",
        alertmanager="",
        toxiproxy="",
        redis="",
        gateways=[],
        model_servers=[],
        model_pools={},
        proxies={},
        webhook="",
        exporters={},
        api_key="",
        run_dir="/tmp",
    )
    return RunningStack(spec=spec, endpoints=ep, run_dir=Path("/tmp"))


def test_what_an_external_stack_lacks(tmp_path: Path) -> None:
    bare = _running(
        load(
            tmp_path,
            "kind: stack\nprovider: external\n"
            "external: {url: 'http://127.0.0.1:1', gateway: null}\n",
        )
    )
    assert bare.lacks("cache") == "no gateway"
    assert bare.lacks("toxiproxy") == "no Toxiproxy in the stack spec"
    assert "did not start" in (bare.lacks("processes") or "")
    assert bare.lacks("declared settings") == "the stack spec declares no gateway settings to judge"
    partial = _running(
        load(
            tmp_path,
            "kind: stack\nprovider: external\nexternal:\n"
            "  url: http://127.0.0.1:1\n  gateway: {cache: null}\n",
        )
    )
    assert partial.lacks("served_by") is None
    assert partial.lacks("cache") == "the gateway contract marks `cache` absent"
    # A stack the harness started has everything.
    assert _running(StackSpec()).lacks("cache", "processes", "toxiproxy", "rules file") is None


def test_an_external_stack_without_toxiproxy_skips_network_faults_not_refuses_them(
    tmp_path: Path,
) -> None:
    from harness.stack.names import experiment_problems

    exp = ExperimentSpec.model_validate(
        {"title": "t", "fault": {"kind": "proxy_down", "targets": ["primary-0"]}}
    )
    bare = load(
        tmp_path, "kind: stack\nprovider: external\nexternal: {url: 'http://127.0.0.1:1'}\n"
    )
    # No Toxiproxy: the gate skips the experiment ("no Toxiproxy in the stack spec"), exit 0/1.
    assert experiment_problems(exp, bare) == []
    assert _running(bare).lacks(*experiment_needs(exp)) == "no Toxiproxy in the stack spec"
    # A Toxiproxy without that proxy: a misspelt name, refused before anything runs.
    with_proxies = load(
        tmp_path,
        "kind: stack\nprovider: external\nexternal:\n  url: http://127.0.0.1:1\n"
        "  toxiproxy: {url: 'http://127.0.0.1:2', proxies: {primary: [p0]}}\n",
    )
    (problem,) = experiment_problems(exp, with_proxies)
    assert "unknown 'primary-0'; expected one of the stack's Toxiproxy proxies: p0" in str(problem)


def test_a_burst_is_judged_by_the_contracts_rate_limited_answer(tmp_path: Path) -> None:
    exp = ExperimentSpec.model_validate({"title": "b", "fault": {"kind": "traffic_burst"}})
    base = "kind: stack\nprovider: external\nexternal:\n  url: http://127.0.0.1:1\n"
    assert _running(load(tmp_path, base)).lacks(*experiment_needs(exp)) is None
    absent = load(tmp_path, base + "  gateway: {errors: {rate_limited: null}}\n")
    assert _running(absent).lacks(*experiment_needs(exp)) == (
        "the gateway contract marks error `rate_limited` absent"
    )


def test_experiment_needs() -> None:
    exp = ExperimentSpec.model_validate(
        {
            "kind": "experiment",
            "title": "t",
            "fault": {"kind": "kill", "targets": ["primary-0"]},
            "expect": {"during": ["fallback_share>=0.9"], "alerts": [{"alert": "HighErrorRate"}]},
        }
    )
    assert experiment_needs(exp) == ("processes", "alerts", "served_by")


def test_load_refuses_a_remote_target_unless_allowed() -> None:
    from harness.commands.load import target_problems

    (problem,) = target_problems("http://198.51.100.20:8000", None, None, None)
    assert problem.location == "--target" and "--allow-remote" in problem.message
    assert target_problems("http://198.51.100.20:8000", None, None, None, allow_remote=True) == []
    assert target_problems("http://127.0.0.1:8000", None, None, None) == []


def test_fault_parts_are_the_harness_own() -> None:
    exp = ExperimentSpec.model_validate(
        {
            "kind": "experiment",
            "title": "t",
            "fault": {"kind": "http_error", "targets": ["primary-0"], "status": 503, "share": 0.5},
        }
    )
    assert experiment_needs(exp) == ("fault parts",)


def _contract(tmp_path: Path, gateway: str) -> RunningStack:
    return _running(
        load(
            tmp_path,
            "kind: stack\nprovider: external\nexternal:\n"
            f"  url: http://127.0.0.1:1\n  gateway: {gateway}\n",
        )
    )


def test_metrics_and_errors_are_mapped_one_by_one(tmp_path: Path) -> None:
    stack = _contract(
        tmp_path,
        "{metrics: {llm_cost_usd_total: acme_spend_dollars, llm_request_duration_seconds: "
        "acme_latency_seconds, llm_circuit_breaker_state: null}, errors: {missing_key: 403, "
        "oversized_prompt: [400, 422], prompt_injection: {status: 403, code: blocked}, "
        "unknown_key: null}}",
    )
    assert stack.spec.external is not None
    names = stack.spec.external.wire()
    assert names.metric("llm_cost_usd_total") == "acme_spend_dollars"
    # A histogram's series follow its family's name.
    assert names.metric("llm_request_duration_seconds_bucket") == "acme_latency_seconds_bucket"
    assert names.metric("llm_prompt_tokens_total") == "llm_prompt_tokens_total"  # not mapped
    assert names.metric("llm_circuit_breaker_state") is None
    assert names.error("missing_key") == ErrorAnswer(status=(403,))
    assert names.error("oversized_prompt") == ErrorAnswer(status=(400, 422))
    assert names.error("prompt_injection") == ErrorAnswer(status=(403,), code="blocked")
    assert names.error("unknown_key") is None
    assert names.error("wrong_method") == ErrorAnswer(status=(404, 405))  # the reference's
    # What is absent is named; what is mapped or left alone is there.
    assert stack.lacks("metric:llm_cost_usd_total", "error:missing_key") is None
    assert (
        stack.lacks("metric:llm_circuit_breaker_state", "gateways")
        == "the gateway contract marks metric `llm_circuit_breaker_state` absent; "
        "no per-replica gateway URLs in the stack spec"
    )
    assert (
        stack.lacks("error:unknown_key") == "the gateway contract marks error `unknown_key` absent"
    )
    with pytest.raises(LookupError, match="error `unknown_key` absent"):
        names.expected_error("unknown_key")


def test_metrics_and_errors_as_a_whole(tmp_path: Path) -> None:
    # Omitted or true: every item as the reference gateway has it.
    for gateway in ("{}", "{metrics: true, errors: true}"):
        stack = _contract(tmp_path, gateway)
        assert (
            stack.lacks(*(f"metric:{m}" for m in METRICS), *(f"error:{e}" for e in ERRORS)) is None
        )
        assert wire.Wire().metric("llm_cost_usd_total") == "llm_cost_usd_total"
    # false: every item absent, each named.
    stack = _contract(tmp_path, "{metrics: false, errors: false}")
    assert stack.lacks("metric:llm_request_duration_seconds_bucket") == (
        "the gateway contract marks metric `llm_request_duration_seconds` absent"
    )
    assert (
        stack.lacks("error:rate_limited")
        == "the gateway contract marks error `rate_limited` absent"
    )
    # No gateway at all: every item is missing for that reason.
    bare = _contract(tmp_path, "null")
    assert bare.lacks("metric:llm_cost_usd_total", "error:missing_key") == "no gateway"
    # A metric no check maps (a policy may ask for any) is read under its own name.
    assert stack.lacks("metric:llm_gpu_utilization_percent") is None


@pytest.mark.parametrize(
    ("gateway", "field", "expected"),
    [
        (
            "{metrics: {llm_cost_usd_totl: x}}",
            "external.gateway.metrics",
            "unknown metric 'llm_cost_usd_totl'; expected one of llm_requests_total",
        ),
        (
            "{metrics: {llm_cost_usd_total: 'acme cost'}}",
            "external.gateway.metrics.llm_cost_usd_total",
            "expected a Prometheus metric name",
        ),
        ("{metrics: 3}", "external.gateway.metrics", "expected true (as the reference gateway)"),
        (
            "{errors: {missing_keys: 401}}",
            "external.gateway.errors",
            "unknown error 'missing_keys'; expected one of missing_key",
        ),
        (
            "{errors: {missing_key: 200}}",
            "external.gateway.errors.missing_key.status[0]",
            "expected an HTTP error status (400-599)",
        ),
        (
            "{errors: {missing_key: []}}",
            "external.gateway.errors.missing_key.status",
            "at least 1 item",
        ),
        (
            "{errors: {prompt_injection: {code: blocked}}}",
            "external.gateway.errors.prompt_injection.status",
            "Field required",
        ),
    ],
)
def test_a_bad_mapping_names_file_field_and_what_was_expected(
    tmp_path: Path, gateway: str, field: str, expected: str
) -> None:
    p = tmp_path / "stack.yaml"
    p.write_text(
        f"kind: stack\nprovider: external\nexternal:\n  url: http://127.0.0.1:1\n"
        f"  gateway: {gateway}\n"
    )
    r = subprocess.run(
        [sys.executable, "-m", "harness", "validate", str(p)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    out = r.stdout + r.stderr
    assert r.returncode == 2, out
    assert f"{p}: {field}: " in out and expected in out, out
    assert "Traceback" not in out


def test_judges_read_the_gateways_names() -> None:
    reject = ErrorAnswer(status=(403,), code="blocked")
    blocked = [InjectionAnswer("system:", 403, "blocked", 1)]
    assert judge_injection(blocked, "reject", reject) == []
    wrong = [InjectionAnswer("system:", 400, "prompt_injection_detected", 1)]
    assert judge_injection(wrong, "reject", reject) == [
        "'system:': policy reject: status 400 code 'prompt_injection_detected', want 403 code "
        "'blocked'"
    ]
    missed = [InjectionAnswer("system:", 200, None, 0)]
    (reason,) = judge_injection(missed, "log", reject, metric="acme_injections")
    assert reason.startswith("acme_injections{pattern='system:'} grew by 0")
    # A limiter that refuses with 503: counted as refused under its mapping, unexpected without.
    codes = [200] * 5 + [503] * 3
    assert judge_rate_limit(codes, 5, None, fresh_key=False, refused=(503,)) == []
    assert judge_rate_limit(codes, 5, None, fresh_key=False) == [
        "no 429 among 8 requests sent at once",
        "unexpected statuses [503]",
    ]
    usage = {"prompt_tokens": 10, "completion_tokens": 2, "cost_usd": 0.0012}
    failures, _ = judge_cost(
        200, usage, {}, 2, 10, {"default": 0.1}, ("acme_spend", "acme_out", "acme_in")
    )
    assert "acme_spend did not grow" in failures


def test_the_server_view_reads_the_gateways_names() -> None:
    names = wire.Wire(
        metrics={"llm_gateway_overhead_seconds": "acme_own_seconds", "llm_cache_misses_total": None}
    )
    view = under_names(GATEWAY, names.metric)
    ((metric, query),) = view.figures["overhead_p95_ms"]
    assert metric == "acme_own_seconds_bucket"
    assert "rate(acme_own_seconds_bucket$sel[$w])" in query and "llm_gateway" not in query
    assert view.figures["cache_hit_rate"] == []  # reads a metric the gateway does not have
    assert view.figures["request_rate_rps"] == GATEWAY.figures["request_rate_rps"]
    assert under_names(GATEWAY, wire.Wire().metric) == GATEWAY
