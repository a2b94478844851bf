"""Recovery figures from planted per-request sequences: one request a second for 30 s, a fault
from 10 s to 20 s, and what each second's request got (docs/chaos.md, "Recovery figures")."""

from __future__ import annotations

import pytest

from harness.data.samples import Sample
from harness.measure.recovery import (
    TTFT_FLOOR_MS,
    WINDOW,
    Recovery,
    recovered_from,
    recovery,
)

T0 = 1_000_000.0
FAULT = (T0 + 10.0, T0 + 20.0)
RUN_END = T0 + 30.0

# One letter a request: P primary in time, F fallback in time, D degraded (503), E an error,
# S primary but slow (a first token far past the steady state's bound).
OK, FALLBACK, DEGRADED, ERROR, SLOW = "P", "F", "D", "E", "S"


def req(t: float, what: str, ttft: float = 30.0) -> Sample:
    served = {"P": "primary", "S": "primary", "F": "fallback", "D": "degraded"}.get(what)
    failed = what in ("D", "E")
    if what == "S":
        ttft = 5000.0
    return Sample(
        worker=0,
        seq=int(t),
        kind="chat",
        tenant="t",
        prompt_id="p",
        repeated=False,
        intended_s=T0 + t,
        sent_s=T0 + t,
        e2e_ms=ttft + 40.0,
        ttfb_ms=ttft - 10.0,
        ttft_ms=None if failed else ttft,
        status=503 if failed else 200,
        error="http" if failed else None,
        x_served_by=served,
    )


def story(before: str, during: str, after: str) -> list[Sample]:
    """One request meant at 0.5 s past each second: 10 before, 10 during, 10 after the fault."""
    letters = before + during + after
    assert len(letters) == 30
    return [req(i + 0.5, what) for i, what in enumerate(letters)]


def measure(samples: list[Sample]) -> Recovery:
    return recovery(samples, T0, RUN_END, *FAULT)


def test_immediate_failover_and_recovery_lose_nothing() -> None:
    r = measure(story("P" * 10, "F" * 10, "F" * 3 + "P" * 7))
    assert r.failover_s == pytest.approx(0.5 + 0.02)  # the first answer's headers, 20 ms in
    assert r.served_by_seen and not r.censored and r.reason == ""
    assert r.recover_s == pytest.approx(0.5)  # the first request meant after the fault
    assert (r.recovered_requests, r.recovered_misses, r.after_requests) == (10, 0, 10)
    # 0 misses in 10: the miss rate is below 1 - 0.05 ** (1 / 10) at 95%.
    assert r.recovered_miss_rate_upper == pytest.approx(1 - 0.05**0.1)
    assert r.steady is not None and r.steady.bound_ms == TTFT_FLOOR_MS  # 3 x 30 ms is noise
    assert (r.affected_requests, r.affected_misses, r.goodput_lost) == (20, 0, 0.0)
    assert r.goodput_lost_share == 0.0


def test_slow_recovery_is_timed_from_the_first_request_of_the_good_stretch() -> None:
    # Errors, then slow answers after the fault ended, then back within the steady state.
    r = measure(story("P" * 10, "E" * 10, "EES" + "P" * 7))
    assert r.failover_s is None  # nothing served by the fallback: no failover
    assert r.recover_s == pytest.approx(3.5)
    assert (r.recovered_requests, r.recovered_misses) == (7, 0)
    assert (r.affected_misses, r.goodput_lost) == (13, 13.0)
    assert r.goodput_lost_share == pytest.approx(13 / 20)


def test_a_miss_later_in_the_run_moves_the_recovery_past_it() -> None:
    # Good at first, one slow answer at 6 s: recovery is the first good request after it.
    r = measure(story("P" * 10, "F" * 10, "PPPPPP" + "S" + "PPP"))
    assert r.recover_s is None and r.censored  # only 3 requests after the miss: no window
    r = measure(story("P" * 10, "F" * 10, "PP" + "S" + "PPPPPPP"))
    assert r.recover_s == pytest.approx(3.5) and r.recovered_requests == 7


