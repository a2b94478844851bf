"""Client and server agree on the time to first token, or the check warns (never fails); too
little to compare is said so and skipped."""

from __future__ import annotations

from harness.measure.breakdown import Band, TtftBreakdown
from harness.measure.stats import distribution
from harness.verdict.breakdown import (
    GAP_FLOOR_MS,
    MIN_REQUESTS,
    agreement_check,
    judge_agreement,
    threshold_ms,
)


def breakdown(gaps: list[float], ttft_p50: float = 40.0, histogram: bool = True) -> TtftBreakdown:
    parts = {
        "gateway_ms": 1.0,
        "server_queue_ms": 0.0,
        "server_prefill_ms": 30.0,
        "upstream_rest_ms": 60.0,
        "first_text_wait_ms": 0.0,
        "unexplained_ms": 2.0,
    }
    return TtftBreakdown(
        requests=len(gaps) or 3,
        server_source={"histogram mean" if histogram else "per request": len(gaps) or 3},
        bands=[Band(percentile=50.0, requests=1, ttft_ms=93.0, parts_ms=parts)],
        gap_ms=distribution(gaps),
        ttft_ms=distribution([ttft_p50] * max(1, len(gaps))),
    )


def test_a_small_gap_agrees() -> None:
    a = judge_agreement(breakdown([3.0] * 10))
    assert a.decision == "agree" and a.threshold_ms == GAP_FLOOR_MS
    assert "p50 3.0 ms" in a.reason and "(n=10)" in a.reason
    assert "histograms' mean over the window, not per request" in a.reason
    check = agreement_check(breakdown([3.0] * 10))
    assert check.outcome == "pass" and check.measured["gap_p50_ms"] == 3.0


def test_time_nobody_accounts_for_warns_and_says_where_it_sits() -> None:
    b = breakdown([62.0] * 10, histogram=False)
    a = judge_agreement(b)
    assert a.decision == "warn"
    assert a.reason.startswith("the client waited longer than the gateway and the model server")
    assert "60.0 ms between the gateway and the model server" in a.reason
    assert "each answer's own timings" in a.reason
    check = agreement_check(b)
    assert check.outcome == "warn"  # a lead to follow, never a failed gate
    assert check.measured["threshold_ms"] == GAP_FLOOR_MS


def test_a_server_claiming_more_than_the_client_waited_warns_too() -> None:
    a = judge_agreement(breakdown([-50.0] * 10))
    assert a.decision == "warn" and a.reason.startswith("the model server says it spent longer")


def test_the_threshold_grows_with_a_slow_stacks_ttft() -> None:
    slow = breakdown([35.0] * 10, ttft_p50=400.0)
    assert threshold_ms(slow) == 40.0
    assert judge_agreement(slow).decision == "agree"
    assert threshold_ms(breakdown([1.0] * 10, ttft_p50=50.0)) == GAP_FLOOR_MS


def test_a_server_reporting_no_queue_is_allowed_one_decode_step() -> None:
    """llama.cpp's timings start at the prefill; a request that came mid-step waited for it."""
    b = breakdown([25.0] * 10, histogram=False)
    b.itl_ms = distribution([12.0] * 10)
    assert threshold_ms(b) == GAP_FLOOR_MS + 12.0
    a = judge_agreement(b)
    assert a.decision == "agree" and "one ITL p50, 12.0 ms, allowed" in a.reason
    vllm = breakdown([25.0] * 10, histogram=True)
    vllm.itl_ms = distribution([12.0] * 10)
    assert threshold_ms(vllm) == GAP_FLOOR_MS  # its queue is in its histograms
    assert judge_agreement(vllm).decision == "warn"


def test_too_few_requests_with_a_known_server_part_are_not_judged() -> None:
    none = judge_agreement(breakdown([]))
    assert none.decision == "not judged"
    assert "reports its own time neither in its answers nor in the vLLM histograms" in none.reason
    few = judge_agreement(breakdown([1.0] * (MIN_REQUESTS - 1)))
    assert few.decision == "not judged" and "too few" in few.reason
    broken = breakdown([])
    broken.server_error = "GET http://prom/api/v1/query: no answer within 5s"
    assert "no answer within 5s" in judge_agreement(broken).reason
    assert agreement_check(breakdown([])).outcome == "skipped"


def test_no_breakdown_at_all_is_skipped_with_the_reason() -> None:
    check = agreement_check(None)
    assert check.outcome == "skipped" and "Server-Timing" in check.reasons[0]
