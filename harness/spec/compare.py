"""How two runs are compared (`harness compare`, `harness nightly`): the smallest change that
matters, how sure a label must be, and which figures block a nightly run when they regress."""

from __future__ import annotations

from typing import Literal, get_args

from pydantic import Field

from harness.spec.base import Strict

LatencyMetric = Literal["ttft_ms", "itl_ms", "tpot_ms", "e2e_ms", "ttfb_ms"]
# Shares of a run's requests (names as in the gate's SLOs): errors of all requests; fallback and
# degraded (X-Served-By) of the requests answered with an HTTP status.
RateMetric = Literal["error_rate", "fallback_share", "degraded_share"]
CompareMetric = Literal[LatencyMetric, RateMetric]
RATE_METRICS: tuple[RateMetric, ...] = get_args(RateMetric)


class CompareSpec(Strict):
    # A relative change of a median or p95 smaller than this is no change ("same" when the
    # confidence interval of the change lies inside +-min_effect_pct).
    min_effect_pct: float = Field(10.0, gt=0, lt=100)
    # The same for the rates, in percentage points: a relative change is undefined from 0%.
    min_effect_pp: float = Field(1.0, gt=0, lt=100)
    # Two-sided confidence level of the intervals.
    level: float = Field(0.95, gt=0.5, lt=1)
    resamples: int = Field(2000, ge=200, le=100_000)
    # Which statistics of a latency figure decide its label (both are always reported). A
    # runner shared with other work can stall for seconds, which moves a same build's p95 by a
    # third and its median by nothing: `[median]` gates on what every request shows.
    statistics: tuple[Literal["median", "p95"], ...] = Field(("median", "p95"), min_length=1)
    metrics: tuple[CompareMetric, ...] = (
        "ttft_ms",
        "itl_ms",
        "tpot_ms",
        "e2e_ms",
        "error_rate",
        "fallback_share",
        "degraded_share",
    )
    # A regression of one of these fails `harness compare` (exit 1) and `harness nightly`.
    blocking: tuple[CompareMetric, ...] = (
        "ttft_ms",
        "itl_ms",
        "e2e_ms",
        "error_rate",
        "fallback_share",
        "degraded_share",
    )
    # Nightly: how many earlier runs the trend page plots and change points are sought in.
    history_window: int = Field(60, ge=5, le=10_000)
