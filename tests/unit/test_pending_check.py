"""The "alert pending" expectation: Prometheus showed the alert pending, in time, before it
fired; a rule with no `for:` (straight to firing) or one that went pending too late fails."""

from __future__ import annotations

from harness.chaos import _pending_checks
from harness.observe.alert_states import AlertStates
from harness.spec.experiment import ExperimentSpec

EXP = ExperimentSpec.model_validate({
    "kind": "experiment", "title": "storm",
    "fault": {"kind": "proxy_down", "targets": ["primary-0"]},
    "expect": {"alerts": [{"alert": "HighErrorRate", "pending_within_s": 10}]},
})  # fmt: skip


def states(seen: dict[tuple[str, str], float]) -> AlertStates:
    s = AlertStates("http://127.0.0.1:9")  # never started: only its record is read
    s.first_seen = seen
    return s


def test_pending_then_firing_passes() -> None:
    seen = {("HighErrorRate", "pending"): 103.0, ("HighErrorRate", "firing"): 108.0}
    (check,) = _pending_checks(EXP, states(seen), 100.0)
    assert check.outcome == "pass" and check.reasons == [
        "pending 3.0s after the fault started, firing 8.0s after"]  # fmt: skip


def test_straight_to_firing_or_late_fails() -> None:
    (check,) = _pending_checks(EXP, states({("HighErrorRate", "firing"): 101.0}), 100.0)
    assert check.outcome == "fail" and check.reasons[0].startswith("never seen pending")
    (late,) = _pending_checks(EXP, states({("HighErrorRate", "pending"): 115.0}), 100.0)
    assert late.outcome == "fail" and "first seen pending 15.0s" in late.reasons[0]
