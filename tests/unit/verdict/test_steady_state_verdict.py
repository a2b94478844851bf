"""Did an experiment start from steady state: each signal planted off, and the reasons say what
was off, how long the harness waited and the policy's bound."""

from __future__ import annotations

from harness.verdict.steady_state import (
    FrontDoorAnswer,
    SteadySignals,
    SteadyStateEvidence,
    steady_state_check,
)


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


PRIMARY = FrontDoorAnswer(status=200, served_by="primary", ttft_s=0.05, chunks=3)


def test_a_fresh_request_answered_by_the_primary_pool_is_part_of_the_steady_state() -> None:
    check = steady_state_check(
        "primary down",
        SteadyStateEvidence(
            SteadySignals(open_breakers=[], firing_alerts=[], answer=PRIMARY), 0, 75
        ),
    )
    assert check.outcome == "pass"
    assert check.reasons == [
        "steady: no breaker open and no alert firing and a fresh request answered by the "
        "primary pool"
    ]
    assert check.measured["signals"] == "breakers, alerts, a request"
    assert check.measured["request_ttft_ms"] == 50.0


def test_an_answer_from_the_fallback_pool_is_not_steady() -> None:
    """Breakers closed and no alert, yet the primaries do not answer (a gateway whose breaker
    gauge lags, or an external stack without one)."""
    fallback = FrontDoorAnswer(status=200, served_by="fallback", chunks=3)
    outcome, reasons = judged(SteadySignals(open_breakers=[], firing_alerts=[], answer=fallback))
    assert outcome == "fail"
    assert reasons[0].startswith(
        "did not start from steady state: a request through the front door: served by "
        "fallback, not the primary pool after waiting"
    )


def test_an_error_answer_a_failed_stream_and_no_answer_are_not_steady() -> None:
    for answer, words in (
        (FrontDoorAnswer(status=503, error='{"error": "degraded"}'), 'answered 503: {"error"'),
        (FrontDoorAnswer(status=200, error="stream_error", chunks=1), "the stream failed"),
        (FrontDoorAnswer(status=200, served_by="primary"), "the stream carried no text"),
        (FrontDoorAnswer(status=None, error="ConnectError: refused"), "no answer (ConnectError"),
    ):
        outcome, reasons = judged(SteadySignals(answer=answer))
        assert outcome == "fail" and f"a request through the front door: {words}" in reasons[0]


def test_a_bare_front_door_is_judged_on_its_answer_alone() -> None:
    """An external stack with no gateway metrics, no Prometheus and no served-by header: the
    request is the whole hypothesis, and every part left out is named."""
    answer = FrontDoorAnswer(status=200, served_by=None, chunks=2)
    unread = [
        "breakers: no gateway replicas known",
        "alerts: the stack has no Prometheus",
        "served by: the answer has no X-Served-By header",
    ]
    outcome, reasons = judged(SteadySignals(answer=answer, unread=unread))
    assert outcome == "pass"
    assert reasons == ["steady: a fresh request answered"] + [
        f"not part of the hypothesis: {u}" for u in unread
    ]
