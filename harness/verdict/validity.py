"""Whether a load run measured the server and not the client: the verdict on its generator's
own figures (send lag against the schedule, arrivals that waited or were never sent, workers
that did not finish). An invalid run's latencies describe the load generator; every number of
it is kept and shown, and the run's outcome is "invalid"."""

from __future__ import annotations

from harness.measure.summary import LoadSummary, RunContext, Validity

# A load worker busier than this share of a core may have added its own delay to the latencies.
CPU_WARN_SHARE = 0.9


def judge_validity(summary: LoadSummary, ctx: RunContext) -> Validity:
    """Invalid when the generator did not send what its schedule meant (fell behind, waited for
    a slot, left arrivals unsent), a worker did not finish, nothing was recorded or the run was
    stopped; warnings for what may colour the numbers without voiding them."""
    gen = summary.generator
    reasons = list(ctx.problems)
    warnings: list[str] = list(ctx.warnings)
    if ctx.interrupted_after_s is not None:
        reasons.append(
            f"interrupted after {ctx.interrupted_after_s:.1f}s: a partial run, "
            "its numbers cover only the part that ran"
        )
    if not summary.counts.total:
        reasons.append("no requests were recorded")
    if ctx.interrupted_after_s is None and gen.workers_done < ctx.workers_expected:
        reasons.append(
            f"only {gen.workers_done} of {ctx.workers_expected} load workers finished the schedule"
        )
    if ctx.open_loop:
        lag = gen.send_lag_ms
        if lag is not None and lag.p99 is not None and lag.p99 > ctx.max_send_lag_ms:
            reasons.append(
                f"generator fell behind its schedule: send lag p99 {lag.p99:.1f} ms > "
                f"{ctx.max_send_lag_ms:g} ms (max {lag.max or 0:.1f} ms); "
                "add --processes or lower the rate"
            )
        if gen.cap_waits:
            reasons.append(
                f"{gen.cap_waits} arrivals waited for a free slot (max_in_flight reached): "
                "the offered rate was not sent on time"
            )
        if gen.not_sent:
            reasons.append(f"{gen.not_sent} scheduled arrivals were never sent")
        expected = ctx.expected_requests
        # Not for a stopped run: the requests in flight at the stop were sent but not recorded.
        complete = ctx.interrupted_after_s is None
        if (
            complete
            and ctx.arrival in ("constant", "burst")
            and expected
            and gen.sent < 0.98 * expected - 1
        ):
            reasons.append(f"sent {gen.sent} of {expected:.0f} scheduled requests")
    if gen.cpu_share_max is not None and gen.cpu_share_max > CPU_WARN_SHARE:
        warnings.append(
            f"a load worker used {gen.cpu_share_max:.0%} of a core: client-side delay may be "
            "part of the measured latency; add --processes"
        )
    if gen.unfinished:
        warnings.append(
            f"{gen.unfinished} requests were still in flight when the drain time ran out"
        )
    return Validity(valid=not reasons, reasons=reasons, warnings=warnings)
