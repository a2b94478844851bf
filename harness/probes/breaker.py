"""The circuit breaker's whole cycle, proven on every gateway replica (PRACTICES.md section 8).

With the primary pool's Toxiproxy proxies disabled, `failure_threshold` requests sent straight to
a replica each fail over (fallback, or degraded when there is no fallback pool) and then that
replica's `llm_circuit_breaker_state{pool="primary"}` reads open (2); the next request is passed
over at once with `X-Fallback-Reason: breaker_open`. With the proxies back, the breaker must stay
open for its recovery timeout, read half-open (1) after it, and close (0) on the next request,
which the primary answers. Waiting for the recovery timeout is the probe's cost: the metrics page
is polled, so no request is spent while waiting (the API key's rate limit is left alone), and the
stack is idle then, so a caller may hand over work to run beside the wait (`while_open`: the
gate's calibration).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

import httpx

from harness import wire
from harness.clients.http import new_client
from harness.clients.poll import poll_until
from harness.clients.toxiproxy import ToxiproxyClient
from harness.data.progress import Progress
from harness.probes.gateway_metrics import read_counters
from harness.probes.http import auth_headers, chat_body, unique_prompt
from harness.verdict.breaker import (
    POOL,
    Answer,
    BreakerConfig,
    BreakerEvidence,
    ReplicaCycle,
    judge_breaker,
    not_closed,
)
from harness.verdict.checks import CheckResult

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
            progress(
                f"  waiting for {len(open_now)} open breaker(s) to reach their recovery "
                f"timeout (up to {recovery_timeout_s:g}s)"
            )
            _while_open(open_now, deadline)
    except httpx.HTTPError:  # a replica that does not answer: nothing to wait for there
        return


def _ask(http: httpx.Client, gateway: str) -> httpx.Response:
    # Not cacheable (temperature > 0): every request reaches the pools.
    body = chat_body(unique_prompt("Say yes."), max_tokens=4, temperature=0.7)
    return http.post(f"{gateway}/v1/chat/completions", json=body)


def _answer(r: httpx.Response) -> Answer:
    return Answer(r.status_code, r.headers.get(wire.current().served_by))


@dataclass(frozen=True)
class _Tripped:
    """A replica's opening: the threshold's answers, the state then, the next request's
    X-Fallback-Reason and when the breaker was seen open (monotonic seconds)."""

    tripping: list[Answer]
    state: int | None
    fallback_reason: str | None
    opened: float


def _trip(http: httpx.Client, gateway: str, cfg: BreakerConfig) -> _Tripped:
    """Send the threshold's worth of failing requests, then one the breaker must pass over."""
    tripping = [_answer(_ask(http, gateway)) for _ in range(cfg.failure_threshold)]
    opened = time.monotonic()
    state = breaker_state(gateway)
    reason = _ask(http, gateway).headers.get("x-fallback-reason")
    return _Tripped(tripping, state, reason, opened)


def _recover(
    http: httpx.Client, gateway: str, tripped: _Tripped, cfg: BreakerConfig
) -> ReplicaCycle:
    """Wait (reading /metrics only) until the breaker leaves open; once half-open, send the
    request the primary must answer, and read the state after it."""
    _while_open([gateway], tripped.opened + cfg.recovery_timeout_s + cfg.slack_s)
    state = breaker_state(gateway)
    cycle = ReplicaCycle(
        gateway=gateway,
        tripping=tripped.tripping,
        state_after_trip=tripped.state,
        fallback_reason=tripped.fallback_reason,
        state_after_wait=state,
        half_open_after_s=time.monotonic() - tripped.opened,
    )
    if state != 1:  # not half-open: a request now would not test the recovery
        return cycle
    probe = _answer(_ask(http, gateway))
    return replace(cycle, probe=probe, state_after_probe=breaker_state(gateway))


def probe_breaker(
    gateways: Sequence[str],
    api_key: str,
    toxiproxy: str,
    proxies: Sequence[str],
    cfg: BreakerConfig,
    progress: Progress = lambda _: None,
    while_open: Callable[[], None] | None = None,
) -> CheckResult:
    """The cycle on every replica; `while_open` (which must not raise) runs in a thread beside
    the recovery wait, and the probe ends only when it has."""
    t0 = time.monotonic()
    evidence = BreakerEvidence(proxies=len(proxies))
    if proxies:
        evidence = _cycles(gateways, api_key, toxiproxy, proxies, cfg, progress, while_open)
    check = judge_breaker(evidence, cfg)
    check.duration_s = round(time.monotonic() - t0, 3)
    return check


def _cycles(
    gateways: Sequence[str],
    api_key: str,
    toxiproxy: str,
    proxies: Sequence[str],
    cfg: BreakerConfig,
    progress: Progress,
    while_open: Callable[[], None] | None,
) -> BreakerEvidence:
    """Each replica's states before, then (when every breaker is closed) each one's cycle."""
    before = {gw: breaker_state(gw) for gw in gateways}
    if not_closed(before):
        return BreakerEvidence(proxies=len(proxies), before=before)
    tripped: dict[str, _Tripped] = {}
    with new_client(timeout=60.0, headers=auth_headers(api_key)) as http:
        with ToxiproxyClient(toxiproxy) as toxi:
            try:
                for proxy in proxies:
                    toxi.set_enabled(proxy, False)
                for gw in gateways:
                    tripped[gw] = _trip(http, gw, cfg)
            finally:
                for proxy in proxies:
                    toxi.set_enabled(proxy, True)
        progress(
            f"  breaker open on {len(gateways)} replica(s); waiting out its recovery timeout "
            f"({cfg.recovery_timeout_s:g}s)"
        )
        # A daemon: an interrupted gate exits at once (its services die with it), not after
        # the work beside; any other end waits for that work, which the caller reads next.
        beside = threading.Thread(target=while_open or (lambda: None), daemon=True)
        beside.start()
        try:
            cycles = [_recover(http, gw, tripped[gw], cfg) for gw in gateways]
        except Exception:
            beside.join()
            raise
        beside.join()
    return BreakerEvidence(proxies=len(proxies), before=before, cycles=cycles)
