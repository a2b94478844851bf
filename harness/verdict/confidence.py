"""Percentile and share SLOs judged with confidence: distribution-free bounds, three-way decision.

A percentile SLO ("p95 of TTFT <= 1000 ms") is a claim about a distribution, judged from a sample.
The sample quantile alone cannot carry it (with 22 requests the "p95" is the second-slowest one), so
every judgement here comes with one-sided confidence bounds and decides:

- pass: the bound on the good side of the threshold meets it (for "<=": the upper bound is <= it);
- fail: the bound on the other side violates it (for "<=": even the lower bound is > it);
- inconclusive: the threshold lies between the bounds; more samples are needed.

Quantile bounds are order statistics with binomial ranks. Sort the n values X_(1) <= ... <= X_(n);
the number B of values below the true q-quantile is Binomial(n, q), so P(X_(u) >= quantile) =
P(B <= u - 1). The upper bound is X_(u) for the smallest u with binom.cdf(u - 1, n, q) >= 1 - alpha,
the lower bound X_(l) for the largest l with binom.cdf(l - 1, n, q) <= alpha. This holds for any
distribution (ties only make it more conservative), so no latency model is assumed. An upper bound
needs n >= log(alpha) / log(q) values (59 for p95 at alpha 0.05, 299 for p99): below that it is None
and the SLO cannot pass, however fast the sample.

Shares and error rates use Clopper-Pearson bounds (beta quantiles), exact for binomial counts.

`alpha` is always one-sided: each bound covers the true value with probability >= 1 - alpha, so a
wrong pass and a wrong fail each happen with probability <= alpha, and the two-sided interval
covers with probability >= 1 - 2 * alpha. Repeated looks at a growing sample need a smaller alpha
per look: see `harness.verdict.sequential`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.typing import NDArray

# scipy.special, not scipy.stats: the binomial and beta functions are the incomplete beta
# function and its inverse (what scipy.stats computes them with), without the half second
# scipy.stats takes to import in every harness process.
from scipy import special

from harness.measure.stats import PERCENTILE_METHOD

Decision = Literal["pass", "fail", "inconclusive"]
Op = Literal["<=", "<", ">=", ">"]

# samples_needed searches no further: beyond this the answer is "not with any practical load".
_MAX_SAMPLES_NEEDED = 100_000_000


@dataclass(frozen=True)
class Interval:
    """A distribution-free two-sided confidence interval for a quantile or a proportion.

    `confidence` is the coverage of each one-sided bound, 1 - alpha; the two together cover
    with probability >= 1 - 2 * alpha. A bound is None when there are too few samples to set
    it at this confidence (an upper bound of p95 needs 59 values at alpha 0.05).
    """

    n: int
    estimate: float | None
    lower: float | None
    upper: float | None
    confidence: float


@dataclass(frozen=True)
class Judgement:
    """An SLO decided from a sample: the interval it rests on and a sentence that says why."""

    decision: Decision
    interval: Interval
    threshold: float
    op: Op
    reason: str
    # When inconclusive: about how many samples would decide if the estimate held (None: not
    # with any practical sample, e.g. an estimate exactly at the threshold).
    samples_needed: int | None


def _check_alpha(alpha: float) -> None:
    # 0 is allowed: an early sequential look may spend (almost) nothing; then nothing is bounded.
    if not 0.0 <= alpha < 0.5:
        raise ValueError(f"alpha must be in [0, 0.5), got {alpha}")


def _check_q(q: float) -> None:
    if not 0.0 < q < 1.0:
        raise ValueError(f"q must be a fraction in (0, 1) such as 0.95, got {q}")


@lru_cache(maxsize=4096)
def order_statistic_ranks(n: int, q: float, alpha: float) -> tuple[int | None, int | None]:
    """1-based ranks (l, u) of the order statistics bounding the q-quantile of n values.

    P(X_(l) <= quantile) >= 1 - alpha and P(X_(u) >= quantile) >= 1 - alpha for any distribution;
    a rank is None when no order statistic of n values reaches that confidence.
    """
    _check_q(q)
    _check_alpha(alpha)
    if n <= 0 or alpha == 0.0:
        return None, None
    # u - 1 is the first k with cdf(k) >= 1 - alpha; u <= n needs 1 - q**n >= 1 - alpha.
    u = _first_k_with_cdf_at_least(1.0 - alpha, n, q) + 1
    # l - 1 is the last k with cdf(k) <= alpha; l >= 1 needs cdf(0) = (1 - q)**n <= alpha.
    k = _first_k_with_cdf_at_least(alpha, n, q)
    l_rank = k + 1 if _binom_cdf(k, n, q) <= alpha else k
    return (l_rank if l_rank >= 1 else None), (u if u <= n else None)


def _first_k_with_cdf_at_least(p: float, n: int, q: float) -> int:
    """binom.ppf, settled exactly: the float inverse is a first guess that can land one rank off
    near a step (or be nan at the ends)."""
    guess = float(special.bdtrik(p, n, q))
    k = min(max(int(guess), 0), n) if math.isfinite(guess) else 0
    while k > 0 and _binom_cdf(k - 1, n, q) >= p:
        k -= 1
    while k < n and _binom_cdf(k, n, q) < p:
        k += 1
    return k


def _binom_cdf(k: int, n: int, q: float) -> float:
    """P(Binomial(n, q) <= k), through the regularized incomplete beta function."""
    return float(special.betainc(n - k, k + 1, 1 - q)) if k < n else 1.0


def quantile_interval(
    values: Sequence[float] | NDArray[np.float64], q: float, alpha: float
) -> Interval:
    """Order-statistic bounds of the q-quantile (q a fraction: 0.95 for p95), one-sided alpha each.

    The estimate is numpy's 'linear' percentile, as in the load summary (harness.measure.stats);
    with a handful of values it interpolates and can sit just outside a bound.
    """
    a = np.sort(np.asarray(values, dtype=np.float64))
    if np.isnan(a).any():
        raise ValueError("values must not contain NaN: a sample without a value is no sample")
    n = int(a.size)
    lo, up = order_statistic_ranks(n, q, alpha)
    return Interval(
        n=n,
        estimate=float(np.percentile(a, 100.0 * q, method=PERCENTILE_METHOD)) if n else None,
        lower=float(a[lo - 1]) if lo is not None else None,
        upper=float(a[up - 1]) if up is not None else None,
        confidence=1.0 - alpha,
    )


def proportion_interval(successes: int, n: int, alpha: float) -> Interval:
    """Clopper-Pearson bounds of a proportion, one-sided alpha each (0 and 1 at the extremes)."""
    _check_alpha(alpha)
    if n < 0 or not 0 <= successes <= max(n, 0):
        raise ValueError(f"need 0 <= successes <= n, got {successes} of {n}")
    if n == 0:
        return Interval(n=0, estimate=None, lower=None, upper=None, confidence=1.0 - alpha)
    lower, upper = _clopper_pearson(successes, n, alpha)
    return Interval(n=n, estimate=successes / n, lower=lower, upper=upper, confidence=1.0 - alpha)


def _clopper_pearson(successes: float, n: float, alpha: float) -> tuple[float, float]:
    lower = (
        0.0 if successes <= 0 else float(special.betaincinv(successes, n - successes + 1, alpha))
    )
    upper = (
        1.0
        if successes >= n
        else float(special.betaincinv(successes + 1, n - successes, 1 - alpha))
    )
    return lower, upper


def _meets(value: float, op: Op, threshold: float) -> bool:
    if op == "<=":
        return value <= threshold
    if op == "<":
        return value < threshold
    if op == ">=":
        return value >= threshold
    return value > threshold


def _decide(interval: Interval, op: Op, threshold: float) -> Decision:
    """The bound on the good side decides a pass; the bound on the other side a fail."""
    pass_bound, fail_bound = (
        (interval.upper, interval.lower) if op in ("<=", "<") else (interval.lower, interval.upper)
    )
    if pass_bound is not None and _meets(pass_bound, op, threshold):
        return "pass"
    if fail_bound is not None and not _meets(fail_bound, op, threshold):
        return "fail"
    return "inconclusive"


def _fmt(x: float | None) -> str:
    return "none" if x is None else f"{x:.4g}"


def _pct(confidence: float) -> str:
    """95%, 98.6%, 99.999997%: enough digits that a tiny sequential alpha does not read as 100%."""
    if confidence >= 1.0:
        return "100%"
    digits = max(2, math.ceil(-math.log10(1.0 - confidence))) + 1
    return f"{100 * confidence:.{digits}g}%"


def _reason(
    label: str,
    unit: str,
    interval: Interval,
    op: Op,
    threshold: float,
    decision: Decision,
    needed: int | None,
) -> str:
    n = interval.n
    if n == 0:
        return f"{label}: no samples"
    u = f" {unit}" if unit else ""
    conf = _pct(interval.confidence)
    head = f"{label} = {_fmt(interval.estimate)}{u}"
    upper_side = op in ("<=", "<")
    side, bound = ("upper", interval.upper) if upper_side else ("lower", interval.lower)
    other_side, other = ("lower", interval.lower) if upper_side else ("upper", interval.upper)
    if decision == "pass":
        return f"{head}, {conf} {side} bound {_fmt(bound)}{u} {op} {threshold:g} (n={n}): pass"
    if decision == "fail":
        return (
            f"{head}, {conf} {other_side} bound {_fmt(other)}{u} violates {op} {threshold:g}"
            f" (n={n}): fail"
        )
    more = f", about {needed} samples would decide" if needed is not None else ""
    if bound is None:
        return (
            f"{head}, too few samples for a {conf} {side} bound, cannot show {op} {threshold:g}"
            f" (n={n}): inconclusive{more}"
        )
    return (
        f"{head}, {conf} bounds [{_fmt(interval.lower)}, {_fmt(interval.upper)}]{u} straddle"
        f" {threshold:g} (n={n}): inconclusive{more}"
    )


def _samples_needed(n: int, decides: Callable[[int], bool]) -> int | None:
    """Smallest m > n for which `decides(m)` holds, by doubling then bisection.

    About, not exact: ranks are discrete, so `decides` is monotone only roughly.
    """
    hi = max(n, 1) * 2
    while not decides(hi):
        if hi >= _MAX_SAMPLES_NEEDED:
            return None
        hi = min(hi * 2, _MAX_SAMPLES_NEEDED)
    lo = n  # does not decide (the caller is inconclusive at n)
    while hi - lo > 1:
        mid = (lo + hi) // 2
        lo, hi = (lo, mid) if decides(mid) else (mid, hi)
    return hi


def _rank_decides(n: int, q: float, alpha: float, share_below: float) -> bool:
    """Would n values with `share_below` of them on the low side of the threshold decide?

    In ranks: X_(u) is on the low side when at least u values are, X_(l) on the high side when
    fewer than l are; either way one bound has crossed the threshold.
    """
    lo, up = order_statistic_ranks(n, q, alpha)
    below = share_below * n
    return (up is not None and below >= up) or (lo is not None and below < lo)


def judge_quantile(
    values: Sequence[float] | NDArray[np.float64],
    q: float,
    op: Op,
    threshold: float,
    alpha: float,
    *,
    label: str | None = None,
    unit: str = "",
) -> Judgement:
    """Judge "q-quantile op threshold" from a sample; `label` defaults to "p95" for q=0.95."""
    interval = quantile_interval(values, q, alpha)
    name = label if label is not None else f"p{100 * q:g}"
    if interval.n == 0:
        return Judgement("inconclusive", interval, threshold, op, f"{name}: no samples", None)
    decision = _decide(interval, op, threshold)
    needed: int | None = None
    if decision == "inconclusive":
        a = np.asarray(values, dtype=np.float64)
        # The empirical share on the low side of the threshold stands in for the population's;
        # "<" and ">=" count a value equal to the threshold on the high side.
        below = float(np.mean(a < threshold if op in ("<", ">=") else a <= threshold))
        if below != q:
            needed = _samples_needed(interval.n, lambda m: _rank_decides(m, q, alpha, below))
    reason = _reason(name, unit, interval, op, threshold, decision, needed)
    return Judgement(decision, interval, threshold, op, reason, needed)


def judge_proportion(
    successes: int,
    n: int,
    op: Op,
    threshold: float,
    alpha: float,
    *,
    label: str = "share",
) -> Judgement:
    """Judge "proportion op threshold" (an error rate, a primary share) from successes out of n."""
    interval = proportion_interval(successes, n, alpha)
    if n == 0:
        return Judgement("inconclusive", interval, threshold, op, f"{label}: no samples", None)
    decision = _decide(interval, op, threshold)
    needed: int | None = None
    p = successes / n
    if decision == "inconclusive" and p != threshold:

        def decides(m: int) -> bool:
            lower, upper = _clopper_pearson(p * m, m, alpha)
            probe = Interval(n=m, estimate=p, lower=lower, upper=upper, confidence=1 - alpha)
            return _decide(probe, op, threshold) != "inconclusive"

        needed = _samples_needed(n, decides)
    reason = _reason(label, "", interval, op, threshold, decision, needed)
    return Judgement(decision, interval, threshold, op, reason, needed)
