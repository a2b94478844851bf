"""Change points across the nightly history: where a figure's level shifted, by MongoDB's
e-divisive means (signal-processing-algorithms), the method its performance CI uses.

A change point is the index of the first run of a new segment. Series shorter than
`MIN_RUNS` have none (the permutation test cannot be significant on fewer).
"""

from __future__ import annotations

import numpy as np
from signal_processing_algorithms.energy_statistics.energy_statistics import e_divisive

MIN_RUNS = 6
PVALUE = 0.05
PERMUTATIONS = 200


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
    # The permutation test draws from numpy's global generator: seeded, the page is repeatable.
    state = np.random.get_state()
    np.random.seed(seed)
    try:
        found = e_divisive(series, pvalue=PVALUE, permutations=PERMUTATIONS)
    finally:
        np.random.set_state(state)
    bounds = [0, *sorted(int(i) for i in found), len(series)]
    out = []
    for k in range(1, len(bounds) - 1):
        before = float(np.median(series[bounds[k - 1] : bounds[k]]))
        after = float(np.median(series[bounds[k] : bounds[k + 1]]))
        if before and abs(after / before - 1) >= min_shift:
            out.append(kept[bounds[k]])
    return out
