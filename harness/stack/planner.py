"""Turn a StackSpec into a ServicePlan: ports, command lines, readiness checks, config files."""

from __future__ import annotations

import sys
from collections.abc import Collection
from dataclasses import dataclass
from pathlib import Path
from typing import get_args
from urllib.parse import urlsplit

from harness.paths import PROJECT_ROOT, STACK_DIR, model_hub_home
from harness.spec.experiment import GPU_SIM_EXPORTER
from harness.spec.gateway import GatewayRuntimeConfig
from harness.spec.rollout import Shareable
from harness.spec.stack import (
    GpuSimExporterSpec,
    LlamaCppServer,
    ModelPool,
    SimulatorServer,
    StackSpec,
    VllmServer,
)
from harness.stack import render
from harness.stack.logs_service import jsonline_url, log_agent_service, logs_service
from harness.stack.plan import ProxyDef, ServiceDef, ServicePlan, Warmup
from harness.stack.ports import free_ports
from harness.stack.provider import Endpoints
from harness.stack.readiness import HttpReady, redis_ready
from harness.tools import default_model_path, find_binary

TIER_BACKENDS, TIER_GATEWAYS, TIER_EDGE, TIER_OBSERVERS = 0, 1, 2, 3


SHAREABLE: tuple[str, ...] = get_args(Shareable)


@dataclass(frozen=True)
class SharedServices:
    """Another running stack's services that a stack uses instead of starting its own, as the
    versions of a real rollout share them: Redis (the response cache and the rate limits),
    Prometheus with Alertmanager (the alert rules see both), the log store."""

    redis_port: int | None = None
    logs_port: int | None = None
    syslog_port: int | None = None
    prometheus: str | None = None
    alertmanager: str | None = None
    webhook: str | None = None

    def ports(self) -> frozenset[int]:
        """The other stack's ports this one dials (they are not this stack's)."""
        urls = (self.prometheus, self.alertmanager, self.webhook)
        named = {self.redis_port, self.logs_port, self.syslog_port}
        return frozenset({p for p in named if p} | {urlsplit(u).port or 0 for u in urls if u})

    @classmethod
    def of(cls, endpoints: Endpoints, parts: Collection[str]) -> SharedServices:
        """The `parts` (of SHAREABLE) of a running stack, from its endpoints."""
        syslog = endpoints.logs_syslog if "logs" in parts else None
        return cls(
            redis_port=urlsplit(endpoints.redis).port if "redis" in parts else None,
            logs_port=urlsplit(endpoints.logs).port if syslog and endpoints.logs else None,
            syslog_port=int(syslog.rsplit(":", 1)[1]) if syslog and endpoints.logs else None,
            prometheus=endpoints.prometheus if "monitoring" in parts else None,
            alertmanager=endpoints.alertmanager if "monitoring" in parts else None,
            webhook=endpoints.webhook if "monitoring" in parts else None,
        )


class _Ports:
    """Hands out pre-allocated free ports one at a time."""

    def __init__(self, count: int) -> None:
        self._ports = free_ports(count)

    def take(self) -> int:
        return self._ports.pop()


@dataclass(frozen=True)
class ModelServerSlot:
    name: str
    pool: str
    port: int


def prometheus_def(conf: Path, run_dir: Path, port: int, tier: int) -> ServiceDef:
    """Prometheus on loopback with its data in the run folder (and the lifecycle API, so a config
    written again is reloaded)."""
    return ServiceDef(
        name="prometheus",
        role="prometheus",
        argv=[
            str(find_binary("prometheus")),
            "--config.file",
            str(conf),
            "--storage.tsdb.path",
            str(run_dir / "prometheus-data"),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--web.enable-lifecycle",
            # The scrapers take new targets at this pace (default 5 s): a stack waits until
            # every target has been scraped once, and so does a stack added beside it.
            "--scrape.discovery-reload-interval=250ms",
        ],
        port=port,
        ready=HttpReady(f"http://127.0.0.1:{port}/-/ready"),
        # First tier of a stack: its first scrapes come about a second after it starts, hidden
        # behind the other services' start-up.
        image="prometheus",
        tier=tier,
        mounts=[run_dir],
    )


