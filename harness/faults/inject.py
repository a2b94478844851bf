"""Apply one fault to a running stack and undo it; undo is safe to call whatever happened.

A fault ends when its window says. Toxiproxy (2.12) removes a toxic only once the data it holds
has drained, and a latency toxic whose clients gave up can hold its proxy's API for tens of
seconds; so the toxics that hold data are undone by deleting the proxy and creating it again
(same name, address and upstream): instant, and it cuts the connections the fault was slowing.
"""

from __future__ import annotations

from typing import Any

from harness.clients.poll import poll_until
from harness.clients.toxiproxy import ToxiproxyClient, ToxiproxyError
from harness.errors import ConfigError, ConfigProblem
from harness.faults.burst import Burst, BurstAnswer, plan_burst
from harness.faults.gpu_sim_exporter import set_used_ratio
from harness.spec.experiment import (
    AnyFault,
    Bandwidth,
    GpuMemory,
    HttpError,
    Kill,
    Latency,
    Pause,
    ProxyDown,
    Slicer,
    StreamStall,
    Timeout,
    ToxicFault,
    TrafficBurst,
    unknown_targets,
)
from harness.stack import http_front
from harness.stack.provider import RunningStack, ServiceHandle

# Toxics that hold data back: removing them waits for it to drain, so undo recreates the proxy.
_HOLDS_DATA = (Latency, Bandwidth, Slicer, Timeout)
TOXIC_NAME = "harness_fault"
# Every Toxiproxy call of a fault is bounded: a stalled API must not stretch the fault's window.
CONTROL_TIMEOUT_S = 5.0


def check_targets(fault: AnyFault, proxies: set[str], services: set[str], source: str) -> None:
    """Every target names what the fault acts on: a Toxiproxy proxy, a replica with an HTTP
    fault front, or a service."""
    missing, what, known = unknown_targets(fault, proxies, services)
    if missing:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "fault.targets",
                    f"unknown {', '.join(missing)}; {what}: {', '.join(sorted(known))}",
                )
            ],
        )


class FaultAction:
    """One fault on a running stack. `undo()` is safe at any time: before, during or after
    `apply()`, and again (a fault interrupted half-applied is still undone in full)."""

    def __init__(self, fault: AnyFault, stack: RunningStack) -> None:
        self.fault = fault
        self.stack = stack
        # Proxies a toxic was (or may have been) added to, with their definitions.
        self._toxics: dict[str, dict[str, Any]] = {}
        self._switched: list[str] = []
        self._burst: Burst | None = None
        # A traffic burst's answers, once it has ended.
        self.burst_answers: list[BurstAnswer] = []

    def _toxiproxy(self) -> ToxiproxyClient:
        return ToxiproxyClient(self.stack.endpoints.toxiproxy, timeout_s=CONTROL_TIMEOUT_S)

    def apply(self) -> None:
        fault = self.fault
        if isinstance(fault, ProxyDown):
            with self._toxiproxy() as toxi:
                for proxy in fault.targets:
                    toxi.set_enabled(proxy, False)
        elif isinstance(fault, ToxicFault):
            with self._toxiproxy() as toxi:
                for proxy in fault.targets:
                    self._toxics[proxy] = toxi.proxy(proxy)
                    toxi.add_toxic(
                        proxy,
                        fault.kind,
                        dict(fault.attributes()),
                        name=TOXIC_NAME,
                        stream=fault.stream,
                        toxicity=fault.toxicity,
                    )
        elif isinstance(fault, HttpError | StreamStall):
            for replica in fault.targets:
                self._switched.append(replica)
                self._switch(replica, fault)
        elif isinstance(fault, GpuMemory):
            for name in fault.targets:
                set_used_ratio(self._url(name), fault.used_ratio)
        elif isinstance(fault, TrafficBurst):
            self._burst = Burst(
                plan_burst(fault, self.stack, "fault"), fault.rate_rps, fault.max_requests
            )
            self._burst.start()
        else:
            for svc in (self.stack.service(t) for t in fault.targets):
                if isinstance(fault, Pause):
                    svc.pause()
                else:
                    svc.kill()

    def _switch(self, replica: str, fault: HttpError | StreamStall | None) -> None:
        svc = self.stack.service(http_front.service_name(replica))
        http_front.switch(self.stack.run_dir / "config", replica, svc, fault)

    def _url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.stack.service(service).definition.port}"

    def undo(self) -> None:
        fault = self.fault
        if isinstance(fault, ProxyDown):
            with self._toxiproxy() as toxi:
                for proxy in fault.targets:
                    toxi.set_enabled(proxy, True)
        elif isinstance(fault, ToxicFault):
            with self._toxiproxy() as toxi:
                for proxy, definition in list(self._toxics.items()):
                    _remove_toxic(toxi, proxy, definition, recreate=isinstance(fault, _HOLDS_DATA))
                    del self._toxics[proxy]
        elif isinstance(fault, HttpError | StreamStall):
            while self._switched:
                self._switch(self._switched[-1], None)
                self._switched.pop()
        elif isinstance(fault, GpuMemory):
            gpu = self.stack.spec.faults.gpu_sim_exporter
            for name in fault.targets:
                set_used_ratio(self._url(name), gpu.idle_ratio if gpu is not None else 0.0)
        elif isinstance(fault, TrafficBurst):
            burst, self._burst = self._burst, None
            if burst is not None:
                self.burst_answers = burst.stop()
        elif isinstance(fault, Pause):
            for svc in (self.stack.service(t) for t in fault.targets):
                svc.resume()
        else:
            assert isinstance(fault, Kill)
            services = [self.stack.service(t) for t in fault.targets]
            for svc in services:
                if not svc.alive():
                    svc.restart()
            _wait_ready(services)


def _remove_toxic(
    toxi: ToxiproxyClient, proxy: str, definition: dict[str, Any], *, recreate: bool
) -> None:
    """The proxy without the fault's toxic. Recreated (cutting its connections) when the toxic
    holds data or removing it fails; a toxic that was never added is no error."""
    if not recreate:
        try:
            toxi.remove_toxic(proxy, TOXIC_NAME)
            return
        except ToxiproxyError as exc:
            if "404" in str(exc):
                return
    toxi.delete_proxy(proxy)
    toxi.create_proxy(proxy, definition["listen"], definition["upstream"])
    if not definition.get("enabled", True):
        toxi.set_enabled(proxy, False)


def _wait_ready(services: list[ServiceHandle], timeout_s: float = 60.0) -> None:
    """Restarted services answer their readiness check again (bounded)."""
    poll_until(lambda: all(s.definition.ready.probe() is None for s in services), timeout_s, 0.2)
