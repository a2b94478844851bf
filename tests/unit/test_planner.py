from pathlib import Path

import pytest

from harness.spec.gateway import GatewayRuntimeConfig
from harness.spec.stack import ModelPool, SimulatorServer, StackSpec
from harness.stack.planner import build_plan


@pytest.fixture
def plan(tmp_path: Path):  # type: ignore[no-untyped-def]
    sim = ModelPool(replicas=2, server=SimulatorServer())
    return build_plan(
        StackSpec(primary=sim, fallback=ModelPool(server=SimulatorServer())), tmp_path
    )


def test_every_port_is_distinct_and_on_loopback(plan) -> None:  # type: ignore[no-untyped-def]
    ports = [s.port for s in plan.services] + [p.listen_port for p in plan.proxies]
    ports.append(plan.webhook_port)
    assert len(ports) == len(set(ports))
    for s in plan.services:
        joined = " ".join(s.argv)
        assert "0.0.0.0" not in joined


def test_proxies_are_named_after_pool_and_replica(plan) -> None:  # type: ignore[no-untyped-def]
    assert [p.name for p in plan.proxies] == ["primary-0", "primary-1", "fallback-0", "redis"]
    by_name = {s.name: s for s in plan.services}
    assert plan.proxies[0].upstream_port == by_name["primary-0"].port


def test_gateways_dial_model_servers_and_redis_through_toxiproxy(plan) -> None:  # type: ignore[no-untyped-def]
    proxy_ports = {p.name: p.listen_port for p in plan.proxies}
    gw = next(s for s in plan.services if s.name == "gateway-0")
    cfg = GatewayRuntimeConfig.model_validate_json(plan.files[Path(gw.env["GATEWAY_CONFIG"])])
    assert cfg.primary_urls == (
        f"http://127.0.0.1:{proxy_ports['primary-0']}",
        f"http://127.0.0.1:{proxy_ports['primary-1']}",
    )
    assert cfg.fallback_urls == (f"http://127.0.0.1:{proxy_ports['fallback-0']}",)
    assert cfg.redis_url == f"redis://127.0.0.1:{proxy_ports['redis']}/0"


def test_unfronted_services_are_dialled_directly(tmp_path: Path) -> None:
    spec = StackSpec.model_validate(
        {
            "primary": {"server": {"kind": "simulator"}},
            "fallback": {"server": {"kind": "simulator"}},
            "toxiproxy": {"front": ["primary"]},
        }
    )
    plan = build_plan(spec, tmp_path)
    assert [p.name for p in plan.proxies] == ["primary-0"]
    gw = next(s for s in plan.services if s.role == "gateway")
    cfg = GatewayRuntimeConfig.model_validate_json(plan.files[Path(gw.env["GATEWAY_CONFIG"])])
    fallback = next(s for s in plan.services if s.name == "fallback-0")
    assert cfg.fallback_urls == (f"http://127.0.0.1:{fallback.port}",)


def test_tiers_put_backends_before_gateways_before_nginx(plan) -> None:  # type: ignore[no-untyped-def]
    order = {s.name: i for i, tier in enumerate(plan.tiers()) for s in tier}
    assert order["toxiproxy"] < order["gateway-0"] < order["nginx"] <= order["nginx-exporter"]
    assert order["prometheus"] == order["toxiproxy"]  # started early: see planner.py
    assert order["primary-0"] < order["gateway-0"]


def test_prometheus_scrapes_every_service_but_itself_twice(plan) -> None:  # type: ignore[no-untyped-def]
    prom_cfg = next(t for p, t in plan.files.items() if p.name == "prometheus.yml")
    for name in ("primary-0", "primary-1", "fallback-0", "gateway-0", "gateway-1"):
        port = next(s.port for s in plan.services if s.name == name)
        assert f"127.0.0.1:{port}" in prom_cfg


def test_endpoints_have_the_documented_keys(plan) -> None:  # type: ignore[no-untyped-def]
    for key in (
        "nginx",
        "prometheus",
        "alertmanager",
        "toxiproxy",
        "redis",
        "gateways",
        "model_servers",
        "api_key",
    ):
        assert key in plan.endpoints
    assert len(plan.endpoints["model_servers"]) == 3


