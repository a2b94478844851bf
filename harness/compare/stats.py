"""Two runs' per-request values of one figure, compared with statistical confidence.

For the median and the p95: the change from A to B, relative to A, with a bootstrap confidence
interval (scipy.stats.bootstrap, each run resampled on its own). Beside them a rank test
(Mann-Whitney U), a distribution test (two-sample Kolmogorov-Smirnov) and an effect size (the
rank-biserial correlation: P(a request of B is slower) - P(it is faster)).

Labels: `harness.verdict.labels` (d = min_effect, relative to A); when inconclusive,
`samples_needed` says about how many requests per run would decide, from the interval's width
shrinking as 1/sqrt(n).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any, Literal

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from harness.verdict.labels import Label, label_change, worst

MIN_SAMPLES = 10  # below this per run no interval is computed
_MAX_NEEDED = 1_000_000


class Change(BaseModel):
    """The change of one statistic from A to B: absolute (ms) and relative to A, with the
    relative change's confidence interval."""

    model_config = ConfigDict(extra="ignore")
    statistic: Literal["median", "p95"]
    a: float
    b: float
    diff: float  # b - a
    rel: float  # (b - a) / a
    rel_low: float
    rel_high: float
    label: Label
    samples_needed: int | None = None  # per run, when inconclusive


class MetricComparison(BaseModel):
    model_config = ConfigDict(extra="ignore")
    metric: str
    n_a: int
    n_b: int
    label: Label
    changes: list[Change] = []
    mann_whitney_p: float | None = None
    ks_statistic: float | None = None
    ks_p: float | None = None
    # Rank-biserial correlation in [-1, 1]: > 0 when B's requests tend to be slower.
    effect_size: float | None = None
    reason: str = ""


def _quantile_ratio(q: float) -> Callable[..., NDArray[Any]]:
    """(q-quantile of B - that of A) / that of A, along the resamples' last axis."""

    def statistic(a: NDArray[Any], b: NDArray[Any], axis: int = -1) -> NDArray[Any]:
        qa = np.quantile(a, q, axis=axis)
        return np.asarray((np.quantile(b, q, axis=axis) - qa) / qa)

    return statistic


def _needed(n: int, est: float, low: float, high: float, d: float) -> int:
    """Requests per run that would decide, assuming the estimate stays and each side of the
    interval shrinks as 1/sqrt(n): "same" needs both ends inside +-d, a change needs the
    interval clear of 0."""
    up, down = high - est, est - low
    if est >= d:
        ratios = [down / est]
    elif est <= -d:
        ratios = [up / -est]
    else:
        ratios = [up / (d - est), down / (d + est)]
    need = n * max(ratios) ** 2 * 1.1  # 10% margin: the estimate itself moves too
    return max(n + 1, min(_MAX_NEEDED, math.ceil(need)))


def _change(
    name: Literal["median", "p95"],
    q: float,
    a: NDArray[Any],
    b: NDArray[Any],
    d: float,
    level: float,
    resamples: int,
    rng: np.random.Generator,
) -> Change:
    qa, qb = float(np.quantile(a, q)), float(np.quantile(b, q))
    est = (qb - qa) / qa
    from scipy import stats  # half a second to import: only where runs are compared

    res = stats.bootstrap(
        (a, b),
        _quantile_ratio(q),
        n_resamples=resamples,
        confidence_level=level,
        method="percentile",
        vectorized=True,
        batch=200,
        rng=rng,
    )
    low, high = float(res.confidence_interval.low), float(res.confidence_interval.high)
    label = label_change(est, low, high, d)
    needed = None
    if label == "inconclusive":
        needed = _needed(min(a.size, b.size), est, low, high, d)
    return Change(
        statistic=name,
        a=qa,
        b=qb,
        diff=qb - qa,
        rel=est,
        rel_low=low,
        rel_high=high,
        label=label,
        samples_needed=needed,
    )


def compare_values(
    metric: str,
    a: NDArray[Any],
    b: NDArray[Any],
    *,
    min_effect: float,
    level: float = 0.95,
    resamples: int = 2000,
    seed: int = 0,
    decide_on: tuple[str, ...] = ("median", "p95"),
) -> MetricComparison:
    """Compare run A's values of `metric` with run B's (both: per request, successful ones);
    the statistics in `decide_on` give the label, the others are reported beside them."""
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    if min(a.size, b.size) < MIN_SAMPLES or min(np.median(a), np.median(b)) <= 0:
        return MetricComparison(
            metric=metric,
            n_a=int(a.size),
            n_b=int(b.size),
            label="inconclusive",
            reason=f"{min(a.size, b.size)} values in the smaller run; at least {MIN_SAMPLES} "
            "(and a positive median) are needed for an interval",
        )
    rng = np.random.default_rng(seed)
    changes = [
        _change("median", 0.5, a, b, min_effect, level, resamples, rng),
        _change("p95", 0.95, a, b, min_effect, level, resamples, rng),
    ]
    from scipy import stats  # half a second to import: only where runs are compared

    mw = stats.mannwhitneyu(b, a, alternative="two-sided")
    ks = stats.ks_2samp(a, b)
    label = worst(c.label for c in changes if c.statistic in decide_on)
    reason = "; ".join(
        f"{c.statistic} {c.a:.1f} -> {c.b:.1f} ms ({c.rel:+.1%}, {level:.0%} CI "
        f"{c.rel_low:+.1%} .. {c.rel_high:+.1%}): {c.label}"
        + (f", about {c.samples_needed} requests per run would decide" if c.samples_needed else "")
        + ("" if c.statistic in decide_on else " (reported, not judged)")
        for c in changes
    )
    return MetricComparison(
        metric=metric,
        n_a=int(a.size),
        n_b=int(b.size),
        label=label,
        changes=changes,
        mann_whitney_p=float(mw.pvalue),
        ks_statistic=float(ks.statistic),
        ks_p=float(ks.pvalue),
        effect_size=float(2 * mw.statistic / (a.size * b.size) - 1),
        reason=reason,
    )
