"""The label of a change between two runs, from its estimate, its confidence interval and the
smallest change that matters (d), for a figure where higher is worse (a latency, an error rate):

- same: the interval lies inside (-d, +d): any change there may be is smaller than d;
- regressed: the interval lies above 0 and the estimate is at least +d;
- improved: the interval lies below 0 and the estimate is at most -d;
- inconclusive: anything else.

One rule for every figure: latencies compare relative changes (d in %), rates absolute ones (d in
percentage points); the caller picks the unit.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Literal

Label = Literal["regressed", "improved", "same", "inconclusive"]
# Which label wins when several figures (or a figure's median and p95) disagree.
_PRECEDENCE: tuple[Label, ...] = ("regressed", "improved", "inconclusive", "same")


def label_change(est: float, low: float, high: float, d: float) -> Label:
    if -d < low and high < d:
        return "same"
    if low > 0 and est >= d:
        return "regressed"
    if high < 0 and est <= -d:
        return "improved"
    return "inconclusive"


def worst(labels: Iterable[Label]) -> Label:
    """The label that wins by _PRECEDENCE; "same" when there is none."""
    present = set(labels)
    return next((lab for lab in _PRECEDENCE if lab in present), "same")
