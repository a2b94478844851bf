"""How a stack came through a fault, from an experiment's per-request samples: how soon it failed
over, how soon it was back within its steady state, and how much good traffic it lost.

One formula per figure (docs/chaos.md, "Recovery figures"), so two people get the same numbers:

- a request *meets* the steady state when it succeeded and its first answer (TTFT; the whole
  answer when no text streamed) counted from its intended send time is within the bound B;
- the steady state is the "before" phase (at least MIN_STEADY_REQUESTS requests): B = max(
  TTFT_FACTOR x its p95 first answer, TTFT_FLOOR_MS), m0 = its share of requests not meeting;
- time to fail over: fault start to the first answer (response headers) served by the fallback
  pool or degraded, among answers that came after the fault started;
- time to recover: fault end to the intended time of r_k, the first request meant after the fault
  ended that meets, with at least WINDOW requests from it to the end, and no WINDOW consecutive
  requests from it on with more than floor(WINDOW x m0) misses; none such: censored;
- goodput lost: the misses among the requests of "during" and "after" minus m0 times their number
  (at least 0), as a count and a share of them.

The pool that served is not part of the steady state: a breaker keeps the primary out of rotation
for its recovery time (60 s by policy) after an outage, and fallback answers in time are good
traffic. Whether the primary came back is the breaker's expectation, not this one.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict
from scipy import special

from harness.data.samples import Sample
from harness.measure.stats import percentile
from harness.measure.window import split_phases

WINDOW = 5  # requests in the rolling window that must be back within the steady state
TTFT_FACTOR = 3.0  # the first-answer bound, times the steady state's p95 ...
TTFT_FLOOR_MS = 500.0  # ... and never below this (a 30 ms stack's 3x is machine noise)
MIN_STEADY_REQUESTS = 5  # fewer "before" requests than this are no steady state
CONFIDENCE = 0.95  # the one-sided level of the recovered stretch's miss-rate bound
FAILOVER_POOLS = ("fallback", "degraded")

_LENIENT = ConfigDict(extra="ignore")  # stored in report.json: older and newer reports load


class SteadyState(BaseModel):
    """The "before" phase's figures the recovery is measured against."""

    model_config = _LENIENT
    requests: int
    misses: int
    miss_rate: float
    first_answer_p95_ms: float | None  # over its successful requests, from intended send time
    bound_ms: float  # B: a request's first answer must come within this

    @property
    def allowed_misses(self) -> int:
        """Misses a window of WINDOW requests may have and still be within the steady state."""
        return math.floor(WINDOW * self.miss_rate)


class Recovery(BaseModel):
    """An experiment's recovery figures; a figure that could not be measured is None and `reason`
    says why (a censored recovery: the run ended first)."""

    model_config = _LENIENT
    failover_s: float | None = None
    served_by_seen: bool = False  # any answer carried X-Served-By (without: no failover figure)
    steady: SteadyState | None = None
    reason: str = ""  # why recover_s or goodput_lost is None ("" when both are measured)
    recover_s: float | None = None
    censored: bool = False  # not back within the steady state by the end of the run
    observed_s: float = 0.0  # from the fault's end to the end of the run
    window: int = WINDOW
    after_requests: int = 0
    recovered_requests: int = 0  # the stretch from r_k to the end of the run
    recovered_misses: int = 0
    recovered_miss_rate_upper: float | None = None  # its one-sided CONFIDENCE bound
    affected_requests: int = 0  # "during" and "after"
    affected_misses: int = 0
    expected_misses: float | None = None  # m0 x affected_requests
    goodput_lost: float | None = None
    goodput_lost_share: float | None = None


def first_answer_ms(s: Sample) -> float:
    """TTFT (the whole answer when no text streamed), counted from the intended send time."""
    lag = s.send_lag_ms or 0.0
    return (s.ttft_ms if s.ttft_ms is not None else s.e2e_ms) + max(lag, 0.0)


