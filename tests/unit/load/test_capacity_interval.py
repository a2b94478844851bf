"""The capacity search answers with an interval of rates: the highest shown to pass and the lowest
shown to fail, each with its goodput share and bound; inconclusive steps narrow nothing."""

from __future__ import annotations

from collections.abc import Callable

from harness.load.capacity import CapacityStep, SearchPlan, StepOutcome, search


def fake(
    boundary: float, undecided: float = 0.0
) -> tuple[Callable[[float], CapacityStep], list[float]]:
    """A server whose goodput holds below `boundary`; within `undecided` (relative) of it a
    step's bounds straddle the target."""
    tried: list[float] = []

    def run_at(rate: float) -> CapacityStep:
        tried.append(rate)
        outcome: StepOutcome
        if abs(rate - boundary) <= undecided * boundary:
            outcome, share, lower, upper = "inconclusive", 0.9, 0.85, 0.95
        elif rate < boundary:
            outcome, share, lower, upper = "passed", 1.0, 0.93, 1.0
        else:
            outcome, share, lower, upper = "failed", 0.4, 0.3, 0.5
        return CapacityStep(
            rate_rps=rate,
            outcome=outcome,
            reasons=[],
            goodput_share=share,
            goodput_n=int(rate * 3),
            goodput_lower=lower,
            goodput_upper=upper,
            goodput_confidence=0.95,
        )

    return run_at, tried


def test_the_answer_is_the_highest_pass_and_the_lowest_fail_with_their_bounds() -> None:
    run_at, tried = fake(boundary=16.9)
    r = search(run_at, SearchPlan(start_rps=10, max_steps=10, precision=0.1), [], 0.9)
    assert tried == [10, 20, 15, 17.5, 16.25] and r.bounded_by == "slo"
    assert r.interval is not None and r.goodput_target == 0.9
    passed, failed = r.interval.passed, r.interval.failed
    assert passed is not None and failed is not None
    assert (passed.rate_rps, passed.goodput_share, passed.goodput_bound) == (16.25, 1.0, 0.93)
    assert (failed.rate_rps, failed.goodput_share, failed.goodput_bound) == (17.5, 0.4, 0.5)
    assert r.capacity_rps == 16.25 and r.interval.inconclusive_rps == []
    assert r.explanation == (
        "capacity between 16.25 req/s (goodput 100.0% of 48, 95% lower bound 93.0%) and "
        "17.5 req/s (goodput 40.0% of 52, 95% upper bound 50.0%): goodput >= 90% holds at the "
        "first and fails at the second"
    )


def test_an_inconclusive_step_narrows_nothing_and_the_search_goes_around_it() -> None:
    run_at, tried = fake(boundary=16.0, undecided=0.05)
    r = search(run_at, SearchPlan(start_rps=8, max_steps=10, precision=0.1), [], 0.9)
    # 16 decided nothing: the search doubles past it, then splits the gaps it leaves.
    assert tried[:3] == [8, 16, 32]
    assert r.interval is not None and r.interval.passed and r.interval.failed
    lo, hi = r.interval.passed.rate_rps, r.interval.failed.rate_rps
    assert lo < 16 * 0.95 and hi > 16 * 1.05  # the undecided band stays inside the interval
    assert r.interval.inconclusive_rps and all(lo < x < hi for x in r.interval.inconclusive_rps)
    assert "narrow nothing" in r.explanation and r.bounded_by == "slo"


def test_an_inconclusive_first_step_is_no_failure() -> None:
    # Too few requests at the first rate to show the target: not a fail, so the search doubles.
    tried: list[float] = []

    def run_at(rate: float) -> CapacityStep:
        tried.append(rate)
        outcome: StepOutcome = "inconclusive" if rate < 4 else "passed" if rate < 10 else "failed"
        return CapacityStep(rate_rps=rate, outcome=outcome, reasons=[])

    r = search(run_at, SearchPlan(start_rps=2, max_steps=8, precision=0.2), ["ttft_ms<=1"])
    assert tried[:3] == [2, 4, 8] and r.capacity_rps is not None and 8 <= r.capacity_rps < 10
    assert r.interval is not None and r.interval.passed is not None
    assert r.interval.passed.goodput_share is None  # an SLO search has no share to show
