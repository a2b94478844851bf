"""The circuit breaker's cycle judged from what the probe saw on each replica: a healthy cycle
passes; a breaker that stays closed after the threshold, skips no pool, goes half-open before its
recovery timeout or never, or does not close on the primary's answer fails with the replica and
the reason."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from harness.verdict.breaker import (
    Answer,
    BreakerConfig,
    BreakerEvidence,
    ReplicaCycle,
    judge_breaker,
)

CFG = BreakerConfig(failure_threshold=3, recovery_timeout_s=30)
GW = "http://127.0.0.1:8081"


def healthy(gateway: str = GW, **changes: Any) -> ReplicaCycle:
    cycle = ReplicaCycle(
        gateway=gateway,
        tripping=[Answer(200, "fallback")] * 3,
        state_after_trip=2,
        fallback_reason="breaker_open",
        state_after_wait=1,
        half_open_after_s=30.4,
        probe=Answer(200, "primary"),
        state_after_probe=0,
    )
    return replace(cycle, **changes)


def judged(*cycles: ReplicaCycle) -> tuple[str, list[str]]:
    before = {c.gateway: 0 for c in cycles}
    check = judge_breaker(BreakerEvidence(proxies=2, before=before, cycles=cycles), CFG)
    return check.outcome, check.reasons


def test_a_healthy_cycle_on_every_replica_passes() -> None:
    check = judge_breaker(
        BreakerEvidence(2, {GW: 0, "gw2": 0}, [healthy(), healthy("gw2", half_open_after_s=31.0)]),
        CFG,
    )
    assert check.outcome == "pass"
    assert check.reasons == [
        "open after 3 failures on each of 2 replicas, breaker_open skips the pool, half-open "
        "after 31.0s (recovery 30s), closed by a primary answer"
    ]
    assert check.measured["half_open_after_s_max"] == 31.0 and check.measured["replicas"] == 2


def test_a_breaker_still_closed_after_the_threshold_fails() -> None:
    outcome, reasons = judged(
        healthy(state_after_trip=0, fallback_reason="connect_error", state_after_wait=0)
    )
    assert outcome == "fail"
    assert reasons == [
        f"{GW}: after 3 failures the breaker reads closed, want open",
        f"{GW}: with the breaker open, X-Fallback-Reason is 'connect_error', want 'breaker_open'",
        f"{GW}: 30.4s after opening (recovery timeout 30s) the breaker reads closed, "
        "want half-open",
    ]


def test_a_request_the_primary_pool_down_did_not_fail_over_fails() -> None:
    outcome, reasons = judged(healthy(tripping=[Answer(200, "fallback"), Answer(502, None)]))
    assert outcome == "fail"
    assert reasons == [
        f"{GW}: request 2 with the primary pool down was answered 502 by None, "
        "want fallback or degraded"
    ]


def test_half_open_before_the_recovery_timeout_fails() -> None:
    outcome, reasons = judged(healthy(half_open_after_s=2.0))
    assert outcome == "fail"
    assert reasons == [f"{GW}: half-open 2.0s after opening, before its recovery timeout of 30s"]
    # A poll's worth early still counts as waiting it out.
    assert judged(healthy(half_open_after_s=29.5))[0] == "pass"


def test_a_breaker_that_is_absent_or_does_not_close_on_the_primary_answer_fails() -> None:
    outcome, reasons = judged(
        healthy(probe=Answer(200, "fallback"), state_after_probe=1),
        healthy("gw2", state_after_trip=None),
    )
    assert outcome == "fail"
    # Every replica's opening first, then each one's recovery.
    assert reasons == [
        "gw2: after 3 failures the breaker reads absent, want open",
        f"{GW}: the half-open probe request was answered 200 by 'fallback', want 200 by the "
        "primary",
        f"{GW}: after a successful probe the breaker reads half-open, want closed",
    ]


def test_a_breaker_not_closed_before_fails_and_no_proxy_skips() -> None:
    check = judge_breaker(BreakerEvidence(proxies=2, before={GW: 2, "gw2": 0}), CFG)
    assert check.outcome == "fail"
    assert check.reasons == [f"the breaker is not closed before the probe: {{'{GW}': 'open'}}"]
    skipped = judge_breaker(BreakerEvidence(proxies=0), CFG)
    assert skipped.outcome == "skipped"
    assert skipped.reasons == ["the primary pool has no Toxiproxy proxy"]
