"""Choosing the target: URLs, the ready file of `harness up`, model discovery errors."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from harness.clients.models import Target, check_url, discover_model
from harness.errors import ConfigError
from harness.stack.provider import Endpoints
from harness.stack.target import from_ready_file


def endpoints() -> Endpoints:
    return Endpoints(
        nginx="http://127.0.0.1:8080/",
        prometheus="http://127.0.0.1:9090",
        alertmanager="http://127.0.0.1:9093",
        toxiproxy="http://127.0.0.1:8474",
        redis="redis://127.0.0.1:6379",
        gateways=["http://127.0.0.1:8001"],
        model_servers=["http://127.0.0.1:8101"],
        model_pools={"primary": ["http://127.0.0.1:8101"]},
        proxies={},
        webhook="http://127.0.0.1:9999",
        exporters={},
        api_key="sk-harness-local",
        run_dir="/tmp/run",
        served_models={"primary": "smollm2-135m"},
    )


def test_ready_file_gives_the_front_door_key_and_prometheus(tmp_path: Path) -> None:
    f = tmp_path / "ready.json"
    endpoints().write(f)
    t = from_ready_file(f)
    assert t.url == "http://127.0.0.1:8080" and t.api_key == "sk-harness-local"
    assert t.prometheus == "http://127.0.0.1:9090" and t.model == "smollm2-135m"
    assert t.redacted()["api_key"] == "sk-har..."


def test_missing_or_broken_ready_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="ready file not found"):
        from_ready_file(tmp_path / "nope.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{"nginx": 1}')
    with pytest.raises(ConfigError, match="not a ready file"):
        from_ready_file(bad)


def test_check_url() -> None:
    assert check_url("http://127.0.0.1:8000/v1/", "--target") == "http://127.0.0.1:8000"
    with pytest.raises(ConfigError, match="http"):
        check_url("127.0.0.1:8000", "--target")


def test_model_discovery_failure_asks_for_model() -> None:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(ConfigError) as e:
        discover_model(Target(url=f"http://127.0.0.1:{port}"), timeout_s=1.0)
    assert e.value.problems[0].location == "--model" and "pass --model" in str(e.value)
