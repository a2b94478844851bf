"""The stack as a list of service definitions: command lines, ports, readiness, config files.

Providers run the same plan: the local provider as child processes, the docker provider as
containers on the host network (so the same 127.0.0.1 ports and rendered configs work unchanged).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from harness.stack.readiness import ReadyCheck
from harness.stack.render import PrometheusSetup, ScrapeTarget


@dataclass
class ServiceDef:
    """One service to start. `image` names an entry of the image map (container provider)."""

    name: str  # "primary-0", "gateway-1", "nginx", ...
    role: str  # "model_server", "gateway", "nginx", "redis", "toxiproxy", ...
    argv: list[str]
    port: int
    ready: ReadyCheck
    image: str
    tier: int  # services of one tier start together; tiers start in order
    env: dict[str, str] = field(default_factory=dict)
    pool: str | None = None
    ready_timeout_s: float = 30.0
    # Host paths the service reads or writes (bind-mounted by the container provider).
    mounts: list[Path] = field(default_factory=list)
    hint: str = ""
    # Sent once after the service is ready and before the stack is declared ready (for example
    # one token from a model server, so the first real request does not pay for a cold start).
    warmup: Warmup | None = None


@dataclass(frozen=True)
class Warmup:
    url: str
    body: dict[str, object]
    timeout_s: float = 60.0


@dataclass(frozen=True)
class ProxyDef:
    """A Toxiproxy proxy: clients dial `listen_port`, it forwards to `upstream_port`."""

    name: str  # "primary-0", "fallback-0", "redis"
    listen_port: int
    upstream_port: int

    @property
    def listen(self) -> str:
        return f"127.0.0.1:{self.listen_port}"

    @property
    def upstream(self) -> str:
        return f"127.0.0.1:{self.upstream_port}"


@dataclass
class ServicePlan:
    """Everything a provider needs to realise a stack spec, decided before anything starts."""

    run_dir: Path
    services: list[ServiceDef]
    proxies: list[ProxyDef]
    files: dict[Path, str]
    # The alert webhook's port; None where the stack's alerts go to another stack's Alertmanager.
    webhook_port: int | None
    endpoints: dict[str, object]
    # What a Prometheus should scrape of this stack (its own, or the one it shares).
    scrape_targets: list[ScrapeTarget] = field(default_factory=list)
    # The stack's own Prometheus (None: it shares another stack's).
    prometheus: PrometheusSetup | None = None
    # Another stack's ports this one dials (shared services): not this stack's to own.
    borrowed_ports: frozenset[int] = frozenset()

    def tiers(self) -> list[list[ServiceDef]]:
        by_tier: dict[int, list[ServiceDef]] = {}
        for s in self.services:
            by_tier.setdefault(s.tier, []).append(s)
        return [by_tier[t] for t in sorted(by_tier)]

    def write_files(self) -> None:
        for path, text in self.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
