"""Load profiles and open-loop arrival schedules: counts, partition across workers, determinism."""

from __future__ import annotations

import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from harness.load.arrivals import arrival_offsets
from harness.load.profile import Profile, Segment, build_profile
from harness.spec.load import OpenLoop, Shape


def test_steady_profile_total_is_rate_times_duration() -> None:
    p = build_profile(Shape(), 10.0, 30.0)
    assert p.duration_s == 30 and p.total() == pytest.approx(300)
    assert p.level_at(0) == 10 and p.level_at(29.9) == 10 and p.level_at(31) == 0


def test_ramp_step_spike_shapes() -> None:
    ramp = build_profile(Shape(kind="ramp", start_fraction=0.0, ramp_s=10), 10.0, 20.0)
    assert ramp.level_at(5) == pytest.approx(5) and ramp.level_at(15) == 10
    assert ramp.total() == pytest.approx(50 + 100)
    step = build_profile(Shape(kind="step", steps=4), 8.0, 40.0)
    assert [step.level_at(t) for t in (1, 11, 21, 31)] == [2, 4, 6, 8]
    spike = build_profile(
        Shape(kind="spike", spike_multiplier=3, spike_at_s=10, spike_s=5), 2.0, 30.0
    )
    assert [spike.level_at(t) for t in (5, 12, 20)] == [2, 6, 2]
    assert spike.peak == 6


@given(
    st.lists(
        st.tuples(st.floats(0.1, 20), st.floats(0, 50), st.floats(0, 50)), min_size=1, max_size=5
    ),
    st.floats(0, 1),
)
def test_time_of_inverts_cumulative(parts: list[tuple[float, float, float]], frac: float) -> None:
    p = Profile(tuple(Segment(d, a, b) for d, a, b in parts))
    x = frac * p.total()
    t = p.time_of(x)
    if p.total() == 0:
        return
    assert t is not None
    assert p.cumulative(t) == pytest.approx(x, rel=1e-6, abs=1e-6)


def test_constant_arrivals_are_evenly_spaced_and_exact_in_count() -> None:
    p = build_profile(Shape(), 4.0, 10.0)
    offs = list(arrival_offsets(OpenLoop(rate_rps=4, arrival="constant"), p, 0, 1, seed=1))
    assert len(offs) == 40  # 4 a second for 10 s
    assert offs[:3] == pytest.approx([0.0, 0.25, 0.5])


@pytest.mark.parametrize("arrival", ["constant", "burst"])
def test_workers_partition_the_global_schedule(arrival: str) -> None:
    model = OpenLoop(rate_rps=7, arrival=arrival, burst_size=5)  # type: ignore[arg-type]
    p = build_profile(Shape(kind="ramp", start_fraction=0.2), 7.0, 12.0)
    whole = list(arrival_offsets(model, p, 0, 1, seed=3))
    parts = sorted(
        itertools.chain.from_iterable(arrival_offsets(model, p, k, 3, seed=3) for k in range(3))
    )
    assert parts == pytest.approx(whole)


def test_bursts_put_groups_at_one_instant() -> None:
    p = build_profile(Shape(), 10.0, 4.0)
    offs = list(
        arrival_offsets(OpenLoop(rate_rps=10, arrival="burst", burst_size=20), p, 0, 1, seed=1)
    )
    assert len(offs) == 40
    assert set(offs) == {0.0, 2.0}


def test_poisson_is_seeded_and_near_the_rate() -> None:
    model = OpenLoop(rate_rps=50, arrival="poisson")
    p = build_profile(Shape(), 50.0, 100.0)
    a = list(arrival_offsets(model, p, 0, 2, seed=7))
    assert a == list(arrival_offsets(model, p, 0, 2, seed=7))
    assert a != list(arrival_offsets(model, p, 1, 2, seed=7))
    b = list(arrival_offsets(model, p, 1, 2, seed=7))
    assert abs(len(a) + len(b) - 5000) < 5 * 5000**0.5  # 5 sigma
    assert all(x < y for x, y in itertools.pairwise(a))


def test_bad_worker_index_is_rejected() -> None:
    with pytest.raises(ValueError, match="worker index"):
        next(arrival_offsets(OpenLoop(), build_profile(Shape(), 1, 1), 2, 2, seed=1))
