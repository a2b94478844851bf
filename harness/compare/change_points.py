"""Change points across the nightly history: where a figure's level shifted, by e-divisive means
(Matteson and James) with its permutation test, as Apache Otava implements it (the maintained
successor of the change detection MongoDB and DataStax run in their performance CI).

A change point is the index of the first run of a new segment. Series shorter than
`MIN_RUNS` have none (the permutation test cannot be significant on fewer).
"""

from __future__ import annotations

import numpy as np
from otava.change_point_divisive.calculator import PairDistanceCalculator
from otava.change_point_divisive.detector import ChangePointDetector
from otava.change_point_divisive.significance_test import PermutationsSignificanceTester

MIN_RUNS = 6
PVALUE = 0.05
# Enough that the p-value's own sampling error (about 0.006 near 0.04) cannot move a clear step
# over the 0.05 line: a step after 3 of 8 runs has an exact p of about 0.04.
PERMUTATIONS = 1000


def change_points(values: list[float | None], min_shift: float = 0.0, seed: int = 0) -> list[int]:
    """Indices into `values` where a new segment starts (None values are left out). A change
    whose segments' medians differ by less than `min_shift` (relative) is left out: e-divisive
    also finds shifts of half a percent, real but too small to matter."""
    kept = [i for i, v in enumerate(values) if v is not None]
    if len(kept) < MIN_RUNS:
        return []
    series = np.array([values[i] for i in kept], dtype=float)
    if np.ptp(series) == 0:
        return []
    # The permutation test draws from its own seeded generator: the page is repeatable.
    tester = PermutationsSignificanceTester(
        max_pvalue=PVALUE,
        permutations=PERMUTATIONS,
        calculator=PairDistanceCalculator,
        seed=seed,
    )
    detector = ChangePointDetector(significance_tester=tester, calculator=PairDistanceCalculator)
    found = detector.get_change_points(series=series)
    bounds = [0, *sorted(int(cp.index) for cp in found), len(series)]
    out = []
    for k in range(1, len(bounds) - 1):
        before = float(np.median(series[bounds[k - 1] : bounds[k]]))
        after = float(np.median(series[bounds[k] : bounds[k + 1]]))
        if before and abs(after / before - 1) >= min_shift:
            out.append(kept[bounds[k]])
    return out
