"""The "alert pending" expectation: a rule went pending after the fault began and before it
fired. A rule with no `for:` (straight to firing), one that went pending too late, and one that
was already pending before the fault (left so by an earlier experiment) do not count."""

from __future__ import annotations

from harness.observe.alert_states import AlertStates
from harness.spec.experiment import ExperimentSpec
from harness.verdict.chaos import pending_checks

EXP = ExperimentSpec.model_validate(
    {
        "kind": "experiment",
        "title": "storm",
        "fault": {"kind": "proxy_down", "targets": ["primary-0"]},
        "expect": {"alerts": [{"alert": "HighErrorRate", "pending_within_s": 10}]},
    }
)
A = "HighErrorRate"


def states(*seen: tuple[float, str, str]) -> AlertStates:
    s = AlertStates("http://127.0.0.1:9")  # never started: only its record is read
    s.seen = [(t, group, A, state) for t, group, state in seen]
    return s


def test_pending_then_firing_passes() -> None:
    seen = states((99.0, "live", "inactive"), (103.0, "live", "pending"), (108.0, "live", "firing"))
    (check,) = pending_checks(EXP, seen, 100.0)
    assert check.outcome == "pass"
    assert check.reasons == ["pending 3.0s after the fault started, firing 8.0s after"]


def test_a_rule_left_pending_before_the_fault_does_not_count() -> None:
    # The deployed rule pending all along (an earlier experiment's errors); the live copy never.
    seen = states(
        (99.0, "deployed", "pending"),
        (99.0, "live", "inactive"),
        (101.0, "deployed", "pending"),
        (101.0, "live", "inactive"),
    )
    (check,) = pending_checks(EXP, seen, 100.0)
    assert check.outcome == "fail" and check.reasons[0].startswith("never seen pending")
    seen.seen += [(104.0, "live", A, "pending")]
    (check,) = pending_checks(EXP, seen, 100.0)
    assert check.outcome == "pass", check.reasons


def test_straight_to_firing_or_late_fails() -> None:
    (check,) = pending_checks(EXP, states((99.0, "g", "inactive"), (101.0, "g", "firing")), 100.0)
    assert check.outcome == "fail" and check.reasons[0].startswith("never seen pending")
    (late,) = pending_checks(EXP, states((99.0, "g", "inactive"), (115.0, "g", "pending")), 100.0)
    assert late.outcome == "fail" and "first seen pending 15.0s" in late.reasons[0]