def model_server_def(slot: ModelServerSlot, pool: ModelPool, run_dir: Path) -> ServiceDef:
    server = pool.server
    url = f"http://127.0.0.1:{slot.port}"
    if isinstance(server, LlamaCppServer):
        model = Path(server.model_path) if server.model_path else default_model_path()
        argv = [
            str(find_binary("llama-server")),
            "-m",
            str(model),
            "--host",
            "127.0.0.1",
            "--port",
            str(slot.port),
            "-np",
            str(server.slots),
            "-c",
            str(server.context),
            "-t",
            str(server.threads),
            "-n",
            str(server.n_predict),
            "--alias",
            server.served_name,
            "--metrics",
        ]
        return ServiceDef(
            name=slot.name,
            role="model_server",
            argv=argv,
            port=slot.port,
            ready=HttpReady(f"{url}/health"),
            image="llama_cpp",
            tier=TIER_BACKENDS,
            pool=slot.pool,
            mounts=[model],
            ready_timeout_s=60,
            hint="llama-server loads the GGUF model at start; check the model path and memory",
            warmup=Warmup(f"{url}/v1/completions", {"prompt": "Hello", "max_tokens": 1}),
        )
    if isinstance(server, SimulatorServer):
        argv = [
            str(find_binary("llm-d-inference-sim")),
            "--model",
            server.served_name,
            "--port",
            str(slot.port),
            "--mode",
            server.mode,
            "--time-to-first-token",
            f"{server.time_to_first_token_ms}ms",
            "--inter-token-latency",
            f"{server.inter_token_latency_ms}ms",
            "--max-num-seqs",
            str(server.max_num_seqs),
            "--max-model-len",
            str(server.max_model_len),
            "--seed",
            str(server.seed),
        ]
        if server.failure_injection_rate:
            argv += ["--failure-injection-rate", str(server.failure_injection_rate)]
        if server.failure_types:
            argv += ["--failure-types", ",".join(server.failure_types)]
        env: dict[str, str] = {}
        if server.enable_kvcache:
            argv += ["--enable-kvcache", "--kv-cache-size", str(server.kv_cache_size)]
            argv += ["--block-size", str(server.block_size)]
            # No KV-event publisher (it would dial 127.0.0.1:5557 for ever); the cache itself
            # refuses to start without a pod address.
            argv += ["--zmq-endpoint="]
            env["POD_IP"] = "127.0.0.1"
        return ServiceDef(
            name=slot.name,
            role="model_server",
            argv=argv,
            port=slot.port,
            ready=HttpReady(f"{url}/health"),
            image="simulator",
            tier=TIER_BACKENDS,
            pool=slot.pool,
            env=env,
        )
    assert isinstance(server, VllmServer)
    argv = [
        "vllm",
        "serve",
        server.model,
        "--host",
        "127.0.0.1",
        "--port",
        str(slot.port),
        "--served-model-name",
        server.served_name,
        "--gpu-memory-utilization",
        f"{server.gpu_memory_utilization:g}",
        "--max-model-len",
        str(server.max_model_len),
        *server.extra_args,
    ]
    # Weights persist in the host's model-hub cache between runs instead of downloading again.
    hf_home = model_hub_home()
    hf_home.mkdir(parents=True, exist_ok=True)
    return ServiceDef(
        name=slot.name,
        role="model_server",
        argv=argv,
        port=slot.port,
        ready=HttpReady(f"{url}/health"),
        image="vllm",
        tier=TIER_BACKENDS,
        pool=slot.pool,
        env={"HF_HOME": str(hf_home)},
        mounts=[hf_home],
        ready_timeout_s=900,
        hint="vLLM downloads and loads the model at first start",
    )


