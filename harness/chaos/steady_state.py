"""The steady state an experiment starts from, read from live signals before its load begins:
every gateway replica's circuit breakers not open, no alert firing in Prometheus, and a fresh
request through the front door answered in full by the primary pool.

An earlier fault can leave a breaker open for its recovery timeout (60 s by PRACTICES.md) or an
alert firing; an experiment started then measures the last one's aftermath. The harness waits for
the signals to settle, bounded by the *policy's* recovery timeout plus a margin (never the
candidate's: a breaker that stays open ten minutes must not make the gate wait ten minutes), and
hands what it saw to the verdict. A signal the stack does not have (no breaker gauge, no
Prometheus, no served-by header) is left out of the hypothesis and named, not assumed.

The request is sent only once the other signals are steady (they are free; it spends the
candidate's rate budget and an answer from an open breaker says nothing new), at most every
REQUEST_EVERY_S while waiting.
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
from harness.probes.http import chat_body, stream_chat, unique_prompt
from harness.stack import RunningStack
from harness.stack.target import from_endpoints
from harness.verdict.steady_state import FrontDoorAnswer, SteadySignals, SteadyStateEvidence

# Beyond the policy's recovery timeout: a scrape, a half-open probe and a slow machine.
MARGIN_S = 15.0
OPEN = 2  # the breaker gauge's value for open (0 closed, 1 half-open)
REQUEST_EVERY_S = 3.0
# Long enough for a CPU model server's first token on a busy machine, short of a hang.
REQUEST_TIMEOUT_S = 30.0


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


def ask_front_door(stack: RunningStack) -> FrontDoorAnswer:
    """One streamed request no cache can answer, as the experiment's load sends them."""
    target = from_endpoints(stack.endpoints)
    body = chat_body(unique_prompt("Say hello in one word."), max_tokens=4)
    if target.model:
        body["model"] = target.model
    try:
        r = stream_chat(target.url, target.api_key, body, timeout_s=REQUEST_TIMEOUT_S)
    except httpx.HTTPError as exc:
        return FrontDoorAnswer(status=None, error=f"{type(exc).__name__}: {exc}")
    return FrontDoorAnswer(
        status=r.status,
        served_by=r.headers.get(wire.current().served_by.lower()),
        ttft_s=r.ttft_s,
        error=r.stream_error or (r.error_body[:200] or None if r.status != 200 else None),
        chunks=r.content_chunks,
    )


def read_free_signals(stack: RunningStack) -> SteadySignals:
    """The signals that cost the candidate nothing: breaker gauges and firing alerts."""
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
        signals.firing_alerts = sorted({a.name for a in alerts if a.state == "firing"})
    except PrometheusError as exc:
        signals.firing_alerts = [f"Prometheus did not answer: {exc}"]
    return signals


def with_answer(stack: RunningStack, signals: SteadySignals) -> SteadySignals:
    signals.answer = ask_front_door(stack)
    if signals.answer.status == 200 and signals.answer.served_by is None:
        signals.unread.append(f"served by: the answer has no {wire.current().served_by} header")
    return signals


def await_steady_state(
    stack: RunningStack, recovery_timeout_s: float, progress: Progress
) -> SteadyStateEvidence:
    """Read the signals until they are steady or the bound (the policy's recovery timeout plus
    MARGIN_S) has passed; the last reading and how long it took. The front door is asked only
    when the free signals are steady, at most every REQUEST_EVERY_S."""
    bound = recovery_timeout_s + MARGIN_S
    t0 = time.monotonic()
    asked = -REQUEST_EVERY_S

    def reading() -> SteadySignals:
        nonlocal asked
        signals = read_free_signals(stack)
        if not signals.steady:
            return signals
        time.sleep(max(0.0, asked + REQUEST_EVERY_S - time.monotonic()))
        asked = time.monotonic()
        return with_answer(stack, signals)

    last = reading()
    if not last.steady:
        progress(f"  waiting for the steady state (up to {bound:g}s): " + "; ".join(last.off()))
        last = poll_until(reading, bound, 1.0, until=lambda s: s.steady)  # the last reading
    return SteadyStateEvidence(last, time.monotonic() - t0, bound)
