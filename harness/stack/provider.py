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

if TYPE_CHECKING:
    from harness.observe.webhook import AlertReceiver
    from harness.spec.stack import StackSpec
    from harness.stack.plan import ServiceDef


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
    alerts: AlertReceiver | None = None
    startup_seconds: float = 0.0

    def service(self, name: str) -> ServiceHandle:
        try:
            return self.services[name]
        except KeyError:
            raise KeyError(f"no service {name!r}; services: {', '.join(self.services)}") from None
