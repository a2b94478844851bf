"""Sequential judging: look at a growing sample again and again without inflating the error rates.

An inconclusive percentile SLO extends the load step and is judged again on the larger sample.
Judging every look at the full alpha would give a wrong decision more chances: with 8 looks at
alpha 0.05 the chance of a wrong pass at a true p95 exactly on the threshold is well above 5%.

The method is alpha spending (Lan & DeMets 1983) with the O'Brien-Fleming-type spending function

    alpha(t) = 2 * (1 - Phi(z_{1 - alpha/2} / sqrt(t))),   t = look / max_looks,

so look k is judged at alpha_k = alpha(k / K) - alpha((k - 1) / K). The per-look alphas sum to
alpha, and by the union bound (Bonferroni; no joint distribution of the looks is needed) the
chance of a wrong pass over all looks is <= alpha, and separately of a wrong fail. The O'Brien-
Fleming shape spends almost nothing early (look 1 of 8 gets about 3e-8) and keeps most for the
last looks (look 8 of 8 gets about 0.014 of 0.05), where the sample is largest.

Sample sizes this needs with 8 equal looks at alpha 0.05 (measured in
tests/unit/verdict/test_sequential.py on lognormal latencies): a true p95 10% over the threshold
fails at least 95% of the time within 2,400 samples at sigma 0.5 and within 10,000 at sigma 1.0
(a heavier tail); one 20% under passes within 600 and 2,000. A p95 cannot pass at all before the
looks' alphas allow an upper bound: 84 samples at the last look, 338 at the first. Stop at the
first pass or fail; an inconclusive last look stays inconclusive, and what that means (warn or
fail) is the gate profile's choice.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import special


@dataclass(frozen=True)
class SequentialPlan:
    """Repeated looks at a growing sample, overall error rates kept (alpha spending + union bound).

    `alpha` is the overall probability of a wrong pass, and separately of a wrong fail.
    """

    alpha: float = 0.05
    max_looks: int = 8

    def __post_init__(self) -> None:
        if not 0.0 < self.alpha < 0.5:
            raise ValueError(f"alpha must be in (0, 0.5), got {self.alpha}")
        if self.max_looks < 1:
            raise ValueError(f"max_looks must be >= 1, got {self.max_looks}")

    def spent(self, t: float) -> float:
        """Alpha spent by information fraction in [0, 1], O'Brien-Fleming type: spent(1) = alpha."""
        if t <= 0.0:
            return 0.0
        if t >= 1.0:
            return self.alpha
        z = -float(special.ndtri(self.alpha / 2))  # the normal's isf
        return float(2.0 * special.ndtr(-z / math.sqrt(t)))  # twice its sf

    def alpha_at(self, look: int) -> float:
        """One-sided alpha of look 1..max_looks; the sum over all looks is alpha."""
        if not 1 <= look <= self.max_looks:
            raise ValueError(f"look must be in 1..{self.max_looks}, got {look}")
        k = self.max_looks
        return self.spent(look / k) - self.spent((look - 1) / k)
