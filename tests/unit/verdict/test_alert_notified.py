"""An expected alert judged from when Alertmanager first notified it: firing within its time
after the fault started passes, late or never fails, resolution is judged only where expected,
and a stack without an alert receiver is an error (nothing could be seen)."""

from __future__ import annotations

from harness.spec.experiment import ExperimentSpec
from harness.verdict.chaos import AlertNotified, alert_checks
from harness.verdict.checks import stack_check

EXP = ExperimentSpec.model_validate(
    {
        "kind": "experiment",
        "title": "storm",
        "fault": {"kind": "proxy_down", "targets": ["primary-0"]},
        "expect": {
            "alerts": [
                {"alert": "HighErrorRate", "fires_within_s": 60, "resolves_within_s": 120},
                {"alert": "PrimaryDown", "fires_within_s": 30},
            ]
        },
    }
)


def test_alerts_notified_in_time_pass() -> None:
    checks = alert_checks(EXP, [AlertNotified(12.34, 80.0), AlertNotified(30.0)])
    assert [(c.name, c.outcome) for c in checks] == [
        ("storm: alert HighErrorRate fires", "pass"),
        ("storm: alert HighErrorRate resolves", "pass"),
        ("storm: alert PrimaryDown fires", "pass"),
    ]
    assert checks[0].reasons == ["firing notification 12.3s after the fault started"]
    assert checks[0].measured == {"alert": "HighErrorRate", "firing_after_s": 12.3}
    assert checks[1].reasons == ["resolved notification 80.0s after the fault ended"]


def test_an_alert_never_or_late_notified_fails() -> None:
    fires, resolves, late = alert_checks(EXP, [AlertNotified(None, None), AlertNotified(30.5)])
    assert fires.outcome == "fail"
    assert fires.reasons == ["no firing notification within 60s after the fault started"]
    assert resolves.outcome == "fail"
    assert resolves.reasons == ["no resolved notification within 120s after the fault ended"]
    assert late.outcome == "fail" and late.measured == {}
    assert late.reasons == ["no firing notification within 30s after the fault started"]


def test_without_an_alert_receiver_each_expected_alert_is_an_error() -> None:
    checks = alert_checks(EXP, None)
    assert [(c.name, c.outcome, c.reasons) for c in checks] == [
        ("storm: alert HighErrorRate", "error", ["no alert receiver"]),
        ("storm: alert PrimaryDown", "error", ["no alert receiver"]),
    ]


def test_a_stack_that_came_up_passes_with_its_startup_time() -> None:
    check = stack_check(12.345)
    assert check.outcome == "pass" and check.category == "stack"
    assert check.reasons == ["up in 12.3 s"] and check.measured == {"startup_s": 12.35}
