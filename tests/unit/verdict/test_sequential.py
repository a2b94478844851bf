"""Sequential judging measured: error rates and power of alpha spending on synthetic samples.

Each scenario replays thousands of gates at once (fixed seeds). A replay draws the samples look by
look, exactly as the load step grows them (8 equal looks up to the maximum sample), and applies
the rule of the load step (`run_sequential` here: judge each look at its spent alpha, stop at
the first pass or fail); `test_the_replay_is_run_sequential` checks, sample for sample,
that both decide alike. The measured rates are printed (run with -s to see them).

The sample sizes the claims need (alpha 0.05, 8 looks; lognormal latencies):
- p95 10% over the threshold fails >= 95% of the time within 2,400 samples at sigma 0.5, and within
  10,000 at sigma 1.0 (a heavier tail: the p95 sits closer to the bulk in share, so it needs more);
- p95 20% under the threshold passes >= 95% of the time within 600 samples at sigma 0.5 and 2,000
  at sigma 1.0 (and so within the larger maxima above);
- an error rate <= 5% with a true 5.5% fails (true 4% passes) within 40,000 requests, a share >= 0.8
  with a true 0.72 fails (true 0.96 passes) within 600.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pytest
from numpy.typing import NDArray
from scipy import stats

from harness.verdict.confidence import Judgement, Op, judge_quantile, order_statistic_ranks
from harness.verdict.sequential import SequentialPlan

PLAN = SequentialPlan(alpha=0.05, max_looks=8)


def run_sequential(
    plan: SequentialPlan,
    sample_at_look: Callable[[int], NDArray[np.float64] | list[float]],
    q: float,
    op: Op,
    threshold: float,
    *,
    unit: str = "",
) -> tuple[Judgement, int]:
    """The load step's rule on a quantile: judge looks 1..max_looks, each on every sample so far
    at that look's alpha; stop at the first pass or fail (max_looks when still inconclusive)."""
    for k in range(1, plan.max_looks + 1):
        judgement = judge_quantile(sample_at_look(k), q, op, threshold, plan.alpha_at(k), unit=unit)
        if judgement.decision != "inconclusive" or k == plan.max_looks:
            return judgement, k
    raise AssertionError("unreachable: max_looks >= 1")


REPS = 3000
Q = 0.95
PASS, INCONCLUSIVE, FAIL = 1, 0, -1


@dataclass(frozen=True)
class Rates:
    passed: float
    failed: float
    reps: int

    def __str__(self) -> str:
        return f"pass {self.passed:.4f}, fail {self.failed:.4f} (reps={self.reps})"


def look_sizes(n_max: int, plan: SequentialPlan = PLAN) -> list[int]:
    return [round(k * n_max / plan.max_looks) for k in range(1, plan.max_looks + 1)]


def lognormal_p95(sigma: float) -> float:
    return float(np.exp(sigma * stats.norm.ppf(Q)))


def replay_quantile(
    draw: Callable[[int, int], NDArray[np.float64]],
    n_max: int,
    op: Op,
    threshold: float,
    alphas: list[float],
    reps: int = REPS,
) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """Decisions (+1/0/-1) and looks of `reps` sequential gates on samples from `draw(reps, m)`.

    Only how many values lie on the low side of the threshold matters to an order-statistic
    bound (X_(u) <= T exactly when at least u values are <= T), so the replay counts them.
    """
    decision = np.zeros(reps, dtype=int)
    look = np.full(reps, len(alphas), dtype=int)
    below = np.zeros(reps, dtype=int)
    previous = 0
    for k, (n, alpha) in enumerate(zip(look_sizes(n_max), alphas, strict=True), start=1):
        fresh = draw(reps, n - previous)
        below += np.sum(fresh < threshold if op in ("<", ">=") else fresh <= threshold, axis=1)
        previous = n
        lo, up = order_statistic_ranks(n, Q, alpha)
        open_ = decision == INCONCLUSIVE
        upper_low = below >= up if up is not None else np.zeros(reps, dtype=bool)
        lower_high = below < lo if lo is not None else np.zeros(reps, dtype=bool)
        good, bad = (upper_low, lower_high) if op in ("<=", "<") else (lower_high, upper_low)
        decision[open_ & good] = PASS
        decision[open_ & ~good & bad] = FAIL
        look[open_ & (good | bad)] = k
    return decision, look


