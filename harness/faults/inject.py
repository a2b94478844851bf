"""Apply one fault to a running stack and undo it; undo is safe to call whatever happened."""

from __future__ import annotations

import time

from harness.errors import ConfigError, ConfigProblem
from harness.faults.toxiproxy import ToxiproxyClient, ToxiproxyError
from harness.spec.experiment import Fault, Kill, Latency, Pause, ProxyDown, unknown_targets
from harness.stack.provider import RunningStack, ServiceHandle


def check_targets(fault: Fault, proxies: set[str], services: set[str], source: str) -> None:
    """Every target names a Toxiproxy proxy (toxics) or a service (pause/kill) of the stack."""
    missing, what, known = unknown_targets(fault, proxies, services)
    if missing:
        raise ConfigError(source, [ConfigProblem(
            "fault.targets", f"unknown {', '.join(missing)}; {what}: {', '.join(sorted(known))}"
        )])  # fmt: skip


class FaultAction:
    """One fault on a running stack. `undo()` is safe at any time: before, during or after
    `apply()`, and again (a fault interrupted half-applied is still undone in full)."""

    def __init__(self, fault: Fault, stack: RunningStack) -> None:
        self.fault = fault
        self.stack = stack
        self._toxics: list[tuple[str, str]] = []

    def _toxiproxy(self) -> ToxiproxyClient:
        # Removing a latency toxic waits until the data it holds has drained (toxiproxy 2.12),
        # so undo may take a while: a longer bound than other control calls.
        return ToxiproxyClient(self.stack.endpoints.toxiproxy, timeout_s=60.0)

    def apply(self) -> None:
        fault = self.fault
        if isinstance(fault, ProxyDown | Latency):
            with self._toxiproxy() as toxi:
                for proxy in fault.targets:
                    if isinstance(fault, ProxyDown):
                        toxi.set_enabled(proxy, False)
                    else:
                        attrs: dict[str, float | int] = {
                            "latency": fault.latency_ms,
                            "jitter": fault.jitter_ms,
                        }
                        self._toxics.append((proxy, "harness_latency"))
                        toxi.add_toxic(proxy, "latency", attrs, name="harness_latency")
            return
        for svc in (self.stack.service(t) for t in fault.targets):
            if isinstance(fault, Pause):
                svc.pause()
            else:
                svc.kill()

    def undo(self) -> None:
        fault = self.fault
        if isinstance(fault, ProxyDown | Latency):
            with self._toxiproxy() as toxi:
                if isinstance(fault, ProxyDown):
                    for proxy in fault.targets:
                        toxi.set_enabled(proxy, True)
                for proxy, toxic in self._toxics:
                    try:
                        toxi.remove_toxic(proxy, toxic)
                    except ToxiproxyError:
                        # Already gone (never added), or stalled: reset() clears it for sure.
                        toxi.reset()
                self._toxics.clear()
            return
        services = [self.stack.service(t) for t in fault.targets]
        if isinstance(fault, Pause):
            for svc in services:
                svc.resume()
            return
        assert isinstance(fault, Kill)
        for svc in services:
            if not svc.alive():
                svc.restart()
        _wait_ready(services)


def _wait_ready(services: list[ServiceHandle], timeout_s: float = 60.0) -> None:
    """Restarted services answer their readiness check again (bounded)."""
    deadline = time.monotonic() + timeout_s
    for svc in services:
        while svc.definition.ready.probe() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
