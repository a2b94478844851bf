"""A scale-out's target from one replica's capacity: derived from a capacity search (stepped by
a fake replica here, no processes), refused where the profile gives a rate, and reported."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest

from harness.errors import ConfigError
from harness.load.capacity import CapacityStep, SearchPlan, search
from harness.rollout.capacity_target import derive_target
from harness.spec.loader import load_yaml_model
from harness.spec.rollout import RolloutSpec
from harness.verdict.rollout import ScaleEvent, SignalPoint, scale_out_check

SLOS = ["ttft_p95_ms<=500", "error_rate<=0.01"]


def fake_replica(capacity: float) -> Callable[[float], CapacityStep]:
    """A stand-in for one step of load: passes at or below `capacity`, fails above it."""

    def step(rate: float) -> CapacityStep:
        ok = rate <= capacity
        return CapacityStep(
            rate_rps=rate,
            outcome="passed" if ok else "failed",
            reasons=[] if ok else ["ttft_p95_ms = 900 violates <= 500"],
            ttft_p95_ms=100.0 if ok else 900.0,
        )

    return step


def test_the_target_is_the_share_of_the_highest_rate_that_kept_the_slo() -> None:
    plan = SearchPlan(start_rps=10, max_steps=3, precision=0.5)
    result = search(fake_replica(12.0), plan, SLOS)
    assert [s.rate_rps for s in result.steps] == [10, 20, 15]
    derived = derive_target(result, 0.7, 500)
    assert derived.target == pytest.approx(7.0)
    assert derived.basis.startswith("target 7 req/s per replica: 70% of 10 req/s")
    assert "kept TTFT p95 <= 500 ms" in derived.basis
    assert "its capacity lies between 10 and 15 req/s" in derived.basis
    assert "3 search steps" in derived.basis


def test_no_rate_kept_the_slo_no_target() -> None:
    plan = SearchPlan(start_rps=2, max_steps=3)
    derived = derive_target(search(fake_replica(0.1), plan, SLOS), 0.7, 500)
    assert derived.target is None
    assert derived.basis.startswith("no target from capacity")
    # The scale-out check fails on it, with that reason: the burst tested nothing.
    check = scale_out_check([], [], None, 60.0, derived.basis)
    assert check.outcome == "fail" and check.reasons == [derived.basis]
    assert check.measured["target_from"] == "capacity"


def test_a_search_that_never_failed_says_the_capacity_is_at_least_that() -> None:
    plan = SearchPlan(start_rps=4, max_rps=8, max_steps=3)
    ceiling = "the stack's rate limit of 480 requests a minute a key"
    derived = derive_target(search(fake_replica(100.0), plan, SLOS), 0.5, 300, ceiling)
    assert derived.target == pytest.approx(4.0)
    assert f"its capacity is at least that: the search stops at {ceiling}" in derived.basis


def test_the_scale_out_check_says_where_its_target_came_from() -> None:
    basis = derive_target(
        search(fake_replica(12.0), SearchPlan(10, 1000, 0.05, 3, 0.5), SLOS), 0.7, 500
    )
    assert basis.target is not None
    signal = [SignalPoint(t, rps, 2) for t, rps in ((1.0, 4.0), (2.0, 12.0), (3.0, 12.0))]
    event = ScaleEvent(
        "out",
        "primary-2",
        3,
        decided_s=4.0,
        started_s=4.0,
        crossed_s=2.0,
        ready_s=4.2,
        in_rotation_s=4.3,
        serving_s=4.5,
    )
    check = scale_out_check(signal, [event], basis.target, 60.0, basis.basis)
    assert check.outcome == "pass" and check.reasons[0].endswith(basis.basis)
    assert check.measured["target_rps_per_replica"] == 7.0
    # A burst that never crosses the derived target fails, and still says where it came from.
    calm = [SignalPoint(1.0, 5.0, 2)]
    failed = scale_out_check(calm, [], basis.target, 60.0, basis.basis)
    assert failed.outcome == "fail" and "never crossed the target of 7" in failed.reasons[0]
    assert failed.reasons[-1] == basis.basis
    fixed = scale_out_check(signal, [event], 6.0, 60.0)
    assert fixed.measured["target_from"] == "profile"


def test_a_capacity_block_beside_a_fixed_target_is_refused(tmp_path: Path) -> None:
    p = tmp_path / "r.yaml"
    p.write_text(
        "kind: rollout\nstrategy: scale_out\nautoscale:\n  target_rps_per_replica: 6\n"
        "  capacity: {share: 0.5}\n"
    )
    with pytest.raises(ConfigError) as err:
        load_yaml_model(RolloutSpec, p)
    assert "r.yaml" in str(err.value) and "from_capacity" in str(err.value)
    p.write_text("kind: rollout\nautoscale: {target_rps_per_replica: fast}\n")
    with pytest.raises(ConfigError) as err:
        load_yaml_model(RolloutSpec, p)
    assert "target_rps_per_replica" in str(err.value) and "or from_capacity" in str(err.value)
