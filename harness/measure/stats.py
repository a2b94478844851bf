"""Exact statistics of raw values: numpy percentiles over every sample, never bucketed or rounded.

Percentiles use numpy's default 'linear' method (Hyndman & Fan type 7, as in R and Excel):
the p-th percentile interpolates between the two nearest ranks, so p50 of [1, 2] is 1.5.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Final

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

PERCENTILE_METHOD: Final = "linear"
_QS = (50, 90, 95, 99)


class Distribution(BaseModel):
    """Statistics of one latency figure, in milliseconds; all None when there were no values."""

    model_config = ConfigDict(extra="ignore")

    count: int = 0
    mean: float | None = None
    min: float | None = None
    p50: float | None = None
    p90: float | None = None
    p95: float | None = None
    p99: float | None = None
    max: float | None = None

    def stat(self, name: str) -> float | None:
        value = getattr(self, name, None)
        return value if isinstance(value, float) else None


def distribution(values: Sequence[float] | NDArray[Any]) -> Distribution:
    a = np.asarray(values, dtype=np.float64)
    if a.size == 0:
        return Distribution()
    p50, p90, p95, p99 = (float(x) for x in np.percentile(a, _QS, method=PERCENTILE_METHOD))
    return Distribution(
        count=int(a.size),
        mean=float(a.mean()),
        min=float(a.min()),
        p50=p50,
        p90=p90,
        p95=p95,
        p99=p99,
        max=float(a.max()),
    )


def percentile(values: Sequence[float] | NDArray[Any], q: float) -> float | None:
    a = np.asarray(values, dtype=np.float64)
    return float(np.percentile(a, q, method=PERCENTILE_METHOD)) if a.size else None
