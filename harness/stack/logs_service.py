"""The stack's log store: VictoriaLogs on 127.0.0.1, one per run, its data in the run folder.

The gateways push their JSON lines to its `/insert/jsonline` endpoint; nginx sends its access
log as `@cee:` JSON over syslog (UDP), which VictoriaLogs parses into fields; its agent, vlagent,
ships the model servers' own log files (text lines, no request id: llama-server's per-task
timings, the simulator's start and stop).
"""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import urlencode

from harness.stack.plan import ServiceDef
from harness.stack.readiness import HttpReady
from harness.tools import find_binary

SERVICE = "victoria-logs"
AGENT = "vlagent"
# Fields that name a log stream: which layer wrote the line and which replica.
STREAM_FIELDS = ("layer", "replica")


def jsonline_url(base_url: str, stack: str | None = None) -> str:
    """Where a shipper posts newline-delimited JSON, `_time` in the line, `msg` its message;
    `stack` is added to each line as a field (stacks that share one store)."""
    args = {"_stream_fields": ",".join(STREAM_FIELDS), "_msg_field": "msg"}
    if stack:
        args["extra_fields"] = f"stack={stack}"
    return f"{base_url}/insert/jsonline?{urlencode(args)}"


def logs_service(port: int, syslog_port: int, run_dir: Path, tier: int) -> ServiceDef:
    argv = [
        str(find_binary("victoria-logs")),
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-storageDataPath={run_dir / 'victoria-logs-data'}",
        "-retentionPeriod=7d",
        f"-syslog.listenAddr.udp=127.0.0.1:{syslog_port}",
        # nginx stamps syslog lines to the second; the arrival time orders a request's lines.
        "-syslog.useLocalTimestamp.udp",
        '-syslog.extraFields.udp={"layer":"nginx"}',
        '-syslog.streamFields.udp=["layer","app_name"]',
        "-loggerLevel=WARN",
    ]
    return ServiceDef(
        name=SERVICE,
        role="logs",
        argv=argv,
        port=port,
        ready=HttpReady(f"http://127.0.0.1:{port}/health", body_contains="OK"),
        image="victoria_logs",
        tier=tier,
        mounts=[run_dir],
        hint="victoria-logs is built by `make install` into .tools/bin",
    )


def log_agent_service(
    port: int,
    store_port: int,
    run_dir: Path,
    model_servers: list[str],
    tier: int,
    stack: str | None = None,
) -> ServiceDef:
    """vlagent following each model server's log file (the launchers write them) into the store;
    `stack` is added to each line as a field (stacks that share one store)."""
    logs = run_dir / "logs"
    argv = [
        str(find_binary("vlagent")),
        f"-httpListenAddr=127.0.0.1:{port}",
        f"-tmpDataPath={run_dir / 'vlagent-data'}",
        f"-remoteWrite.url=http://127.0.0.1:{store_port}/insert/native",
        "-remoteWrite.flushInterval=200ms",
        "-fileCollector.refreshInterval=1s",
        "-loggerLevel=WARN",
    ]
    for name in model_servers:  # the n-th extraFields belongs to the n-th glob
        fields = json.dumps(
            {"layer": "model", "replica": name} | ({"stack": stack} if stack else {})
        )
        argv += [f"-fileCollector.glob={logs / name}.log", f"-fileCollector.extraFields={fields}"]
    return ServiceDef(
        name=AGENT,
        role="logs",
        argv=argv,
        port=port,
        ready=HttpReady(f"http://127.0.0.1:{port}/health", body_contains="OK"),
        image="vlagent",
        tier=tier,
        mounts=[run_dir],
        hint="vlagent is built by `make install` into .tools/bin",
    )
