from pathlib import Path

import pytest
import yaml

from harness.paths import STACK_DIR
from harness.spec.stack import AlertmanagerSpec, PrometheusSpec
from harness.stack import render


def test_committed_alert_rules_match_the_renderer_defaults() -> None:
    committed = yaml.safe_load((STACK_DIR / "prometheus" / "alerts.yml").read_text())
    assert committed == render.alert_rules(PrometheusSpec())


def test_alert_rules_carry_practices_names_and_thresholds() -> None:
    rules = render.alert_rules(PrometheusSpec(error_rate_threshold=0.1, slow_p95_seconds=2))
    by_name = {r["alert"]: r for r in rules["groups"][0]["rules"]}
    assert set(by_name) == {"HighErrorRate", "SlowResponse", "GPUMemoryHigh"}
    assert 'llm_requests_total{status="error"}' in by_name["HighErrorRate"]["expr"]
    assert by_name["HighErrorRate"]["expr"].endswith("> 0.1")
    assert "llm_request_duration_seconds_bucket" in by_name["SlowResponse"]["expr"]
    assert by_name["SlowResponse"]["expr"].endswith("> 2")
    assert by_name["GPUMemoryHigh"]["expr"].startswith("llm_gpu_memory_used / llm_gpu_memory_total")


def test_fill_template_refuses_unknown_placeholders() -> None:
    assert render.fill_template("a {{ x }} b {{y}}", {"x": 1, "y": "z"}) == "a 1 b z"
    with pytest.raises(KeyError, match="'missing'"):
        render.fill_template("{{ missing }}", {})


def test_nginx_config_streams_unbuffered_to_every_gateway(tmp_path) -> None:  # type: ignore[no-untyped-def]
    text = render.render_nginx(run_dir=tmp_path, port=1234, status_port=1235, gateway_ports=[7, 8])
    assert "listen 127.0.0.1:1234;" in text and "listen 127.0.0.1:1235;" in text
    assert "server 127.0.0.1:7 " in text and "server 127.0.0.1:8 " in text
    assert "proxy_buffering off;" in text and "proxy_http_version 1.1;" in text
    assert "{{" not in text
    # nothing may listen beyond loopback
    for line in text.splitlines():
        if line.strip().startswith("listen"):
            assert "127.0.0.1:" in line


def test_a_labelled_stacks_access_lines_carry_its_name(tmp_path: Path) -> None:
    def render_with(label: str | None) -> str:
        return render.render_nginx(
            run_dir=tmp_path, port=1, status_port=2, gateway_ports=[3], stack_label=label
        )

    assert '"message":"access","stack":"candidate","request_id"' in render_with("candidate")
    assert '"message":"access","request_id"' in render_with(None)
    with pytest.raises(ValueError, match="letters, digits"):
        render_with('x","evil')


def test_alertmanager_routes_to_the_webhook_with_resolved_notifications() -> None:
    cfg = render.alertmanager_config(AlertmanagerSpec(), webhook_url="http://127.0.0.1:9/alerts")
    hook = cfg["receivers"][0]["webhook_configs"][0]
    assert hook == {"url": "http://127.0.0.1:9/alerts", "send_resolved": True}
    assert cfg["route"]["group_wait"] == "1s"


def test_prometheus_config_groups_targets_by_job() -> None:
    targets = [
        render.ScrapeTarget("gateway", "127.0.0.1:1", {"replica": "gateway-0"}),
        render.ScrapeTarget("gateway", "127.0.0.1:2", {"replica": "gateway-1"}),
        render.ScrapeTarget("nginx", "127.0.0.1:3", {}),
    ]
    cfg = render.prometheus_config(
        PrometheusSpec(),
        rules_file=STACK_DIR / "x.yml",
        alertmanager_address="127.0.0.1:4",
        targets=targets,
    )
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert len(jobs["gateway"]["static_configs"]) == 2
    assert cfg["global"]["scrape_interval"] == "1s"
