"""Exact percentiles and SLO expressions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.measure.stats import distribution, percentile
from harness.spec.slo import aggregate_metric_names, parse_slo


def test_percentiles_are_exact_not_bucketed() -> None:
    # Locust would report 147 as 150; we keep every millisecond.
    d = distribution([147.0, 101.0, 103.0, 149.0])
    assert d.p50 == pytest.approx(125.0) and d.min == 101.0 and d.max == 149.0 and d.count == 4
    assert distribution(list(range(1, 101))).p99 == pytest.approx(99.01)
    assert distribution([]).count == 0 and distribution([]).p50 is None
    assert percentile([], 50) is None


@given(st.lists(st.floats(0, 1e6, allow_nan=False), min_size=1, max_size=200))
def test_distribution_matches_numpy(values: list[float]) -> None:
    d = distribution(values)
    assert d.p95 == pytest.approx(float(np.percentile(values, 95)))
    assert d.min is not None and d.max is not None and d.p50 is not None
    assert d.min <= d.p50 <= d.max


def test_parse_aggregate_and_per_request_slos() -> None:
    a = parse_slo("ttft_p95_ms<=500")
    assert (a.metric, a.op, a.threshold, a.scope) == ("ttft_p95_ms", "<=", 500.0, "aggregate")
    r = parse_slo(" e2e_ms < 2000 ")
    assert r.scope == "request" and r.holds(1999) and not r.holds(2000)
    assert parse_slo("error_rate<=0.01").scope == "aggregate"
    assert parse_slo("goodput>=0.9").holds(0.95)
    assert "ttft_from_intended_p99_ms" in aggregate_metric_names()


@pytest.mark.parametrize(
    ("text", "msg"),
    [
        ("ttft_p95<=5", "unknown SLO metric"),
        ("ttft_p95_ms = 5", "cannot parse"),
        ("", "cannot parse"),
    ],
)
def test_bad_slos_say_why(text: str, msg: str) -> None:
    with pytest.raises(ValueError, match=msg):
        parse_slo(text)


def test_both_inter_token_figures_and_the_default_check_figures_parse() -> None:
    assert parse_slo("itl_p95_ms<=500").scope == "aggregate"
    assert parse_slo("token_gap_p95_ms<=500").scope == "aggregate"
    assert parse_slo("achieved_ratio>=0.9").scope == "aggregate"
    assert parse_slo("itl_ms<=50").scope == "request"
    per_request_gap = parse_slo("token_gap_max_ms<=200")
    assert per_request_gap.scope == "request"
    assert parse_slo("itl_max_ms<=200") == per_request_gap  # the older name, same meaning