def replay_proportion(
    draw: Callable[[int, int], NDArray[np.int_]],
    n_max: int,
    op: Op,
    threshold: float,
    alphas: list[float],
    reps: int = REPS,
) -> tuple[NDArray[np.int_], NDArray[np.int_]]:
    """As `replay_quantile`, for a share: `draw(reps, m)` gives the successes of m new requests."""
    decision = np.zeros(reps, dtype=int)
    look = np.full(reps, len(alphas), dtype=int)
    x = np.zeros(reps, dtype=int)
    previous = 0
    for k, (n, alpha) in enumerate(zip(look_sizes(n_max), alphas, strict=True), start=1):
        x += draw(reps, n - previous)
        previous = n
        lower = np.where(x > 0, stats.beta.ppf(alpha, np.maximum(x, 1), n - x + 1), 0.0)
        upper = np.where(x < n, stats.beta.ppf(1 - alpha, x + 1, np.maximum(n - x, 1)), 1.0)
        if op == "<=":
            good, bad = upper <= threshold, lower > threshold
        else:
            assert op == ">="
            good, bad = lower >= threshold, upper < threshold
        open_ = decision == INCONCLUSIVE
        decision[open_ & good] = PASS
        decision[open_ & ~good & bad] = FAIL
        look[open_ & (good | bad)] = k
    return decision, look


def binomial(p: float | NDArray[np.float64], seed: int) -> Callable[[int, int], NDArray[np.int_]]:
    rng = np.random.default_rng(seed)
    return lambda reps, m: rng.binomial(m, p, size=reps)


def rates(decision: NDArray[np.int_]) -> Rates:
    return Rates(float(np.mean(decision == PASS)), float(np.mean(decision == FAIL)), decision.size)


def lognormal(sigma: float, seed: int) -> Callable[[int, int], NDArray[np.float64]]:
    rng = np.random.default_rng(seed)
    return lambda reps, m: rng.lognormal(0.0, sigma, size=(reps, m))


SPENT = [PLAN.alpha_at(k) for k in range(1, PLAN.max_looks + 1)]


# --- the plan ----------------------------------------------------------------------------------


def test_per_look_alphas_sum_to_alpha_and_grow() -> None:
    print("\nper-look alpha:", ", ".join(f"{a:.3g}" for a in SPENT))
    assert sum(SPENT) == pytest.approx(PLAN.alpha, abs=1e-12) and sum(SPENT) <= PLAN.alpha + 1e-15
    assert all(a >= 0 for a in SPENT)
    assert sorted(SPENT) == SPENT  # O'Brien-Fleming type: little early, most late
    assert SPENT[0] < 1e-6 and SPENT[-1] == pytest.approx(0.01385, abs=5e-5)
    assert SequentialPlan(alpha=0.05, max_looks=1).alpha_at(1) == 0.05


def test_plan_rejects_nonsense() -> None:
    with pytest.raises(ValueError, match="alpha"):
        SequentialPlan(alpha=0.0)
    with pytest.raises(ValueError, match="max_looks"):
        SequentialPlan(max_looks=0)
    with pytest.raises(ValueError, match=r"look must be in 1\.\.8"):
        PLAN.alpha_at(9)


# --- the driver --------------------------------------------------------------------------------


def test_stops_at_the_first_decision() -> None:
    seen: list[int] = []
    data = np.random.default_rng(1).lognormal(0.0, 0.5, 4000)

    def sample(k: int) -> NDArray[np.float64]:
        seen.append(k)
        return data[: k * 500]

    # True p95 2.28 ms, 12.5% under the threshold: unclear at first looks, clear before the last.
    judgement, look = run_sequential(PLAN, sample, Q, "<=", 2.6, unit="ms")
    assert judgement.decision == "pass" and 1 < look < 8 and seen == list(range(1, look + 1))
    assert judgement.interval.confidence == pytest.approx(1 - PLAN.alpha_at(look))
    assert (
        f"upper bound {judgement.interval.upper:.4g} ms <= 2.6 (n={look * 500})" in judgement.reason
    )


def test_a_tiny_look_alpha_does_not_read_as_certainty() -> None:
    judgement = judge_quantile(np.arange(1000.0), Q, "<=", 1e9, PLAN.alpha_at(1))
    assert judgement.decision == "pass" and "99.999997% upper bound" in judgement.reason


def test_inconclusive_at_the_last_look_stays_inconclusive() -> None:
    data = np.random.default_rng(2).lognormal(0.0, 0.5, 400)
    judgement, look = run_sequential(PLAN, lambda k: data[: k * 5], Q, "<=", 100.0)
    assert (judgement.decision, look) == ("inconclusive", 8)  # 40 values never bound a p95
    assert "too few samples" in judgement.reason


NAMES = {PASS: "pass", FAIL: "fail", INCONCLUSIVE: "inconclusive"}


