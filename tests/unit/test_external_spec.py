"""The external stack spec: validation, loopback safety, secrets from the environment, and which
checks a stack that the harness did not start can serve."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.gate_steps import experiment_needs
from harness.spec.experiment import ExperimentSpec
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec
from harness.stack.external import check_env, check_remote, is_loopback
from harness.stack.provider import Endpoints, RunningStack


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
    from harness.load.cli import target_problems

    (problem,) = target_problems("http://198.51.100.20:8000", None, None, None)
    assert problem.location == "--target" and "--allow-remote" in problem.message
    assert target_problems("http://198.51.100.20:8000", None, None, None, allow_remote=True) == []
    assert target_problems("http://127.0.0.1:8000", None, None, None) == []


def test_fault_parts_are_the_harness_own() -> None:
    exp = ExperimentSpec.model_validate({
        "kind": "experiment", "title": "t",
        "fault": {"kind": "http_error", "targets": ["primary-0"], "status": 503, "share": 0.5},
    })  # fmt: skip
    assert experiment_needs(exp) == ("fault parts",)
