"""Goodput's confidence bounds: the share of requests that met every per-request SLO is a claim
from a sample, so every load report gives it with its n and Clopper-Pearson bounds (`harness
load`, each capacity step, the gate's pooled looks). Judging it against a target is the `goodput`
share SLO's (`slo.judge_share`), the gate's `policy.min_goodput`, or a capacity step's."""

from __future__ import annotations

import math

from harness.measure.summary import Goodput, LoadSummary
from harness.verdict.confidence import proportion_interval


def bound_goodput(summary: LoadSummary, alpha: float) -> Goodput:
    """The summary's goodput with its bounds at one-sided `alpha` each (none where nothing
    bounds a request: then it is the share of successful requests, not a goodput)."""
    g = summary.goodput
    n = summary.counts.total
    if g.basis == "none" or n == 0:
        return g.model_copy(update={"n": n})
    interval = proportion_interval(g.meeting, n, alpha)
    return g.model_copy(
        update={
            "n": n,
            "lower": interval.lower,
            "upper": interval.upper,
            "confidence": interval.confidence,
        }
    )


def min_requests_to_pass(target: float, alpha: float) -> int:
    """The fewest requests whose goodput share can show `>= target` at one-sided `alpha`: with
    all n meeting, the Clopper-Pearson lower bound is alpha ** (1 / n) (29 for 0.9 at 0.05)."""
    return max(1, math.ceil(math.log(alpha) / math.log(target)))
