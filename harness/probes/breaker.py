"""The circuit breaker's whole cycle, proven on every gateway replica (PRACTICES.md section 8).

With the primary pool's Toxiproxy proxies disabled, `failure_threshold` requests sent straight to
a replica each fail over (fallback, or degraded when there is no fallback pool) and then that
replica's `llm_circuit_breaker_state{pool="primary"}` reads open (2); the next request is passed
over at once with `X-Fallback-Reason: breaker_open`. With the proxies back, the breaker must stay
open for its recovery timeout, read half-open (1) after it, and close (0) on the next request,
which the primary answers. Waiting for the recovery timeout is the probe's cost: the metrics page
is polled, so no request is spent while waiting (the API key's rate limit is left alone).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass

import httpx

from harness import wire
from harness.clients.http import new_client
from harness.clients.poll import poll_until
from harness.clients.toxiproxy import ToxiproxyClient
from harness.data.progress import Progress
from harness.probes.gateway_metrics import read_counters
from harness.probes.http import auth_headers, chat_body, unique_prompt
from harness.verdict.checks import CheckResult

POOL = "primary"
STATES = {0: "closed", 1: "half-open", 2: "open"}


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int
    recovery_timeout_s: float
    # Beyond the recovery timeout, how long the breaker may take to read half-open and close.
    slack_s: float = 15.0


BREAKER_METRIC = "llm_circuit_breaker_state"  # reference name (harness.wire.METRICS)


def breaker_state(gateway: str, pool: str = POOL) -> int | None:
    """The replica's breaker state for `pool` from its /metrics (None: no such gauge, or the
    gateway contract marks it absent)."""
    name = wire.current().metric(BREAKER_METRIC)
    if name is None:
        return None
    value = read_counters([gateway], (name,)).get((name, (("pool", pool),)))
    return None if value is None else int(value)


def _while_open(gateways: Sequence[str], deadline: float) -> list[str]:
    """Poll /metrics (no request is spent) until no replica's breaker reads open, or the
    deadline; returns the replicas still open."""
    still = list(gateways)

    def open_ones() -> list[str]:  # only those still open are read again
        still[:] = [gw for gw in still if breaker_state(gw) == 2]
        return still

    return poll_until(open_ones, deadline - time.monotonic(), 0.25, until=lambda left: not left)


def wait_breakers_healed(
    gateways: Sequence[str], recovery_timeout_s: float, progress: Progress
) -> None:
    """Until no replica's primary breaker reads open (bounded by its recovery timeout): a fault
    that opened it must not leave the next step to the fallback pool alone."""
    deadline = time.monotonic() + recovery_timeout_s + 15.0
    try:
        open_now = [gw for gw in gateways if breaker_state(gw) == 2]
        if open_now:
            progress(f"  waiting for {len(open_now)} open breaker(s) to reach their recovery "
                     f"timeout (up to {recovery_timeout_s:g}s)")  # fmt: skip
            _while_open(open_now, deadline)
    except httpx.HTTPError:  # a replica that does not answer: nothing to wait for there
        return


def _ask(http: httpx.Client, gateway: str) -> httpx.Response:
    # Not cacheable (temperature > 0): every request reaches the pools.
    body = chat_body(unique_prompt("Say yes."), max_tokens=4, temperature=0.7)
    return http.post(f"{gateway}/v1/chat/completions", json=body)


def _state_name(state: int | None) -> str:
    return "absent" if state is None else STATES.get(state, str(state))


def _trip(http: httpx.Client, gateway: str, cfg: BreakerConfig, failures: list[str]) -> float:
    """Send the threshold's worth of failing requests, then one the breaker must pass over.
    Returns when the breaker was seen open (monotonic seconds)."""
    for i in range(cfg.failure_threshold):
        r = _ask(http, gateway)
        served = r.headers.get(wire.current().served_by)
        if served not in ("fallback", "degraded"):
            failures.append(
                f"{gateway}: request {i + 1} with the primary pool down was answered "
                f"{r.status_code} by {served!r}, want fallback or degraded"
            )
    opened = time.monotonic()
    state = breaker_state(gateway)
    if state != 2:
        failures.append(f"{gateway}: after {cfg.failure_threshold} failures the breaker reads "
                        f"{_state_name(state)}, want open")  # fmt: skip
    r = _ask(http, gateway)
    if r.headers.get("x-fallback-reason") != "breaker_open":
        failures.append(f"{gateway}: with the breaker open, X-Fallback-Reason is "
                        f"{r.headers.get('x-fallback-reason')!r}, want 'breaker_open'")  # fmt: skip
    return opened


def _recover(
    http: httpx.Client, gateway: str, opened: float, cfg: BreakerConfig, failures: list[str]
) -> float | None:
    """Wait (reading /metrics only) until the breaker reads half-open; one request must then be
    answered by the primary and close it. Returns seconds from open to half-open."""
    _while_open([gateway], opened + cfg.recovery_timeout_s + cfg.slack_s)
    state = breaker_state(gateway)
    half_open_after = time.monotonic() - opened
    if state != 1:
        failures.append(f"{gateway}: {half_open_after:.1f}s after opening (recovery timeout "
                        f"{cfg.recovery_timeout_s:g}s) the breaker reads {_state_name(state)}, "
                        "want half-open")  # fmt: skip
        return None
    if half_open_after < cfg.recovery_timeout_s - 1.0:
        failures.append(f"{gateway}: half-open {half_open_after:.1f}s after opening, before its "
                        f"recovery timeout of {cfg.recovery_timeout_s:g}s")  # fmt: skip
    r = _ask(http, gateway)
    if r.status_code != 200 or r.headers.get(wire.current().served_by) != POOL:
        failures.append(f"{gateway}: the half-open probe request was answered {r.status_code} by "
                        f"{r.headers.get(wire.current().served_by)!r}, want 200 by the "
                        "primary")  # fmt: skip
    state = breaker_state(gateway)
    if state != 0:
        failures.append(f"{gateway}: after a successful probe the breaker reads "
                        f"{_state_name(state)}, want closed")  # fmt: skip
    return half_open_after


def probe_breaker(
    gateways: Sequence[str],
    api_key: str,
    toxiproxy: str,
    proxies: Sequence[str],
    cfg: BreakerConfig,
    progress: Progress = lambda _: None,
) -> CheckResult:
    t0 = time.monotonic()
    name, category = "circuit breaker opens and recovers", "resilience"
    if not proxies:
        return CheckResult(name=name, category=category, outcome="skipped",
                           reasons=["the primary pool has no Toxiproxy proxy"])  # fmt: skip
    failures: list[str] = []
    closed = {gw: breaker_state(gw) for gw in gateways}
    not_closed = {gw: _state_name(s) for gw, s in closed.items() if s != 0}
    if not_closed:
        return CheckResult(
            name=name, category=category, outcome="fail",
            reasons=[f"the breaker is not closed before the probe: {not_closed}"],
        )  # fmt: skip
    opened: dict[str, float] = {}
    with new_client(timeout=60.0, headers=auth_headers(api_key)) as http:
        with ToxiproxyClient(toxiproxy) as toxi:
            try:
                for proxy in proxies:
                    toxi.set_enabled(proxy, False)
                for gw in gateways:
                    opened[gw] = _trip(http, gw, cfg, failures)
            finally:
                for proxy in proxies:
                    toxi.set_enabled(proxy, True)
        progress(f"  breaker open on {len(gateways)} replica(s); waiting out its recovery timeout "
                 f"({cfg.recovery_timeout_s:g}s)")  # fmt: skip
        recovered = {gw: _recover(http, gw, opened[gw], cfg, failures) for gw in gateways}
    waits = [s for s in recovered.values() if s is not None]
    measured: dict[str, float | int | str | None] = {
        "replicas": len(gateways),
        "failure_threshold": cfg.failure_threshold,
        "recovery_timeout_s": cfg.recovery_timeout_s,
        "half_open_after_s_max": round(max(waits), 1) if waits else None,
    }
    check = CheckResult.from_reasons(
        name, category, failures, measured,
        f"open after {cfg.failure_threshold} failures on each of {len(gateways)} replicas, "
        f"breaker_open skips the pool, half-open after "
        f"{measured['half_open_after_s_max']}s (recovery {cfg.recovery_timeout_s:g}s), "
        "closed by a primary answer",
    )  # fmt: skip
    check.duration_s = round(time.monotonic() - t0, 3)
    return check
