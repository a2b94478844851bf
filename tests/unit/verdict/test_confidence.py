"""Confidence bounds of quantiles and shares, and the three-way decision built on them.

Coverage is measured on synthetic samples (fixed seeds) and also computed exactly from the
binomial distribution; the measured figures are printed (run with -s to see them).
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from scipy import stats

from harness.verdict.confidence import (
    Op,
    judge_proportion,
    judge_quantile,
    order_statistic_ranks,
    proportion_interval,
    quantile_interval,
)

ALPHA = 0.05


# --- smallest samples ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("q", "alpha", "n"), [(0.95, 0.05, 59), (0.99, 0.05, 299), (0.5, 0.05, 5), (0.95, 0.01, 90)]
)
def test_the_upper_bound_starts_at_the_smallest_sample_that_has_one(
    q: float, alpha: float, n: int
) -> None:
    assert quantile_interval(np.arange(n, dtype=float), q, alpha).upper == n - 1  # the maximum
    assert quantile_interval(np.arange(n - 1, dtype=float), q, alpha).upper is None


def test_no_samples_is_inconclusive_with_its_reason() -> None:
    interval = quantile_interval([], 0.95, ALPHA)
    assert (interval.n, interval.estimate, interval.lower, interval.upper) == (0, None, None, None)
    j = judge_quantile([], 0.95, "<=", 1000.0, ALPHA)
    assert j.decision == "inconclusive" and "no samples" in j.reason and j.samples_needed is None
    p = judge_proportion(0, 0, "<=", 0.01, ALPHA, label="error rate")
    assert p.decision == "inconclusive" and p.reason == "error rate: no samples"
    assert proportion_interval(0, 0, ALPHA).estimate is None


def test_too_few_samples_cannot_pass_however_fast() -> None:
    fast = np.full(58, 1.0)
    j = judge_quantile(fast, 0.95, "<=", 1000.0, ALPHA, unit="ms")
    assert j.interval.upper is None and j.decision == "inconclusive"
    assert "too few samples" in j.reason and "n=58" in j.reason
    # About how many would decide: the 59 that make the maximum an upper bound.
    assert j.samples_needed == 59
    assert judge_quantile(np.full(59, 1.0), 0.95, "<=", 1000.0, ALPHA).decision == "pass"


def test_ties_bound_at_the_tied_value() -> None:
    same = np.full(100, 5.0)
    interval = quantile_interval(same, 0.95, ALPHA)
    assert interval.lower == interval.upper == interval.estimate == 5.0
    assert judge_quantile(same, 0.95, "<=", 5.0, ALPHA).decision == "pass"
    assert judge_quantile(same, 0.95, "<", 5.0, ALPHA).decision == "fail"
    assert judge_quantile(same, 0.95, ">=", 5.0, ALPHA).decision == "pass"
    assert judge_quantile(same, 0.95, ">", 5.0, ALPHA).decision == "fail"


def test_ranks_are_the_binomial_ones() -> None:
    # p95 of 100 values: X_(91) and X_(99); the median of 200: X_(88) and X_(113).
    assert order_statistic_ranks(100, 0.95, ALPHA) == (91, 99)
    assert order_statistic_ranks(200, 0.5, ALPHA) == (88, 113)
    assert order_statistic_ranks(0, 0.95, ALPHA) == (None, None)
    # The lower bound of p99 needs (1 - 0.99)**n <= alpha: never for n=1.
    assert order_statistic_ranks(1, 0.99, ALPHA) == (1, None)
    assert order_statistic_ranks(1, 0.01, ALPHA) == (None, 1)


@pytest.mark.parametrize("bad_q", [0.0, 1.0, 95.0, -0.5])
def test_q_is_a_fraction(bad_q: float) -> None:
    with pytest.raises(ValueError, match="q must be a fraction"):
        quantile_interval([1.0, 2.0], bad_q, ALPHA)


@pytest.mark.parametrize("bad_alpha", [-0.1, 0.5, 5.0])
def test_alpha_is_one_sided_and_small(bad_alpha: float) -> None:
    with pytest.raises(ValueError, match="alpha"):
        quantile_interval([1.0, 2.0], 0.5, bad_alpha)
    with pytest.raises(ValueError, match="alpha"):
        proportion_interval(1, 2, bad_alpha)


def test_nan_is_no_sample_and_zero_alpha_bounds_nothing() -> None:
    with pytest.raises(ValueError, match="NaN"):
        quantile_interval([1.0, float("nan")], 0.5, ALPHA)
    # An early sequential look may spend alpha 0: nothing is bounded, nothing decided.
    assert judge_quantile(np.arange(1000.0), 0.95, "<=", 1e9, 0.0).decision == "inconclusive"


def test_proportion_counts_must_make_sense() -> None:
    with pytest.raises(ValueError, match="successes"):
        proportion_interval(5, 3, ALPHA)
    with pytest.raises(ValueError, match="successes"):
        proportion_interval(-1, 3, ALPHA)


@given(
    st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=400),
    st.sampled_from([0.5, 0.9, 0.95, 0.99]),
)
def test_bounds_bracket_the_sample_quantile(values: list[float], q: float) -> None:
    # They bracket the order statistic X_(ceil(nq)); the reported 'linear' estimate interpolates
    # and may sit just outside with a handful of values (n=2: p99 = 0.99 below a lower bound of 1).
    interval = quantile_interval(values, q, ALPHA)
    order_statistic = float(np.percentile(values, 100 * q, method="inverted_cdf"))
    if interval.lower is not None:
        assert interval.lower <= order_statistic
    if interval.upper is not None:
        assert order_statistic <= interval.upper


# --- coverage ----------------------------------------------------------------------------------


@pytest.mark.parametrize(("q", "n"), [(0.5, 200), (0.95, 200), (0.99, 400)])
def test_quantile_bounds_cover_at_least_the_nominal_level(q: float, n: int) -> None:
    reps = 20_000
    rng = np.random.default_rng(7)
    sigma = 0.5
    true_q = float(np.exp(sigma * stats.norm.ppf(q)))  # lognormal(0, sigma)
    samples = np.sort(rng.lognormal(0.0, sigma, size=(reps, n)), axis=1)
    lo, up = order_statistic_ranks(n, q, ALPHA)
    assert lo is not None and up is not None
    # The function under test gives exactly these order statistics (checked on some rows).
    for row in samples[:50]:
        interval = quantile_interval(row, q, ALPHA)
        assert (interval.lower, interval.upper) == (row[lo - 1], row[up - 1])
    lower_cover = float(np.mean(samples[:, lo - 1] <= true_q))
    upper_cover = float(np.mean(samples[:, up - 1] >= true_q))
    exact_lower = 1 - float(stats.binom.cdf(lo - 1, n, q))
    exact_upper = float(stats.binom.cdf(up - 1, n, q))
    print(
        f"\np{100 * q:g} n={n}: upper bound covers {upper_cover:.4f} (exact {exact_upper:.4f}),"
        f" lower {lower_cover:.4f} (exact {exact_lower:.4f}), nominal {1 - ALPHA}, reps={reps}"
    )
    assert exact_lower >= 1 - ALPHA and exact_upper >= 1 - ALPHA
    assert lower_cover >= 1 - ALPHA and upper_cover >= 1 - ALPHA


def test_one_rank_lower_would_undercover() -> None:
    # The planted defect the rank arithmetic must avoid: X_(u-1) as the upper bound.
    n, q = 200, 0.95
    _, up = order_statistic_ranks(n, q, ALPHA)
    assert up is not None
    assert float(stats.binom.cdf(up - 2, n, q)) < 1 - ALPHA <= float(stats.binom.cdf(up - 1, n, q))


@pytest.mark.parametrize(("p", "n"), [(0.01, 500), (0.05, 200), (0.5, 60), (0.9, 100)])
def test_clopper_pearson_covers_at_least_the_nominal_level(p: float, n: int) -> None:
    reps = 20_000
    counts = np.random.default_rng(11).binomial(n, p, size=reps)
    bounds = {x: proportion_interval(int(x), n, ALPHA) for x in np.unique(counts)}
    lower = np.array([bounds[x].lower for x in counts], dtype=float)
    upper = np.array([bounds[x].upper for x in counts], dtype=float)
    lower_cover, upper_cover = float(np.mean(lower <= p)), float(np.mean(upper >= p))
    print(
        f"\nshare {p} n={n}: upper bound covers {upper_cover:.4f}, lower {lower_cover:.4f},"
        f" nominal {1 - ALPHA}, reps={reps}"
    )
    assert lower_cover >= 1 - ALPHA and upper_cover >= 1 - ALPHA


def test_clopper_pearson_extremes() -> None:
    none = proportion_interval(0, 100, ALPHA)
    assert none.lower == 0.0 and none.upper == pytest.approx(1 - ALPHA ** (1 / 100))
    every = proportion_interval(100, 100, ALPHA)
    assert every.upper == 1.0 and every.lower == pytest.approx(ALPHA ** (1 / 100))


# --- decisions ---------------------------------------------------------------------------------

# 1..200: p95 = 190.05, 95% bounds X_(185) = 185 and X_(196) = 196.
STEPS = np.arange(1.0, 201.0)


@pytest.mark.parametrize(
    ("op", "threshold", "decision"),
    [
        ("<=", 196.0, "pass"),
        ("<", 196.0, "inconclusive"),
        ("<", 196.5, "pass"),
        ("<=", 190.0, "inconclusive"),
        ("<=", 184.9, "fail"),
        ("<", 185.0, "fail"),
        ("<=", 185.0, "inconclusive"),
        (">=", 185.0, "pass"),
        (">", 185.0, "inconclusive"),
        (">", 184.0, "pass"),
        (">=", 196.1, "fail"),
        (">", 196.0, "fail"),
        (">=", 196.0, "inconclusive"),
    ],
)
def test_quantile_decision_by_op(op: Op, threshold: float, decision: str) -> None:
    interval = quantile_interval(STEPS, 0.95, ALPHA)
    assert (interval.lower, interval.upper) == (185.0, 196.0)
    assert interval.estimate == pytest.approx(190.05)
    assert judge_quantile(STEPS, 0.95, op, threshold, ALPHA).decision == decision


def test_reason_names_n_estimate_bound_and_threshold() -> None:
    j = judge_quantile(STEPS, 0.95, "<=", 1000.0, ALPHA, label="ttft p95", unit="ms")
    assert j.reason == "ttft p95 = 190 ms, 95% upper bound 196 ms <= 1000 (n=200): pass"
    j = judge_quantile(STEPS, 0.95, "<=", 100.0, ALPHA, unit="ms")
    assert j.reason == "p95 = 190 ms, 95% lower bound 185 ms violates <= 100 (n=200): fail"
    j = judge_quantile(STEPS, 0.95, "<=", 192.0, ALPHA, unit="ms")
    assert j.samples_needed is not None and j.samples_needed > 200
    assert j.reason == (
        "p95 = 190 ms, 95% bounds [185, 196] ms straddle 192 (n=200): inconclusive,"
        f" about {j.samples_needed} samples would decide"
    )


@pytest.mark.parametrize(
    ("successes", "op", "threshold", "decision"),
    [
        (0, "<=", 0.05, "pass"),  # 0 of 100 errors: upper 0.0295
        (3, "<=", 0.05, "inconclusive"),
        (12, "<=", 0.05, "fail"),  # lower 0.0703
        (95, ">=", 0.89, "pass"),  # share 0.95: lower 0.898
        (85, ">=", 0.9, "inconclusive"),
        (80, ">=", 0.9, "fail"),  # upper 0.87
        (100, ">", 0.96, "pass"),
        (100, "<", 0.9, "fail"),
    ],
)
def test_proportion_decision_by_op(successes: int, op: Op, threshold: float, decision: str) -> None:
    assert judge_proportion(successes, 100, op, threshold, ALPHA).decision == decision


def test_samples_needed_would_decide_if_the_estimate_held() -> None:
    j = judge_proportion(3, 100, "<=", 0.05, ALPHA, label="error rate")
    assert j.decision == "inconclusive" and j.samples_needed is not None
    m = j.samples_needed
    assert judge_proportion(round(0.03 * m) - 1, m, "<=", 0.05, ALPHA).decision == "pass"
    half = m // 2
    assert judge_proportion(round(0.03 * half), half, "<=", 0.05, ALPHA).decision == "inconclusive"
    # Estimate exactly at the threshold: no sample size decides.
    assert judge_proportion(5, 100, "<=", 0.05, ALPHA).samples_needed is None


def test_samples_needed_for_a_quantile_is_about_right() -> None:
    rng = np.random.default_rng(3)
    threshold = float(np.exp(0.5 * stats.norm.ppf(0.95))) * 1.1  # true p95 10% under
    j = judge_quantile(rng.lognormal(0.0, 0.5, 150), 0.95, "<=", threshold, ALPHA)
    assert j.decision == "inconclusive" and j.samples_needed is not None
    bigger = rng.lognormal(0.0, 0.5, 4 * j.samples_needed)
    assert judge_quantile(bigger, 0.95, "<=", threshold, ALPHA).decision == "pass"
