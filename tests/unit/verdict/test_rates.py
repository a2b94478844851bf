"""A rate of two runs judged in percentage points: Newcombe's interval against published values,
and the labels (regressed / improved / same / inconclusive) as for latency."""

from __future__ import annotations

import pytest

from harness.verdict.labels import worst
from harness.verdict.rates import Count, compare_rate, newcombe_interval


@pytest.mark.parametrize(
    ("a", "b", "low", "high"),
    [
        # Newcombe (1998), Statistics in Medicine 17:873-890, table II, method 10.
        (Count(48, 80), Count(56, 70), 0.0524, 0.3339),
        (Count(3, 10), Count(9, 10), 0.1705, 0.8090),
    ],
)
def test_newcombe_interval_matches_the_published_values(
    a: Count, b: Count, low: float, high: float
) -> None:
    assert newcombe_interval(a, b) == pytest.approx((low, high), abs=5e-5)


def test_no_errors_to_three_percent_is_regressed() -> None:
    r = compare_rate("error_rate", Count(0, 600), Count(17, 584), min_effect_pp=1.0)
    assert r.label == "regressed"
    assert r.diff_pp == pytest.approx(2.91, abs=0.01)
    assert r.low_pp is not None and r.low_pp > 1.0
    assert r.fisher_p is not None and r.fisher_p < 1e-4
    assert r.reason.startswith(
        "error rate 0.0% (0/600) -> 2.9% (17/584), +2.9 pp, 95% CI [+1.7, +4.6] pp"
    )
    assert r.reason.endswith("min effect 1 pp: regressed")


def test_the_mirror_image_is_improved() -> None:
    r = compare_rate("error_rate", Count(17, 584), Count(0, 600), min_effect_pp=1.0)
    assert r.label == "improved" and r.high_pp is not None and r.high_pp < 0


@pytest.mark.parametrize(
    ("a", "b", "label"),
    [
        (Count(0, 600), Count(0, 584), "same"),  # 0 of 600 bounds the rate below 0.7%
        (Count(6, 600), Count(6, 600), "inconclusive"),  # 1% each: the interval is +-1.3 pp
        (Count(50, 5000), Count(50, 5000), "same"),
        (Count(0, 600), Count(5, 600), "inconclusive"),  # higher for sure, maybe by < 1 pp
        (Count(0, 20), Count(1, 20), "inconclusive"),  # too few requests to say
    ],
)
def test_equal_or_small_changes_are_not_regressed(a: Count, b: Count, label: str) -> None:
    r = compare_rate("fallback_share", a, b, min_effect_pp=1.0)
    assert r.label == label, r.reason
    if label == "inconclusive":
        assert r.samples_needed is not None and r.samples_needed > min(a.n, b.n)
        assert "requests per run would decide" in r.reason


def test_requests_needed_come_from_the_interval_itself() -> None:
    # No error in either run: Wilson's bound 3.84 / (n + 3.84) falls below 1 pp at n = 381,
    # twice as soon as a 1/sqrt(n) extrapolation of the interval would say.
    r = compare_rate("error_rate", Count(0, 185), Count(0, 191), min_effect_pp=1.0)
    assert r.label == "inconclusive" and r.samples_needed == 381


def test_the_minimum_effect_decides_what_matters() -> None:
    # +2.9 pp, sure to lie within [+1.7, +4.6]: inside +-5 pp is no change that matters.
    r = compare_rate("degraded_share", Count(0, 600), Count(17, 584), min_effect_pp=5.0)
    assert r.label == "same" and "min effect 5 pp" in r.reason


def test_a_run_without_the_count_is_inconclusive_with_the_reason() -> None:
    r = compare_rate("fallback_share", Count(0, 600), None, min_effect_pp=1.0)
    assert r.label == "inconclusive" and r.reason == "fallback share: not recorded in run B"
    r = compare_rate("error_rate", Count(0, 0), Count(0, 0), min_effect_pp=1.0)
    assert r.reason == "error rate: no requests in run A, no requests in run B"
    assert r.diff_pp is None and r.fisher_p is None


def test_worst_label_wins() -> None:
    assert worst(["same", "inconclusive", "improved"]) == "improved"
    assert worst(["same", "regressed"]) == "regressed"
    assert worst([]) == "same"