def test_the_log_store_listens_on_loopback_and_every_layer_ships_to_it(plan) -> None:  # type: ignore[no-untyped-def]
    import re

    store = next(s for s in plan.services if s.role == "logs")
    argv = " ".join(store.argv)
    assert f"-httpListenAddr=127.0.0.1:{store.port}" in argv
    syslog = re.search(r"-syslog\.listenAddr\.udp=127\.0\.0\.1:(\d+)", argv)
    assert syslog is not None and store.tier == 0  # ready before the gateways and nginx
    assert plan.endpoints["logs"] == f"http://127.0.0.1:{store.port}"
    gw = next(s for s in plan.services if s.name == "gateway-1")
    cfg = GatewayRuntimeConfig.model_validate_json(plan.files[Path(gw.env["GATEWAY_CONFIG"])])
    assert cfg.logs_url is not None
    assert cfg.logs_url.startswith(f"http://127.0.0.1:{store.port}/insert/jsonline?")
    nginx_conf = next(text for path, text in plan.files.items() if path.name == "nginx.conf")
    assert f"access_log syslog:server=127.0.0.1:{syslog.group(1)},tag=nginx json_lines;" in (
        nginx_conf
    )
    prom = next(text for path, text in plan.files.items() if path.name == "prometheus.yml")
    assert "job_name: victoria-logs" in prom and f"127.0.0.1:{store.port}" in prom
    # The agent follows each model server's log file, tagged with its name, into the store.
    agent = next(s for s in plan.services if s.name == "vlagent")
    argv = " ".join(agent.argv)
    assert f"-httpListenAddr=127.0.0.1:{agent.port}" in argv
    assert f"-remoteWrite.url=http://127.0.0.1:{store.port}/insert/native" in argv
    globs = [a.split("=", 1)[1] for a in agent.argv if a.startswith("-fileCollector.glob=")]
    assert [Path(g).name for g in globs] == ["primary-0.log", "primary-1.log", "fallback-0.log"]
    assert '-fileCollector.extraFields={"layer": "model", "replica": "primary-1"}' in argv
    assert "job_name: vlagent" in prom


def test_a_simulator_with_its_kv_cache_gets_its_size_a_pod_address_and_no_event_publisher(
    tmp_path: Path,
) -> None:
    on = SimulatorServer(enable_kvcache=True, kv_cache_size=11, block_size=32)
    plan = build_plan(StackSpec(primary=ModelPool(replicas=1, server=on)), tmp_path)
    sim = next(s for s in plan.services if s.name == "primary-0")
    argv = " ".join(sim.argv)
    assert "--enable-kvcache --kv-cache-size 11 --block-size 32 --zmq-endpoint=" in argv
    assert sim.env == {"POD_IP": "127.0.0.1"}
    off = build_plan(StackSpec(primary=ModelPool(server=SimulatorServer())), tmp_path / "off")
    plain = next(s for s in off.services if s.name == "primary-0")
    assert "--enable-kvcache" not in plain.argv and plain.env == {}


def test_a_stack_beside_another_uses_its_redis_monitoring_and_log_store(tmp_path: Path) -> None:
    from harness.stack.planner import SHAREABLE, SharedServices
    from harness.stack.provider import Endpoints

    spec = StackSpec(
        primary=ModelPool(replicas=2, server=SimulatorServer()),
        fallback=ModelPool(server=SimulatorServer()),
    )
    host = build_plan(spec, tmp_path / "baseline", label="baseline")
    endpoints = Endpoints.model_validate({**host.endpoints, "provider": "local"})
    guest = build_plan(
        spec,
        tmp_path / "candidate",
        shared=SharedServices.of(endpoints, SHAREABLE),
        label="candidate",
    )
    names = {s.name for s in guest.services}
    for own in ("redis", "redis-exporter", "prometheus", "alertmanager", "victoria-logs"):
        assert own not in names
    assert {"gateway-0", "primary-1", "nginx", "vlagent", "toxiproxy"} <= names
    assert guest.webhook_port is None and guest.prometheus is None
    for key in ("redis", "prometheus", "alertmanager", "webhook", "logs", "logs_syslog"):
        assert guest.endpoints[key] == host.endpoints[key]
    store_port = int(str(host.endpoints["logs"]).rsplit(":", 1)[1])
    redis_port = int(str(host.endpoints["redis"]).split(":")[2].split("/")[0])
    # The gateways dial the baseline's Redis (through this stack's own Toxiproxy) and ship their
    # lines, marked with the stack, to the baseline's store; so do nginx and the agent.
    redis_proxy = next(p for p in guest.proxies if p.name == "redis")
    assert redis_proxy.upstream_port == redis_port
    gw = next(s for s in guest.services if s.name == "gateway-0")
    cfg = GatewayRuntimeConfig.model_validate_json(guest.files[Path(gw.env["GATEWAY_CONFIG"])])
    assert cfg.logs_url is not None and "extra_fields=stack%3Dcandidate" in cfg.logs_url
    assert cfg.logs_url.startswith(f"http://127.0.0.1:{store_port}/insert/jsonline?")
    nginx_conf = next(text for path, text in guest.files.items() if path.name == "nginx.conf")
    assert f"syslog:server={host.endpoints['logs_syslog']}," in nginx_conf
    agent = " ".join(next(s for s in guest.services if s.name == "vlagent").argv)
    assert f"-remoteWrite.url=http://127.0.0.1:{store_port}/insert/native" in agent
    assert '"stack": "candidate"' in agent
    # Its own targets are labelled with its version, for the baseline's Prometheus to scrape;
    # the services it borrows are not its to scrape or to own.
    jobs = {t.job for t in guest.scrape_targets}
    assert not jobs & {"redis", "prometheus", "alertmanager", "victoria-logs"}
    assert {t.labels["version"] for t in guest.scrape_targets} == {"candidate"}
    assert {redis_port, store_port} <= guest.borrowed_ports
    assert host.prometheus is not None and "version: baseline" in host.prometheus.render(
        host.scrape_targets
    )
