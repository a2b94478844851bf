"""A rate of two runs compared (the error rate, the fallback and the degraded share): the change
in percentage points (pp), its confidence interval, Fisher's exact test and a label.

The change is B's rate minus A's, in pp, because a relative change is undefined from 0%, and a
baseline at 0% errors is the common case. The interval is Newcombe's hybrid score interval for a
difference of two proportions (Newcombe 1998, method 10), built from each run's Wilson score
interval (`scipy.stats.binomtest(...).proportion_ci`): it keeps its coverage near 0% and with no
event at all, where the Wald interval collapses to a width of 0 (0 errors in 600 requests would
"prove" the rate is exactly 0). Fisher's exact test's two-sided p-value is reported beside it.

Labels as for latency (`harness.verdict.labels`), d = the minimum effect in pp: same when the
interval lies inside +-d; regressed when it lies above 0 and the change is at least +d; improved
the mirror image; inconclusive otherwise. A higher rate is always the worse one.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from harness.verdict.labels import Label, label_change

_MAX_NEEDED = 1_000_000
NAMES = {
    "error_rate": "error rate",
    "fallback_share": "fallback share",
    "degraded_share": "degraded share",
}


@dataclass(frozen=True)
class Count:
    """k of n requests."""

    k: int
    n: int


class RateComparison(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metric: str
    k_a: int
    n_a: int
    k_b: int
    n_b: int
    # In percentage points, B - A; None when a run has no requests to count.
    diff_pp: float | None = None
    low_pp: float | None = None
    high_pp: float | None = None
    fisher_p: float | None = None
    label: Label
    samples_needed: int | None = None  # per run, when inconclusive
    reason: str


def _wilson(c: Count, level: float) -> tuple[float, float]:
    from scipy import stats  # half a second to import: only where rates are compared

    ci = stats.binomtest(c.k, c.n).proportion_ci(confidence_level=level, method="wilson")
    return float(ci.low), float(ci.high)


def newcombe_interval(a: Count, b: Count, level: float = 0.95) -> tuple[float, float]:
    """Confidence interval of b's proportion minus a's (Newcombe's hybrid score, method 10)."""
    pa, pb = a.k / a.n, b.k / b.n
    (la, ua), (lb, ub) = _wilson(a, level), _wilson(b, level)
    diff = pb - pa
    return (
        diff - math.hypot(pb - lb, ua - pa),
        diff + math.hypot(ub - pb, pa - la),
    )


def _needed(a: Count, b: Count, d: float, level: float) -> int:
    """Requests per run that would decide if both rates stayed as measured: the smallest n (to
    within 5%) whose interval gives a label. Searched, not extrapolated as 1/sqrt(n): near 0%
    the interval narrows faster (0 in 600 already bounds a rate below 0.7%)."""
    pa, pb = a.k / a.n, b.k / b.n

    def decides(n: int) -> bool:
        ka, kb = round(pa * n), round(pb * n)
        low, high = newcombe_interval(Count(ka, n), Count(kb, n), level)
        return label_change(100 * (kb - ka) / n, 100 * low, 100 * high, d) != "inconclusive"

    low = min(a.n, b.n)
    high = 2 * low
    while not decides(high):
        if high >= _MAX_NEEDED:
            return _MAX_NEEDED
        low, high = high, min(2 * high, _MAX_NEEDED)
    while high - low > max(1, low // 20):
        mid = (low + high) // 2
        low, high = (low, mid) if decides(mid) else (mid, high)
    return high


def _share(c: Count) -> str:
    return f"{c.k / c.n:.1%} ({c.k}/{c.n})"


def compare_rate(
    metric: str, a: Count | None, b: Count | None, *, min_effect_pp: float, level: float = 0.95
) -> RateComparison:
    """Compare run A's count of `metric` with run B's; None: the run did not record it."""
    name = NAMES.get(metric, metric)
    if a is None or b is None or not a.n or not b.n:
        why = [
            f"{'not recorded' if c is None else 'no requests'} in run {run}"
            for run, c in (("A", a), ("B", b))
            if c is None or not c.n
        ]
        return RateComparison(
            metric=metric,
            k_a=a.k if a else 0,
            n_a=a.n if a else 0,
            k_b=b.k if b else 0,
            n_b=b.n if b else 0,
            label="inconclusive",
            reason=f"{name}: {', '.join(why)}",
        )
    low, high = (100 * x for x in newcombe_interval(a, b, level))
    diff = 100 * (b.k / b.n - a.k / a.n)
    label = label_change(diff, low, high, min_effect_pp)
    needed = None
    if label == "inconclusive":
        needed = _needed(a, b, min_effect_pp, level)
    table = [[b.k, b.n - b.k], [a.k, a.n - a.k]]
    from scipy import stats  # half a second to import: only where rates are compared

    p = float(stats.fisher_exact(table).pvalue)
    reason = (
        f"{name} {_share(a)} -> {_share(b)}, {diff:+.1f} pp, {level:.0%} CI "
        f"[{low:+.1f}, {high:+.1f}] pp, Fisher p = {p:.2g}, min effect {min_effect_pp:g} pp: "
        f"{label}" + (f", about {needed} requests per run would decide" if needed else "")
    )
    return RateComparison(
        metric=metric,
        k_a=a.k,
        n_a=a.n,
        k_b=b.k,
        n_b=b.n,
        diff_pp=diff,
        low_pp=low,
        high_pp=high,
        fisher_p=p,
        label=label,
        samples_needed=needed,
        reason=reason,
    )
