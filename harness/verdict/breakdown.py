"""Do the client's time to first token and the model server's agree, once the gateway's own time
is counted? A check that only ever warns: the gap is a lead to follow, not a verdict on the SLOs.

The gap per request (harness/measure/breakdown.py) is the client's TTFT less the gateway's own
time, the server's own queue and prefill, and the wait from the first event to the first text:
what is left is the network, nginx, the client and the model server's HTTP layer, none of which
any record measures. Judged at its median over the requests whose server part is known, so one
slow request does not warn and a stack where most requests lose time does.

The threshold, `max(GAP_FLOOR_MS, GAP_SHARE x TTFT p50)`, plus the run's ITL p50 where the
server reports no queue time, with its reasons:
- the floor: the reference stack's unaccounted hops are loopback (client -> nginx -> gateway ->
  Toxiproxy -> model server and back): the gap measured 3-7 ms at p50 on the simulated stack on
  a busy 2-core runner (docs/latency.md); 20 ms is about three times that, and well under what a
  planted fault (a 100 ms latency toxic, a buffering nginx) adds;
- the share: where the server's part is a histogram mean over the window (vLLM, its simulator)
  rather than each request's own, a request's gap also holds how far its prefill was from the
  mean; a tenth of the median TTFT keeps that spread from warning on a slow but honest stack;
- one inter-token interval: llama.cpp admits a new request into its batch only between decode
  steps and its `timings` start at the prefill, so up to one step's wait is the server's own
  but reported nowhere (on the llama.cpp reference stack on a loaded 2-core machine: gap p50
  239 ms, ITL p50 295 ms).
"""

from __future__ import annotations

from harness.measure.breakdown import Agreement, TtftBreakdown
from harness.verdict.checks import CheckResult, Outcome

GAP_FLOOR_MS = 20.0
GAP_SHARE = 0.10
# Fewer requests with a known server part than this: the median gap is not judged.
MIN_REQUESTS = 5
CHECK = "client and model server agree on time to first token"


def threshold_ms(b: TtftBreakdown) -> float:
    step = (b.itl_ms.p50 or 0.0) if b.queue_unreported else 0.0
    return max(GAP_FLOOR_MS, GAP_SHARE * (b.ttft_ms.p50 or 0.0)) + step


def _where(b: TtftBreakdown) -> str:
    """Which derived part holds the gap, at the median request."""
    band = b.band(50.0)
    if band is None:
        return ""
    rest, unexplained = band.parts_ms["upstream_rest_ms"], band.parts_ms["unexplained_ms"]
    return (
        f"; at the median request {rest:.1f} ms between the gateway and the model server "
        f"(transport, its HTTP layer, a queue it does not report) and {unexplained:.1f} ms "
        "unexplained (nginx, network, client, an answer held after its headers)"
    )


def judge_agreement(b: TtftBreakdown) -> Agreement:
    gap = b.gap_ms
    if gap.count < MIN_REQUESTS or gap.p50 is None:
        why = (
            b.server_error
            or "the model server reports its own time neither in its answers nor in the vLLM "
            "histograms Prometheus has"
            if not gap.count
            else "too few to judge a median"
        )
        return Agreement(
            decision="not judged",
            reason=f"the server's own time is known for {gap.count} of {b.requests} requests "
            f"({MIN_REQUESTS} needed): {why}",
        )
    limit = threshold_ms(b)
    source = (
        "the server's part is its histograms' mean over the window, not per request"
        if b.histogram_only
        else "the server's part from each answer's own timings, which hold no queue time "
        f"(one ITL p50, {b.itl_ms.p50 or 0:.1f} ms, allowed for it)"
    )
    figures = (
        f"TTFT - gateway - server - first text wait: p50 {gap.p50:.1f} ms, p95 {gap.p95:.1f} ms "
        f"(n={gap.count}); threshold +/-{limit:.1f} ms; {source}"
    )
    if abs(gap.p50) <= limit:
        return Agreement(decision="agree", reason=figures, threshold_ms=limit)
    lead = (
        "the client waited longer than the gateway and the model server account for"
        if gap.p50 > 0
        else "the model server says it spent longer than the client waited"
    )
    return Agreement(decision="warn", reason=f"{lead}: {figures}{_where(b)}", threshold_ms=limit)


def agreement_check(b: TtftBreakdown | None) -> CheckResult:
    """The gate's check: warn on disagreement, skipped where nothing can be compared."""
    if b is None:
        return CheckResult(
            name=CHECK,
            category="latency",
            outcome="skipped",
            reasons=["no answer carried the gateway's Server-Timing (gw, upstream)"],
        )
    a = b.agreement or judge_agreement(b)
    outcome: Outcome = (
        "pass" if a.decision == "agree" else "warn" if a.decision == "warn" else "skipped"
    )
    measured: dict[str, float | int | str | None] = {
        "gap_p50_ms": None if b.gap_ms.p50 is None else round(b.gap_ms.p50, 2),
        "gap_p95_ms": None if b.gap_ms.p95 is None else round(b.gap_ms.p95, 2),
        "threshold_ms": None if a.threshold_ms is None else round(a.threshold_ms, 2),
        "n": b.gap_ms.count,
    }
    return CheckResult(
        name=CHECK,
        category="latency",
        outcome=outcome,
        reasons=[a.reason],
        measured=measured,
    )