def _exporter(what: str, source_flag: str, port: int, tier: int) -> ServiceDef:
    """The Prometheus exporter of nginx or Redis (Debian's binaries; upstream flag spelling)."""
    return ServiceDef(
        name=f"{what}-exporter",
        role="exporter",
        argv=[
            str(find_binary(f"prometheus-{what}-exporter")),
            source_flag,
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        port=port,
        ready=HttpReady(f"http://127.0.0.1:{port}/metrics"),
        image=f"{what}_exporter",
        tier=tier,
    )


def _http_front_def(
    slot: ModelServerSlot, port: int, run_dir: Path, files: dict[Path, str]
) -> ServiceDef:
    """The nginx HTTP fault front of one replica (harness/stack/http_front.py), no fault on."""
    from harness.stack import http_front

    faults_path = http_front.faults_file(run_dir / "config", slot.name)
    conf = run_dir / "config" / f"{http_front.service_name(slot.name)}.conf"
    files[faults_path] = http_front.render_faults(None)
    files[conf] = http_front.render_front(
        run_dir=run_dir,
        replica=slot.name,
        port=port,
        server_port=slot.port,
        faults_path=faults_path,
    )
    for sub in NGINX_TMP_DIRS:
        files[run_dir / "nginx-tmp" / sub / ".keep"] = ""
    return nginx_def(
        http_front.service_name(slot.name),
        "fault_front",
        conf,
        run_dir,
        port,
        f"http://127.0.0.1:{port}/fault-front-health",
        TIER_BACKENDS,
    )


# The temp folders an nginx run in the run folder writes (the config names each).
NGINX_TMP_DIRS = ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")


def nginx_def(
    name: str, role: str, conf: Path, run_dir: Path, port: int, ready_url: str, tier: int
) -> ServiceDef:
    """An nginx of the harness's own (a fault front, a rollout's split front) on `conf`."""
    return ServiceDef(
        name=name,
        role=role,
        argv=[
            str(find_binary("nginx")),
            "-p",
            str(run_dir),
            "-c",
            str(conf),
            "-e",
            str(run_dir / "logs" / f"{name}-error.log"),
        ],
        port=port,
        ready=HttpReady(ready_url),
        image="nginx",
        tier=tier,
        mounts=[run_dir],
    )


def _gpu_sim_exporter_def(spec: GpuSimExporterSpec, port: int) -> ServiceDef:
    """A fake GPU memory exporter (no GPU here); the gpu_memory fault sets its figures."""
    return ServiceDef(
        name=GPU_SIM_EXPORTER,
        role="exporter",
        argv=[
            sys.executable,
            "-m",
            "harness.faults.gpu_sim_exporter",
            "--port",
            str(port),
            "--total-bytes",
            str(spec.total_bytes),
            "--idle-ratio",
            f"{spec.idle_ratio:g}",
        ],
        port=port,
        ready=HttpReady(f"http://127.0.0.1:{port}/metrics"),
        image="gateway",
        tier=TIER_BACKENDS,
        env={"PYTHONPATH": str(PROJECT_ROOT)},
        mounts=[PROJECT_ROOT],
    )


def _alertmanager_def(
    spec: StackSpec, run_dir: Path, port: int, webhook_port: int, files: dict[Path, str]
) -> ServiceDef:
    conf = run_dir / "config" / "alertmanager.yml"
    files[conf] = render.to_yaml(
        render.alertmanager_config(
            spec.alertmanager, webhook_url=f"http://127.0.0.1:{webhook_port}/alerts"
        )
    )
    return ServiceDef(
        name="alertmanager",
        role="alertmanager",
        argv=[
            str(find_binary("prometheus-alertmanager")),
            "--config.file",
            str(conf),
            "--storage.path",
            str(run_dir / "alertmanager-data"),
            "--web.listen-address",
            f"127.0.0.1:{port}",
            "--cluster.listen-address=",
        ],
        port=port,
        ready=HttpReady(f"http://127.0.0.1:{port}/-/ready"),
        image="alertmanager",
        tier=TIER_BACKENDS,
        mounts=[run_dir],
    )


def build_plan(
    spec: StackSpec,
    run_dir: Path,
    *,
    api_key: str | None = None,
    shared: SharedServices | None = None,
    label: str | None = None,
) -> ServicePlan:
    """The stack's services. `shared`: another stack's services used instead of this one's own;
    `label`: a `stack` field on this stack's log lines and a `version` label on its scrape
    targets (stacks that share a log store or a Prometheus)."""
    run_dir = run_dir.resolve()
    shared = shared or SharedServices()
    pools = spec.pools()
    n_models = sum(p.replicas for p in pools.values())
    n_gw = spec.gateway.replicas
    # toxiproxy api, redis, redis proxy, model servers + their proxies, gateways,
    # nginx + status, two exporters, prometheus, alertmanager, webhook, log store + its syslog
    # input + its agent; HTTP fault fronts and the simulated GPU exporter (faults:).
    n_fronts = sum(pools[p].replicas for p in set(spec.faults.http_front))
    ports = _Ports(3 + 2 * n_models + n_gw + 2 + 2 + 3 + 3 + n_fronts + 1)

    toxi_port, redis_port = ports.take(), ports.take()
    redis_port = shared.redis_port or redis_port
    slots = [
        ModelServerSlot(f"{pool_name}-{i}", pool_name, ports.take())
        for pool_name, pool in pools.items()
        for i in range(pool.replicas)
    ]
    # An HTTP fault front sits between a replica's proxy and the server: it is what they dial.
    http_fronts = {s.name: ports.take() for s in slots if s.pool in spec.faults.http_front}
    server_port = {s.name: http_fronts.get(s.name, s.port) for s in slots}
    fronted = set(spec.toxiproxy.front)
    proxies = [
        ProxyDef(s.name, ports.take(), server_port[s.name]) for s in slots if s.pool in fronted
    ]
    redis_proxy = ProxyDef("redis", ports.take(), redis_port) if "redis" in fronted else None
    if redis_proxy:
        proxies.append(redis_proxy)
    proxy_port = {p.name: p.listen_port for p in proxies}

    def dial(slot: ModelServerSlot) -> str:
        return f"http://127.0.0.1:{proxy_port.get(slot.name, server_port[slot.name])}"

    gw_ports = [ports.take() for _ in range(n_gw)]
    nginx_port, nginx_status_port = ports.take(), ports.take()
    nginx_exp_port, redis_exp_port = ports.take(), ports.take()
    prom_port, am_port, webhook_port = ports.take(), ports.take(), ports.take()
    logs_port, syslog_port, agent_port = ports.take(), ports.take(), ports.take()
    if shared.logs_port and shared.syslog_port:
        logs_port, syslog_port = shared.logs_port, shared.syslog_port
    logs_url = f"http://127.0.0.1:{logs_port}"

    log_dir = run_dir / "logs"
    files: dict[Path, str] = {}
    services: list[ServiceDef] = []

    services.append(
        ServiceDef(
            name="toxiproxy",
            role="toxiproxy",
            argv=[
                str(find_binary("toxiproxy-server")),
                "-host",
                "127.0.0.1",
                "-port",
                str(toxi_port),
                "-proxy-metrics",
                "-runtime-metrics",
            ],
            port=toxi_port,
            ready=HttpReady(f"http://127.0.0.1:{toxi_port}/version"),
            image="toxiproxy",
            tier=TIER_BACKENDS,
        )
    )
    redis_def = ServiceDef(
        name="redis",
        role="redis",
        argv=[
            str(find_binary("redis-server")),
            "--bind",
            "127.0.0.1",
            "--port",
            str(redis_port),
            "--save",
            "",
            "--appendonly",
            "no",
            "--dir",
            str(run_dir),
            "--protected-mode",
            "yes",
        ],
        port=redis_port,
        ready=redis_ready(redis_port),
        image="redis",
        tier=TIER_BACKENDS,
        mounts=[run_dir],
    )
    if not shared.redis_port:
        services.append(redis_def)
    services += [model_server_def(s, pools[s.pool], run_dir) for s in slots]
    if not shared.logs_port:
        services.append(logs_service(logs_port, syslog_port, run_dir, TIER_BACKENDS))
    services.append(
        log_agent_service(
            agent_port, logs_port, run_dir, [s.name for s in slots], TIER_GATEWAYS, label
        )
    )
    for s in slots:
        if s.name in http_fronts:
            services.append(_http_front_def(s, http_fronts[s.name], run_dir, files))
    gpu_sim = spec.faults.gpu_sim_exporter
    gpu_port = ports.take()
    if gpu_sim is not None:
        services.append(_gpu_sim_exporter_def(gpu_sim, gpu_port))

    key = api_key or spec.gateway.settings.auth.api_keys[0]
    redis_dial = redis_proxy.listen_port if redis_proxy else redis_port
    served = {name: pool.server.served_name for name, pool in pools.items()}
    for i, gw_port in enumerate(gw_ports):
        cfg = GatewayRuntimeConfig(
            replica=f"gateway-{i}",
            primary_urls=tuple(dial(s) for s in slots if s.pool == "primary"),
            fallback_urls=tuple(dial(s) for s in slots if s.pool == "fallback"),
            redis_url=f"redis://127.0.0.1:{redis_dial}/0",
            primary_model=served["primary"],
            fallback_model=served["fallback"],
            settings=spec.gateway.settings,
            logs_url=jsonline_url(logs_url, label),
        )
        cfg_path = run_dir / "config" / f"gateway-{i}.json"
        files[cfg_path] = cfg.model_dump_json(indent=2)
        services.append(
            ServiceDef(
                name=f"gateway-{i}",
                role="gateway",
                argv=[
                    sys.executable,
                    "-m",
                    "uvicorn",
                    "gateway.app:create_app",
                    "--factory",
                    "--app-dir",
                    str(STACK_DIR),
                    "--host",
                    "127.0.0.1",
                    "--port",
                    str(gw_port),
                    "--no-access-log",
                    "--log-level",
                    "warning",
                    "--timeout-graceful-shutdown",
                    "3",
                    "--loop",
                    "uvloop",
                    "--http",
                    "httptools",
                ],
                port=gw_port,
                ready=HttpReady(f"http://127.0.0.1:{gw_port}/healthz"),
                image="gateway",
                tier=TIER_GATEWAYS,
                env={"GATEWAY_CONFIG": str(cfg_path), "PYTHONPATH": str(PROJECT_ROOT)},
                mounts=[run_dir, PROJECT_ROOT],
            )
        )
    if not shared.redis_port:
        services.append(
            _exporter(
                "redis",
                f"--redis.addr=redis://127.0.0.1:{redis_port}",
                redis_exp_port,
                TIER_GATEWAYS,
            )
        )

    nginx_conf = run_dir / "config" / "nginx.conf"
    files[nginx_conf] = render.render_nginx(
        run_dir=run_dir,
        port=nginx_port,
        status_port=nginx_status_port,
        gateway_ports=gw_ports,
        buffering=spec.nginx.buffering,
        syslog_port=syslog_port,
        stack_label=label,
    )
    for sub in NGINX_TMP_DIRS:
        files[run_dir / "nginx-tmp" / sub / ".keep"] = ""
    services.append(
        ServiceDef(
            name="nginx",
            role="nginx",
            argv=[
                str(find_binary("nginx")),
                "-p",
                str(run_dir),
                "-c",
                str(nginx_conf),
                "-e",
                str(log_dir / "nginx-error.log"),
            ],
            port=nginx_port,
            ready=HttpReady(f"http://127.0.0.1:{nginx_port}/nginx-health"),
            image="nginx",
            tier=TIER_EDGE,
            mounts=[run_dir],
        )
    )
    services.append(
        _exporter(
            "nginx",
            f"--nginx.scrape-uri=http://127.0.0.1:{nginx_status_port}/stub_status",
            nginx_exp_port,
            TIER_OBSERVERS,
        )
    )

    own_monitoring = shared.prometheus is None
    if own_monitoring:
        services.append(_alertmanager_def(spec, run_dir, am_port, webhook_port, files))
    version = {"version": label} if label else {}
    targets = [
        render.ScrapeTarget("gateway", f"127.0.0.1:{p}", {"replica": f"gateway-{i}"} | version)
        for i, p in enumerate(gw_ports)
    ]
    targets += [
        render.ScrapeTarget(
            f"model-{s.pool}",
            f"127.0.0.1:{s.port}",
            {"pool": s.pool, "replica": s.name} | version,
        )
        for s in slots
    ]
    own = [
        ("nginx", nginx_exp_port, True),
        ("redis", redis_exp_port, not shared.redis_port),
        ("toxiproxy", toxi_port, True),
        ("alertmanager", am_port, own_monitoring),
        ("prometheus", prom_port, own_monitoring),
        ("victoria-logs", logs_port, not shared.logs_port),
        ("vlagent", agent_port, True),
        ("gpu-sim", gpu_port, gpu_sim is not None),
    ]
    targets += [render.ScrapeTarget(j, f"127.0.0.1:{p}", version) for j, p, mine in own if mine]
    prometheus = None
    if own_monitoring:
        rules = run_dir / "config" / "alerts.yml"
        files[rules] = render.to_yaml(render.alert_rules(spec.prometheus))
        prometheus = render.PrometheusSetup(
            spec.prometheus, rules, f"127.0.0.1:{am_port}", run_dir / "config" / "prometheus.yml"
        )
        files[prometheus.config] = prometheus.render(targets)
        services.append(prometheus_def(prometheus.config, run_dir, prom_port, tier=TIER_BACKENDS))

    def url(p: int) -> str:
        return f"http://127.0.0.1:{p}"

    endpoints: dict[str, object] = {
        "nginx": url(nginx_port),
        "nginx_status": f"{url(nginx_status_port)}/stub_status",
        "prometheus": shared.prometheus or url(prom_port),
        "alertmanager": shared.alertmanager or url(am_port),
        "toxiproxy": url(toxi_port),
        "redis": f"redis://127.0.0.1:{redis_port}/0",
        "gateways": [url(p) for p in gw_ports],
        "model_servers": [url(s.port) for s in slots],
        "model_pools": {name: [url(s.port) for s in slots if s.pool == name] for name in pools},
        "proxies": {p.name: p.listen for p in proxies},
        "webhook": shared.webhook or f"{url(webhook_port)}/alerts",
        "logs": logs_url,
        "logs_syslog": f"127.0.0.1:{syslog_port}",
        # A shared Redis is exported by the stack that runs it.
        "exporters": {"nginx": url(nginx_exp_port)}
        | ({} if shared.redis_port else {"redis": url(redis_exp_port)}),
        "api_key": key,
        "run_dir": str(run_dir),
        "provider": spec.provider,
        "served_models": served,
    }
    return ServicePlan(
        run_dir=run_dir,
        services=services,
        proxies=proxies,
        files=files,
        webhook_port=webhook_port if own_monitoring else None,
        endpoints=endpoints,
        scrape_targets=targets,
        prometheus=prometheus,
        borrowed_ports=shared.ports(),
    )


def stack_names(spec: StackSpec) -> tuple[set[str], set[str]]:
    """(Toxiproxy proxy names, service names) the spec will have, without starting anything."""
    import tempfile

    with tempfile.TemporaryDirectory(prefix="harness-plan-") as tmp:
        plan = build_plan(spec, Path(tmp))
    return {p.name for p in plan.proxies}, {s.name for s in plan.services}
