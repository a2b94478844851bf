"""What a provider hands back: a running stack with named endpoints and per-service handles.

The caller owns the interface (this module); `local.py` (processes) and `docker.py` (containers)
realise it. Both run the same `ServicePlan` (see plan.py): only the launcher differs.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

from pydantic import BaseModel, ConfigDict

from harness.wire import Wire, family

if TYPE_CHECKING:
    from harness.clients.webhook import AlertLog
    from harness.spec.stack import StackSpec
    from harness.stack.plan import ServiceDef
    from harness.stack.render import PrometheusSetup, ScrapeTarget


class Endpoints(BaseModel):
    """Every address of a running stack; written as JSON to the ready file of `harness up`."""

    model_config = ConfigDict(extra="ignore")  # lenient on stored output

    nginx: str
    prometheus: str
    alertmanager: str
    toxiproxy: str
    redis: str
    gateways: list[str]
    model_servers: list[str]
    model_pools: dict[str, list[str]]
    # Toxiproxy proxy name -> "127.0.0.1:PORT" the gateways dial instead of the real service.
    proxies: dict[str, str]
    webhook: str
    exporters: dict[str, str]
    api_key: str
    run_dir: str
    provider: str = "local"
    served_models: dict[str, str] = {}
    # The log store (VictoriaLogs): LogsQL at {logs}/select/logsql/query. None in older files.
    logs: str | None = None
    # Its syslog input ("127.0.0.1:PORT", UDP): nginx's access log.
    logs_syslog: str | None = None
    # nginx's stub_status (its in-flight requests: "Writing"); None where the stack has none.
    nginx_status: str | None = None

    def write(self, path: Path) -> None:
        # Write then rename, so a watcher never reads a half-written ready file.
        tmp = path.with_suffix(path.suffix + ".tmp")
        tmp.write_text(json.dumps(self.model_dump(), indent=2) + "\n")
        tmp.replace(path)

    @classmethod
    def read(cls, path: Path) -> Endpoints:
        return cls.model_validate_json(path.read_text())


class ServiceHandle(Protocol):
    """One running service, as a process or a container; what faults act on."""

    name: str
    definition: ServiceDef

    @property
    def pid(self) -> int | None: ...

    def alive(self) -> bool: ...
    def exit_code(self) -> int | None: ...
    def pause(self) -> None: ...
    def resume(self) -> None: ...
    def kill(self) -> None: ...
    def reload(self) -> None:
        """SIGHUP to the service's main process: re-read its configuration (nginx, gateway)."""

    def stop(self, timeout_s: float = 5.0) -> None: ...
    def restart(self) -> None: ...
    def log_tail(self, lines: int = 30) -> str: ...


class Launcher(Protocol):
    """Starts one service from its definition (process or container)."""

    kind: str

    def launch(self, definition: ServiceDef, log_path: Path) -> ServiceHandle: ...

    def close(self) -> None: ...


@dataclass
class RunningStack:
    spec: StackSpec
    endpoints: Endpoints
    run_dir: Path
    services: dict[str, ServiceHandle] = field(default_factory=dict)
    alerts: AlertLog | None = None  # webhook (own stacks) or Alertmanager's API (external)
    startup_seconds: float = 0.0
    # What a Prometheus scrapes of this stack; the stack's own Prometheus (None: it has none).
    scrape_targets: list[ScrapeTarget] = field(default_factory=list)
    prometheus: PrometheusSetup | None = None

    def lacks(self, *needs: str) -> str | None:
        """Why this stack cannot serve a check that needs `needs` (None: it can). A stack the
        harness started has everything; an external one has what its spec names."""
        ext = self.spec.external
        if ext is None:
            return None
        contract = ext.gateway
        why = {
            "gateway": None if contract else "no gateway in front of the model servers",
            "gateways": None if ext.gateways else "no per-replica gateway URLs in the stack spec",
            "prometheus": None if ext.prometheus else "no Prometheus in the stack spec",
            "toxiproxy": None if ext.toxiproxy else "no Toxiproxy in the stack spec",
            "primary proxies": "no Toxiproxy in the stack spec"
            if not ext.toxiproxy
            else None
            if ext.toxiproxy.proxies.get("primary")
            else "no Toxiproxy proxies named for the primary pool",
            "alerts": None if self.alerts else "no Alertmanager in the stack spec",
            "processes": "no process handles (the harness did not start this stack)",
            "fault parts": "no HTTP fault fronts or simulated GPU exporter (they run only in "
            "stacks the harness starts)",
            "rules file": "the deployed alert rules file is not at hand (the harness did not "
            "start this stack)",
            "declared settings": None
            if "gateway" in self.spec.model_fields_set
            else "the stack spec declares no gateway settings to judge",
        }
        for item in ("served_by", "cache", "request_id"):
            why[item] = (
                "no gateway"
                if contract is None
                else None
                if getattr(contract, item)
                else f"the gateway contract marks `{item}` absent"
            )
        names = ext.wire()
        reasons = [r for n in needs if (r := _lacks_item(n, names, contract is None, why))]
        return "; ".join(dict.fromkeys(reasons)) or None

    def prometheus_headers(self) -> dict[str, str]:
        """Credentials for the stack's Prometheus (external stacks may need them), read now."""
        ext = self.spec.external
        return ext.prometheus.headers() if ext is not None and ext.prometheus else {}

    def service(self, name: str) -> ServiceHandle:
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"no service {name!r}; services: {', '.join(self.services)}") from None


def _lacks_item(need: str, names: Wire, no_gateway: bool, why: dict[str, str | None]) -> str | None:
    """Why `need` is unmet: a named requirement, `metric:NAME` (a reference metric name) or
    `error:ITEM` (an error of harness.wire.ERRORS), both per the gateway contract."""
    kind, _, item = need.partition(":")
    if kind not in ("metric", "error") or not item:
        return why[need]
    if no_gateway:
        return "no gateway"
    if kind == "metric":
        absent = names.metric(item) is None
        item = family(item) or item
    else:
        absent = names.error(item) is None
    return f"the gateway contract marks {kind} `{item}` absent" if absent else None
