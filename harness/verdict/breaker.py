"""Judging the circuit breaker's whole cycle (PRACTICES.md section 8) from what the probe saw on
each gateway replica (`harness/probes/breaker.py` measures): open after the threshold's
failures, the pool passed over with `X-Fallback-Reason: breaker_open`, half-open no sooner than
the recovery timeout, closed by the primary's answer to the next request."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from harness.verdict.checks import CheckResult

NAME, CATEGORY = "circuit breaker opens and recovers", "resilience"
POOL = "primary"
STATES = {0: "closed", 1: "half-open", 2: "open"}
# How early the breaker may read half-open and still count as waiting out its recovery timeout
# (the probe reads /metrics every quarter second, from when it saw the breaker open).
EARLY_S = 1.0


@dataclass(frozen=True)
class BreakerConfig:
    failure_threshold: int
    recovery_timeout_s: float
    # Beyond the recovery timeout, how long the breaker may take to read half-open and close.
    slack_s: float = 15.0


@dataclass(frozen=True)
class Answer:
    """One request's status and who answered it (the served-by header; None: absent)."""

    status: int
    served_by: str | None


@dataclass(frozen=True)
class ReplicaCycle:
    """One replica's cycle as the probe saw it. States are the breaker gauge's values (None: no
    such gauge)."""

    gateway: str
    # The threshold's requests sent with the primary pool down, in order.
    tripping: Sequence[Answer]
    state_after_trip: int | None
    # X-Fallback-Reason of the next request, sent with the breaker meant to be open.
    fallback_reason: str | None
    # When waiting for the breaker to leave open ended: its state, seconds since it opened.
    state_after_wait: int | None
    half_open_after_s: float
    # The request sent once half-open, and the state after it (None: not half-open, none sent).
    probe: Answer | None = None
    state_after_probe: int | None = None


@dataclass(frozen=True)
class BreakerEvidence:
    """What the probe saw: each replica's state before it began, then each replica's cycle (none
    when some breaker was not closed before, or there was no proxy to take the pool down)."""

    proxies: int
    before: Mapping[str, int | None] = field(default_factory=dict)
    cycles: Sequence[ReplicaCycle] = ()


def state_name(state: int | None) -> str:
    return "absent" if state is None else STATES.get(state, str(state))


def not_closed(before: Mapping[str, int | None]) -> dict[str, str]:
    """The replicas whose breaker is not closed, with its state: the cycle cannot start there."""
    return {gw: state_name(s) for gw, s in before.items() if s != 0}


def _trip_failures(c: ReplicaCycle, cfg: BreakerConfig) -> list[str]:
    failures = [
        f"{c.gateway}: request {i + 1} with the primary pool down was answered "
        f"{a.status} by {a.served_by!r}, want fallback or degraded"
        for i, a in enumerate(c.tripping)
        if a.served_by not in ("fallback", "degraded")
    ]
    if c.state_after_trip != 2:
        failures.append(
            f"{c.gateway}: after {cfg.failure_threshold} failures the breaker reads "
            f"{state_name(c.state_after_trip)}, want open"
        )
    if c.fallback_reason != "breaker_open":
        failures.append(
            f"{c.gateway}: with the breaker open, X-Fallback-Reason is "
            f"{c.fallback_reason!r}, want 'breaker_open'"
        )
    return failures


def _recovery_failures(c: ReplicaCycle, cfg: BreakerConfig) -> list[str]:
    if c.state_after_wait != 1:
        return [
            f"{c.gateway}: {c.half_open_after_s:.1f}s after opening (recovery timeout "
            f"{cfg.recovery_timeout_s:g}s) the breaker reads {state_name(c.state_after_wait)}, "
            "want half-open"
        ]
    failures = []
    if c.half_open_after_s < cfg.recovery_timeout_s - EARLY_S:
        failures.append(
            f"{c.gateway}: half-open {c.half_open_after_s:.1f}s after opening, "
            f"before its recovery timeout of {cfg.recovery_timeout_s:g}s"
        )
    if c.probe is None or c.probe.status != 200 or c.probe.served_by != POOL:
        status = None if c.probe is None else c.probe.status
        served = None if c.probe is None else c.probe.served_by
        failures.append(
            f"{c.gateway}: the half-open probe request was answered {status} by "
            f"{served!r}, want 200 by the primary"
        )
    if c.state_after_probe != 0:
        failures.append(
            f"{c.gateway}: after a successful probe the breaker reads "
            f"{state_name(c.state_after_probe)}, want closed"
        )
    return failures


def judge_breaker(evidence: BreakerEvidence, cfg: BreakerConfig) -> CheckResult:
    """Every way any replica's cycle fell short: first each replica's opening, then each one's
    recovery (the order the probe goes through them)."""
    if not evidence.proxies:
        return CheckResult(
            name=NAME,
            category=CATEGORY,
            outcome="skipped",
            reasons=["the primary pool has no Toxiproxy proxy"],
        )
    if was_open := not_closed(evidence.before):
        return CheckResult(
            name=NAME,
            category=CATEGORY,
            outcome="fail",
            reasons=[f"the breaker is not closed before the probe: {was_open}"],
        )
    cycles = evidence.cycles
    failures = [f for c in cycles for f in _trip_failures(c, cfg)]
    failures += [f for c in cycles for f in _recovery_failures(c, cfg)]
    waits = [c.half_open_after_s for c in cycles if c.state_after_wait == 1]
    measured: dict[str, float | int | str | None] = {
        "replicas": len(cycles),
        "failure_threshold": cfg.failure_threshold,
        "recovery_timeout_s": cfg.recovery_timeout_s,
        "half_open_after_s_max": round(max(waits), 1) if waits else None,
    }
    return CheckResult.from_reasons(
        NAME,
        CATEGORY,
        failures,
        measured,
        f"open after {cfg.failure_threshold} failures on each of {len(cycles)} replicas, "
        f"breaker_open skips the pool, half-open after "
        f"{measured['half_open_after_s_max']}s (recovery {cfg.recovery_timeout_s:g}s), "
        "closed by a primary answer",
    )
