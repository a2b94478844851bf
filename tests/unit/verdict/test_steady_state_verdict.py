"""Did an experiment start from steady state: each signal planted off, and the reasons say what
was off, how long the harness waited and the policy's bound."""

from __future__ import annotations

from harness.verdict.steady_state import SteadySignals, SteadyStateEvidence, steady_state_check


def judged(signals: SteadySignals, waited_s: float = 0.0) -> tuple[str, list[str]]:
    check = steady_state_check("primary down", SteadyStateEvidence(signals, waited_s, 75.0))
    assert check.name == "primary down: started from steady state" and check.category == "chaos"
    return check.outcome, check.reasons


def test_steady_signals_pass_and_say_how_long_it_took() -> None:
    outcome, reasons = judged(SteadySignals(open_breakers=[], firing_alerts=[]), waited_s=12.3)
    assert outcome == "pass" and reasons == [
        "steady after 12s: no breaker open and no alert firing"
    ]


def test_a_breaker_still_open_at_the_bound_fails_and_the_fault_is_not_injected() -> None:
    signals = SteadySignals(open_breakers=["http://127.0.0.1:9001 pool=primary"], firing_alerts=[])
    outcome, reasons = judged(signals, waited_s=75.2)
    assert outcome == "fail"
    assert reasons[0] == (
        "did not start from steady state: breaker open: http://127.0.0.1:9001 pool=primary after "
        "waiting 75s (the policy's bound 75s); the fault was not injected"
    )


def test_an_alert_still_firing_fails() -> None:
    outcome, reasons = judged(SteadySignals(open_breakers=[], firing_alerts=["HighErrorRate"]))
    assert outcome == "fail" and "alert firing: HighErrorRate" in reasons[0]


def test_a_signal_the_stack_lacks_is_named_not_assumed() -> None:
    signals = SteadySignals(
        open_breakers=None, firing_alerts=[], unread=["breakers: no gateway replicas known"]
    )
    outcome, reasons = judged(signals)
    assert outcome == "pass" and reasons == [
        "steady: no alert firing",
        "not part of the hypothesis: breakers: no gateway replicas known",
    ]


def test_no_signal_at_all_is_never_a_pass() -> None:
    signals = SteadySignals(unread=["breakers: none", "alerts: the stack has no Prometheus"])
    outcome, reasons = judged(signals)
    assert outcome == "fail" and reasons[0] == "no steady-state signal could be read"