def meets(s: Sample, bound_ms: float) -> bool:
    return s.ok and first_answer_ms(s) <= bound_ms


def steady_state(before: Sequence[Sample]) -> SteadyState | None:
    if len(before) < MIN_STEADY_REQUESTS:
        return None
    p95 = percentile([first_answer_ms(s) for s in before if s.ok], 95)
    bound = max(TTFT_FACTOR * p95, TTFT_FLOOR_MS) if p95 is not None else TTFT_FLOOR_MS
    misses = sum(not meets(s, bound) for s in before)
    return SteadyState(
        requests=len(before),
        misses=misses,
        miss_rate=misses / len(before),
        first_answer_p95_ms=p95,
        bound_ms=bound,
    )


def failover_s(samples: Sequence[Sample], fault_start_s: float) -> float | None:
    """Seconds from the fault's start to the first fallback or degraded answer after it."""
    answers = [
        s.sent_s + (s.ttfb_ms if s.ttfb_ms is not None else s.e2e_ms) / 1000.0
        for s in samples
        if (s.x_served_by or "").lower() in FAILOVER_POOLS
    ]
    after = [t for t in answers if t >= fault_start_s]
    return min(after) - fault_start_s if after else None


def recovered_from(good: Sequence[bool], allowed: int) -> int | None:
    """The index k of the first request of the recovered stretch (module docstring), or None."""
    n = len(good)
    # Every window starting at k or later must hold: k comes after the last one that does not.
    last_bad = -1
    for j in range(n - WINDOW + 1):
        if sum(not g for g in good[j : j + WINDOW]) > allowed:
            last_bad = j
    for k in range(last_bad + 1, n - WINDOW + 1):
        if good[k]:
            return k
    return None


def _miss_rate_upper(misses: int, n: int) -> float:
    """One-sided Clopper-Pearson upper bound of a miss rate."""
    if misses >= n:
        return 1.0
    return float(special.betaincinv(misses + 1, n - misses, CONFIDENCE))


def recovery(
    samples: Sequence[Sample],
    run_start_s: float,
    run_end_s: float,
    fault_start_s: float,
    fault_end_s: float,
) -> Recovery:
    """The recovery figures of one experiment's samples (times on the samples' clock)."""
    split = split_phases(samples, run_start_s, fault_start_s, fault_end_s)
    after = sorted(split["after"], key=lambda s: s.meant_s)
    affected = split["during"] + after
    out = Recovery(
        failover_s=failover_s(affected, fault_start_s),
        served_by_seen=any(s.x_served_by for s in samples),
        observed_s=max(0.0, run_end_s - fault_end_s),
        after_requests=len(after),
        affected_requests=len(affected),
    )
    steady = steady_state(split["before"])
    if steady is None:
        out.reason = (
            f"no steady state: {len(split['before'])} requests before the fault, at "
            f"least {MIN_STEADY_REQUESTS} are needed"
        )
        return out
    out.steady = steady
    out.affected_misses = sum(not meets(s, steady.bound_ms) for s in affected)
    out.expected_misses = steady.miss_rate * len(affected)
    out.goodput_lost = max(0.0, out.affected_misses - out.expected_misses)
    out.goodput_lost_share = out.goodput_lost / len(affected) if affected else None
    good = [meets(s, steady.bound_ms) for s in after]
    k = recovered_from(good, steady.allowed_misses)
    if k is None:
        out.censored = True
        out.reason = (
            f"not recovered within the {out.observed_s:.0f} s observed ({len(after)} "
            f"requests after the fault, {good.count(False)} missing the steady state; "
            f"a window of {WINDOW} is needed)"
        )
        return out
    out.recover_s = after[k].meant_s - fault_end_s
    out.recovered_requests = len(after) - k
    out.recovered_misses = good[k:].count(False)
    out.recovered_miss_rate_upper = _miss_rate_upper(out.recovered_misses, len(after) - k)
    return out