def test_the_replay_is_run_sequential() -> None:
    # True p95s from 8% under to 8% over the threshold, so that every decision occurs.
    reps, n_max, sigma, threshold = 150, 1_600, 0.5, lognormal_p95(0.5)
    scale = np.linspace(0.92, 1.08, reps)[:, None]
    rng = np.random.default_rng(5)
    chunks: list[NDArray[np.float64]] = []

    def draw(r: int, m: int) -> NDArray[np.float64]:
        chunks.append(scale * rng.lognormal(0.0, sigma, size=(r, m)))
        return chunks[-1]

    decision, look = replay_quantile(draw, n_max, "<=", threshold, SPENT, reps=reps)
    samples = np.concatenate(chunks, axis=1)
    sizes = look_sizes(n_max)
    for i in range(reps):

        def sample(k: int, i: int = i) -> NDArray[np.float64]:
            return samples[i, : sizes[k - 1]]

        judgement, k = run_sequential(PLAN, sample, Q, "<=", threshold)
        assert (judgement.decision, k) == (NAMES[int(decision[i])], int(look[i]))
    assert {PASS, FAIL, INCONCLUSIVE} <= set(decision.tolist())


# --- measured error rates: percentiles ----------------------------------------------------------


@pytest.mark.parametrize(("sigma", "n_max"), [(0.5, 2_400), (1.0, 10_000)])
def test_p95_ten_percent_over_fails(sigma: float, n_max: int) -> None:
    threshold = lognormal_p95(sigma) / 1.10
    decision, look = replay_quantile(lognormal(sigma, 21), n_max, "<=", threshold, SPENT)
    measured = rates(decision)
    print(
        f"\np95 10% over, lognormal sigma {sigma}, up to {n_max} samples: {measured};"
        f" median deciding look {np.median(look[decision == FAIL]):g}"
    )
    assert measured.failed >= 0.95
    assert measured.passed <= PLAN.alpha


@pytest.mark.parametrize(
    ("sigma", "n_max"), [(0.5, 600), (0.5, 2_400), (1.0, 2_000), (1.0, 10_000)]
)
def test_p95_twenty_percent_under_passes(sigma: float, n_max: int) -> None:
    threshold = lognormal_p95(sigma) / 0.80
    decision, look = replay_quantile(lognormal(sigma, 22), n_max, "<=", threshold, SPENT)
    measured = rates(decision)
    print(
        f"\np95 20% under, lognormal sigma {sigma}, up to {n_max} samples: {measured};"
        f" median deciding look {np.median(look[decision == PASS]):g}"
    )
    assert measured.passed >= 0.95
    assert measured.failed <= PLAN.alpha


def test_p95_exactly_at_the_threshold_errs_at_most_alpha_each_way() -> None:
    # The worst case for both errors: a pass would be wrong if the p95 were a hair over, a fail
    # wrong if it were a hair under.
    decision, _ = replay_quantile(lognormal(0.5, 23), 2_400, "<=", lognormal_p95(0.5), SPENT)
    measured = rates(decision)
    print(f"\np95 at the threshold, spent alpha: {measured}")
    assert measured.passed <= PLAN.alpha and measured.failed <= PLAN.alpha


def test_full_alpha_at_every_look_would_err_too_often() -> None:
    # The planted defect: judging each of the 8 looks at alpha 0.05 (no spending).
    naive = [PLAN.alpha] * PLAN.max_looks
    decision, _ = replay_quantile(lognormal(0.5, 23), 2_400, "<=", lognormal_p95(0.5), naive)
    measured = rates(decision)
    print(f"\np95 at the threshold, full alpha at each look: {measured}")
    assert measured.passed > 2 * PLAN.alpha and measured.failed > 2 * PLAN.alpha


# --- measured error rates: shares ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("what", "op", "threshold", "bad", "good", "n_max"),
    [
        ("error rate", "<=", 0.05, 0.055, 0.04, 40_000),
        ("primary share", ">=", 0.80, 0.72, 0.96, 600),
    ],
)
def test_shares_ten_percent_worse_fail_twenty_percent_better_pass(
    what: str, op: Op, threshold: float, bad: float, good: float, n_max: int
) -> None:
    def measure(p: float, alphas: list[float], seed: int) -> Rates:
        return rates(replay_proportion(binomial(p, seed), n_max, op, threshold, alphas)[0])

    worse, better = measure(bad, SPENT, 31), measure(good, SPENT, 32)
    at, naive = measure(threshold, SPENT, 33), measure(threshold, [PLAN.alpha] * 8, 33)
    print(
        f"\n{what} {op} {threshold}, up to {n_max} requests: true {bad}: {worse};"
        f" true {good}: {better}; true {threshold}: {at}; same at full alpha per look: {naive}"
    )
    assert worse.failed >= 0.95 and worse.passed <= PLAN.alpha
    assert better.passed >= 0.95 and better.failed <= PLAN.alpha
    assert at.passed <= PLAN.alpha and at.failed <= PLAN.alpha
    assert naive.passed > PLAN.alpha
