"""Apply one fault to a running stack and undo it; undo is safe to call whatever happened."""

from __future__ import annotations

import time
from collections.abc import Callable

from harness.errors import ConfigError, ConfigProblem
from harness.faults.toxiproxy import ToxiproxyClient, ToxiproxyError
from harness.spec.experiment import Fault, Kill, Latency, Pause, ProxyDown
from harness.stack.provider import RunningStack, ServiceHandle

Undo = Callable[[], None]


def check_targets(fault: Fault, proxies: set[str], services: set[str], source: str) -> None:
    """Every target names a Toxiproxy proxy (toxics) or a service (pause/kill) of the stack."""
    if isinstance(fault, ProxyDown | Latency):
        known, what = proxies, "Toxiproxy proxies"
    else:
        known, what = services, "services"
    missing = [t for t in fault.targets if t not in known]
    if missing:
        raise ConfigError(source, [ConfigProblem(
            "fault.targets", f"unknown {', '.join(missing)}; {what}: {', '.join(sorted(known))}"
        )])  # fmt: skip


def apply_fault(fault: Fault, stack: RunningStack) -> Undo:
    """Inject the fault now; return the function that undoes it."""
    if isinstance(fault, ProxyDown | Latency):
        # Removing a latency toxic waits until the data it holds has drained (toxiproxy 2.12),
        # so undo may take a while: a longer bound than other control calls.
        toxi = ToxiproxyClient(stack.endpoints.toxiproxy, timeout_s=60.0)
        names: list[tuple[str, str]] = []
        for proxy in fault.targets:
            if isinstance(fault, ProxyDown):
                toxi.set_enabled(proxy, False)
            else:
                names.append((proxy, toxi.add_toxic(
                    proxy, "latency", {"latency": fault.latency_ms, "jitter": fault.jitter_ms},
                    name="harness_latency",
                )))  # fmt: skip

        def undo_toxiproxy() -> None:
            try:
                for proxy in fault.targets:
                    if isinstance(fault, ProxyDown):
                        toxi.set_enabled(proxy, True)
                for proxy, toxic in names:
                    try:
                        toxi.remove_toxic(proxy, toxic)
                    except ToxiproxyError:
                        # Removing a toxic can stall while streams drain; reset() also clears it.
                        time.sleep(1.0)
                        toxi.reset()
            finally:
                toxi.close()

        return undo_toxiproxy

    services = [stack.service(t) for t in fault.targets]
    if isinstance(fault, Pause):
        for svc in services:
            svc.pause()

        def undo_pause() -> None:
            for svc in services:
                svc.resume()

        return undo_pause
    assert isinstance(fault, Kill)
    for svc in services:
        svc.kill()

    def undo_kill() -> None:
        for svc in services:
            if not svc.alive():
                svc.restart()
        _wait_ready(services)

    return undo_kill


def _wait_ready(services: list[ServiceHandle], timeout_s: float = 60.0) -> None:
    """Restarted services answer their readiness check again (bounded)."""
    deadline = time.monotonic() + timeout_s
    for svc in services:
        while svc.definition.ready.probe() is not None and time.monotonic() < deadline:
            time.sleep(0.2)
