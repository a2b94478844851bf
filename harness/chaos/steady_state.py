"""The steady state an experiment starts from, read from live signals before its load begins:
every gateway replica's circuit breakers not open, and no alert firing in Prometheus.

An earlier fault can leave a breaker open for its recovery timeout (60 s by PRACTICES.md) or an
alert firing; an experiment started then measures the last one's aftermath. The harness waits for
the signals to settle, bounded by the *policy's* recovery timeout plus a margin (never the
candidate's: a breaker that stays open ten minutes must not make the gate wait ten minutes), and
hands what it saw to the verdict. A signal the stack does not have (no breaker gauge, no
Prometheus) is left out of the hypothesis and named, not assumed.
"""

from __future__ import annotations

import time

import httpx

from harness import wire
from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient, PrometheusError
from harness.data.progress import Progress
from harness.probes.breaker import BREAKER_METRIC
from harness.probes.gateway_metrics import read_counters
from harness.stack import RunningStack
from harness.verdict.steady_state import SteadySignals, SteadyStateEvidence

# Beyond the policy's recovery timeout: a scrape, a half-open probe and a slow machine.
MARGIN_S = 15.0
OPEN = 2  # the breaker gauge's value for open (0 closed, 1 half-open)


def _open_breakers(gateways: list[str]) -> list[str] | None:
    name = wire.current().metric(BREAKER_METRIC)
    if name is None or not gateways:
        return None
    out = []
    for gw in gateways:
        for (_, labels), value in read_counters([gw], (name,)).items():
            if int(value) == OPEN:
                out.append(f"{gw} {' '.join(f'{k}={v}' for k, v in labels)}".rstrip())
    return out


def read_signals(stack: RunningStack) -> SteadySignals:
    signals = SteadySignals()
    gateways = list(stack.endpoints.gateways)
    try:
        signals.open_breakers = _open_breakers(gateways)
    except httpx.HTTPError as exc:
        signals.open_breakers = [f"a gateway's /metrics did not answer: {exc}"]
    if signals.open_breakers is None:
        signals.unread.append(
            "breakers: no gateway replicas known"
            if not gateways
            else "breakers: the gateway contract has no breaker gauge"
        )
    prometheus = stack.endpoints.prometheus
    if not prometheus:
        signals.unread.append("alerts: the stack has no Prometheus")
        return signals
    try:
        with PrometheusClient(prometheus, headers=stack.prometheus_headers()) as prom:
            alerts = prom.alerts()
        names = sorted({a.name for a in alerts if a.state == "firing"})
        signals.firing_alerts = names
    except PrometheusError as exc:
        signals.firing_alerts = [f"Prometheus did not answer: {exc}"]
    return signals


def await_steady_state(
    stack: RunningStack, recovery_timeout_s: float, progress: Progress
) -> SteadyStateEvidence:
    """Read the signals until they are steady or the bound (the policy's recovery timeout plus
    MARGIN_S) has passed; the last reading and how long it took."""
    bound = recovery_timeout_s + MARGIN_S
    t0 = time.monotonic()
    first = read_signals(stack)
    last = first
    if not first.steady:
        progress(f"  waiting for the steady state (up to {bound:g}s): " + "; ".join(first.off()))

        def reading() -> SteadySignals:
            nonlocal last
            last = read_signals(stack)
            return last

        poll_until(reading, bound, 1.0, until=lambda s: s.steady)
    return SteadyStateEvidence(last, time.monotonic() - t0, bound)