def test_never_recovering_is_censored_not_a_number() -> None:
    r = measure(story("P" * 10, "D" * 10, "D" * 10))
    assert r.failover_s == pytest.approx(0.52)  # degraded answers count as failing over
    assert r.recover_s is None and r.censored
    assert r.reason.startswith("not recovered within the 10 s observed (10 requests after")
    assert r.recovered_miss_rate_upper is None
    # Censored, the goodput lost is still counted: every request during and after.
    assert (r.goodput_lost, r.goodput_lost_share) == (20.0, 1.0)
    # Back for fewer requests than a window before the run ended: still censored.
    r = measure(story("P" * 10, "D" * 10, "D" * (10 - WINDOW + 1) + "P" * (WINDOW - 1)))
    assert r.censored and r.recover_s is None


def test_a_noisy_steady_state_allows_its_own_miss_rate() -> None:
    # 2 errors in 10 before the fault: 20%, so 1 miss in any 5 is the steady state.
    before = "PPEPPPPEPP"
    r = measure(story(before, "E" * 10, "EE" + "PPPPEPPP"))
    assert r.steady is not None and r.steady.miss_rate == pytest.approx(0.2)
    assert r.steady.allowed_misses == 1
    assert r.recover_s == pytest.approx(2.5)  # the later lone error is within the steady state
    assert (r.recovered_requests, r.recovered_misses) == (8, 1)
    # 13 missed of 20 during and after, 0.2 x 20 = 4 expected from the steady state.
    assert r.expected_misses == pytest.approx(4.0) and r.goodput_lost == pytest.approx(9.0)
    assert r.goodput_lost_share == pytest.approx(0.45)
    # Two misses in a window are more than the steady state's one: recovery waits until no
    # window from it on holds two.
    r = measure(story(before, "E" * 10, "PPEPEPPPPP"))
    assert r.recover_s == pytest.approx(3.5) and r.recovered_misses == 1


def test_fewer_misses_than_the_steady_state_predicts_lose_nothing() -> None:
    r = measure(story("PPEPPPPEPP", "F" * 10, "P" * 10))
    assert r.goodput_lost == 0.0 and r.expected_misses == pytest.approx(4.0)


def test_the_bound_is_three_times_the_steady_p95_and_counts_send_lag() -> None:
    before = [req(i + 0.5, "P", ttft=400.0) for i in range(10)]
    late = req(20.5, "P", ttft=400.0)
    late.sent_s += 1.0  # sent a second after it was meant: its first answer came 1.4 s late
    after = [late] + [req(i + 0.5, "P", ttft=1100.0) for i in range(21, 30)]
    r = measure(before + [req(i + 0.5, "F") for i in range(10, 20)] + after)
    assert r.steady is not None and r.steady.bound_ms == pytest.approx(1200.0)
    assert r.recover_s == pytest.approx(1.5)  # 1100 ms is within 3 x 400 ms; the late one not


def test_no_steady_state_leaves_recovery_and_goodput_unmeasured() -> None:
    samples = [req(i + 0.5, what) for i, what in enumerate("PPPP" + "F" * 10 + "P" * 10, 6)]
    r = measure(samples)
    assert r.steady is None and r.recover_s is None and r.goodput_lost is None
    assert not r.censored
    assert r.reason == "no steady state: 4 requests before the fault, at least 5 are needed"
    assert r.failover_s is not None


def test_a_request_in_flight_when_the_fault_began_met_the_fault() -> None:
    samples = story("P" * 10, "F" * 10, "P" * 10)
    samples[9] = req(9.5, "S")  # meant before the fault, still waiting when it began
    r = measure(samples)
    assert r.steady is not None and r.steady.requests == 9 and r.steady.misses == 0
    assert (r.affected_requests, r.affected_misses) == (21, 1)


def test_without_served_by_there_is_no_failover_figure() -> None:
    samples = story("P" * 10, "E" * 10, "P" * 10)
    for s in samples:
        s.x_served_by = None
    r = measure(samples)
    assert not r.served_by_seen and r.failover_s is None and r.recover_s == pytest.approx(0.5)


def test_recovered_from_starts_on_a_good_request() -> None:
    # With one miss allowed a window, the stretch may hold a miss but never starts on one.
    assert recovered_from([False, True, True, True, True, True], allowed=1) == 1
    assert recovered_from([True, False, False, True, True, True, True, True], 1) == 3
    assert recovered_from([True] * (WINDOW - 1), 0) is None
    assert recovered_from([], 0) is None
