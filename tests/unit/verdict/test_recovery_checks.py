"""Recovery expectations judged from measured figures (the figures' own tests, from planted
samples, are in tests/unit/measure/test_recovery.py): planted defects (a recovery too slow, one
never seen, too much good traffic lost) fail, and a figure that could not be measured never
passes."""

from __future__ import annotations

from typing import Any

import pytest

from harness.measure.recovery import Recovery, SteadyState
from harness.spec.experiment import ExperimentSpec

STEADY = SteadyState(requests=10, misses=0, miss_rate=0.0, first_answer_p95_ms=40.0, bound_ms=500.0)


def exp(**expect: Any) -> ExperimentSpec:
    return ExperimentSpec.model_validate(
        {
            "kind": "experiment",
            "title": "primary down",
            "fault": {"kind": "proxy_down", "targets": ["primary-0"]},
            "expect": expect,
        }
    )


def recovered(recover_s: float, misses: int = 0, lost: float = 0.0) -> Recovery:
    """Figures of a run with 10 requests before, 10 during and 10 after a fault."""
    return Recovery(
        failover_s=0.5,
        served_by_seen=True,
        steady=STEADY,
        recover_s=recover_s,
        observed_s=10.0,
        after_requests=10,
        recovered_requests=10 - int(recover_s),
        recovered_misses=0,
        recovered_miss_rate_upper=0.26,
        affected_requests=20,
        affected_misses=misses,
        expected_misses=0.0,
        goodput_lost=lost,
        goodput_lost_share=lost / 20,
    )


def checks(figures: Recovery | None, **expect: Any) -> dict[str, tuple[str, str]]:
    from harness.verdict.chaos import recovery_checks

    return {
        c.name.split(": ", 1)[1]: (c.outcome, "; ".join(c.reasons))
        for c in recovery_checks(exp(**expect), figures)
    }


def test_a_quick_recovery_with_nothing_lost_passes() -> None:
    got = checks(recovered(0.5), recovers_within_s="5s", max_goodput_lost=0.1)
    assert got["recovers within 5s"] == (
        "pass",
        "back within the steady state 0.5s after the fault ended (10 requests from then, 0 "
        "missing, miss rate <= 26% at 95%); want back within the steady state within 5s of the "
        "fault's end",
    )
    assert got["goodput lost <= 0.1"] == (
        "pass",
        "0.0 of 20 requests lost (0%): 0 missed the steady state, 0.0 expected; want at most 10% "
        "of the requests during and after the fault lost",
    )


def test_nothing_expected_is_nothing_judged() -> None:
    assert checks(recovered(0.5)) == {}


def test_a_recovery_too_slow_fails() -> None:
    outcome, reason = checks(recovered(5.5, misses=5, lost=5.0), recovers_within_s=5)[
        "recovers within 5s"
    ]
    assert outcome == "fail" and reason.startswith("back within the steady state 5.5s after")


def test_a_recovery_never_seen_fails_with_how_long_was_observed() -> None:
    censored = Recovery(
        failover_s=0.5,
        served_by_seen=True,
        steady=STEADY,
        censored=True,
        observed_s=10.0,
        reason="not recovered within the 10 s observed (10 requests after the fault, 10 "
        "missing the steady state; a window of 5 is needed)",
        after_requests=10,
        affected_requests=20,
        affected_misses=20,
        expected_misses=0.0,
        goodput_lost=20.0,
        goodput_lost_share=1.0,
    )
    outcome, reason = checks(censored, recovers_within_s=60)["recovers within 60s"]
    assert outcome == "fail"
    assert reason.startswith("not recovered within the 10 s observed (10 requests after the")
    assert reason.endswith("want back within the steady state within 60s of the fault's end")


def test_too_much_goodput_lost_fails() -> None:
    outcome, reason = checks(recovered(0.5, misses=5, lost=5.0), max_goodput_lost=0.1)[
        "goodput lost <= 0.1"
    ]
    assert outcome == "fail" and reason.startswith("5.0 of 20 requests lost (25%)")


@pytest.mark.parametrize("measured", [None, "no steady state", "no requests"])
def test_a_missing_figure_is_never_a_pass(measured: str | None) -> None:
    figures = {
        None: None,
        "no steady state": Recovery(
            reason="no steady state: 3 requests before the fault, at least 5 are needed",
            after_requests=10,
        ),
        "no requests": Recovery(
            steady=STEADY,
            recover_s=None,
            censored=True,
            reason="not recovered within the 0 s observed",
            goodput_lost=0.0,
            goodput_lost_share=None,
        ),
    }[measured]
    got = checks(figures, recovers_within_s=5, max_goodput_lost=0.5)
    assert {k: v[0] for k, v in got.items()} == {
        "recovers within 5s": "fail",
        "goodput lost <= 0.5": "fail",
    }
    if measured == "no steady state":
        assert got["recovers within 5s"][1].startswith("no steady state: 3 requests before")
    if measured == "no requests":
        assert got["goodput lost <= 0.5"][1].startswith("no requests during or after the fault")


def test_the_spec_takes_durations_and_a_share() -> None:
    e = exp(recovers_within_s="1m", max_goodput_lost=0.05)
    assert (e.expect.recovers_within_s, e.expect.max_goodput_lost) == (60.0, 0.05)
    with pytest.raises(ValueError):
        exp(max_goodput_lost=1.5)
    with pytest.raises(ValueError):
        exp(recovers_within_s=0)


def test_planted_samples_fail_through_the_measure() -> None:
    """From requests to verdict: errors for 6 s after a 10 s fault, and half the fault's
    requests failed on the fallback (one a second; before 0-10 s, fault 10-20 s, after)."""
    from harness.data.samples import Sample
    from harness.measure.recovery import recovery

    def req(t: float, served: str | None) -> Sample:
        return Sample(
            worker=0,
            seq=int(t),
            kind="chat",
            tenant="t",
            prompt_id="p",
            repeated=False,
            intended_s=t,
            sent_s=t,
            e2e_ms=80.0,
            ttfb_ms=20.0,
            ttft_ms=30.0 if served else None,
            status=200 if served else 503,
            error=None if served else "http",
            x_served_by=served,
        )

    letters = "P" * 10 + "FE" * 5 + "E" * 6 + "P" * 8
    pools = {"P": "primary", "F": "fallback", "E": None}
    samples = [req(i + 0.5, pools[c]) for i, c in enumerate(letters)]
    figures = recovery(samples, 0.0, 34.0, 10.0, 20.0)
    got = checks(figures, recovers_within_s=5, max_goodput_lost=0.1)
    assert got["recovers within 5s"][0] == "fail"
    assert got["recovers within 5s"][1].startswith("back within the steady state 6.5s after")
    assert got["goodput lost <= 0.1"][0] == "fail"
    assert got["goodput lost <= 0.1"][1].startswith("11.0 of 24 requests lost (46%)")
