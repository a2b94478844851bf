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


def change_points(values: list[float | None], seed: int = 0) -> list[int]:
    """Indices into `values` where a new segment starts (None values are left out)."""
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
    return sorted(kept[int(i)] for i in found)
