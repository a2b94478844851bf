"""The scale-out's target from what one replica carries (`autoscale.target_rps_per_replica:
from_capacity`), for a stack where the practices' 100 requests/s per replica is out of reach.

Before the burst, a short capacity search (`harness capacity`'s: doubling, then bisection, each
step judged on its estimates) runs through the stack's front door with one primary replica in
every gateway's rotation. That is what an HPA's per-replica target stands for: the rate the
gateways send one replica (the signal counts their upstream requests), with the burst's SLO met
where the burst judges it, at the client; straight at a model server the gateways' own time
would go unmeasured. The target is `capacity.share` of the highest rate shown to keep the SLO.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from harness.data.progress import Progress
from harness.load.capacity import CapacityResult, CapacityStep, SearchPlan, search, step_from_report
from harness.load.execute import LoadInterrupted, measure_load
from harness.rollout.rolling import primary_urls, restore_rotation, set_rotation
from harness.spec.load import LoadSpec, OpenLoop, Shape
from harness.spec.rollout import RolloutSpec
from harness.stack import RunningStack
from harness.stack.target import from_stack
from harness.verdict.load_run import step_verdict

ERROR_SLO = "error_rate<=0.01"  # as `harness capacity`: a server that errors fast is not "fast"
# A step at a low rate runs long enough to send about this many requests (a p95 of a few is none).
MIN_STEP_REQUESTS = 10


@dataclass(frozen=True)
class CapacityBasis:
    """The derived target (None: no rate kept the SLO), the sentence that says where it came
    from, and the search behind it."""

    target: float | None
    basis: str
    result: CapacityResult


def derive_target(
    result: CapacityResult, share: float, slo_ms: float, ceiling: str = "capacity.max_rps"
) -> CapacityBasis:
    """`share` of the highest rate one replica was shown to carry within the SLO; the basis
    names that rate, the lowest that failed above it (the capacity lies between), or why none
    failed (`ceiling`: what the search's highest rate was), and the search's steps."""
    kept = f"kept TTFT p95 <= {slo_ms:g} ms and errors <= 1%"
    n = len(result.steps)
    steps = f"{n} search step{'s' if n != 1 else ''}"
    capacity = result.capacity_rps
    if capacity is None:
        return CapacityBasis(
            None,
            f"no target from capacity: one replica alone in rotation behind the front door "
            f"{kept} at no rate tried ({steps}: {result.explanation})",
            result,
        )
    failed = result.interval.failed if result.interval is not None else None
    if failed is not None:
        where = f"its capacity lies between {capacity:.3g} and {failed.rate_rps:.3g} req/s"
    elif result.bounded_by == "max_rate":
        where = f"its capacity is at least that: the search stops at {ceiling}"
    elif result.bounded_by == "generator":
        where = "its capacity is at least that: the load generator fell behind above it"
    else:
        where = "its capacity is at least that: no rate tried failed"
    target = share * capacity
    return CapacityBasis(
        target,
        f"target {target:.3g} req/s per replica: {share:.0%} of {capacity:.3g} req/s, the highest "
        f"rate at which one replica alone in rotation behind the front door {kept} ({where}; "
        f"measured before the burst in {steps})",
        result,
    )


def _step_load(load: LoadSpec, rate: float, seconds: float, slos: tuple[str, ...]) -> LoadSpec:
    """The burst's requests at a steady open-loop rate (its arrival, where it has one)."""
    kind = load.load
    arrival = kind.arrival if isinstance(kind, OpenLoop) and kind.arrival != "trace" else "poisson"
    lag = kind.max_send_lag_ms if isinstance(kind, OpenLoop) else OpenLoop().max_send_lag_ms
    return load.model_copy(
        update={
            "name": "capacity",
            "load": OpenLoop(rate_rps=rate, arrival=arrival, max_send_lag_ms=lag),
            "shape": Shape(),
            "duration_s": seconds,
            "slos": slos,
        }
    )


def measure_target(
    spec: RolloutSpec, stack: RunningStack, run_dir: Path, progress: Progress
) -> CapacityBasis:
    """Search one replica's capacity through the front door (the others out of rotation, put
    back after), then wait one signal window so the search's requests leave the autoscaler's
    signal before the burst. Interrupted (Ctrl-C, SIGTERM): KeyboardInterrupt, once the
    rotation is whole again."""
    c = spec.autoscale.capacity
    slo_ms = c.ttft_p95_ms if c.ttft_p95_ms is not None else spec.autoscale.ttft_p95_ms
    slos = (f"ttft_p95_ms<={slo_ms:g}", ERROR_SLO)
    target = from_stack(stack)
    one = primary_urls(stack)[:1]
    progress(f"capacity of one replica ({one[0]}): TTFT p95 <= {slo_ms:g} ms, {c.step_s:g}s steps")

    def run_at(rate: float) -> CapacityStep:
        step_dir = run_dir / f"step-{len(list(run_dir.glob('step-*'))) + 1:02d}-{rate:.4g}rps"
        load = _step_load(spec.load, rate, max(c.step_s, MIN_STEP_REQUESTS / rate), slos)
        try:
            report = measure_load(
                load, target, step_dir, progress, judge=step_verdict, server_view=False
            )
        except LoadInterrupted as stopped:
            report = stopped.report
        step = step_from_report(rate, report, str(step_dir / "report.json"))
        progress(
            f"  capacity: {rate:.4g} req/s -> {step.outcome}"
            + (f" ({step.reasons[0]})" if step.reasons else "")
        )
        return step

    # Above the stack's per-key rate limit the search would measure the limit's refusals.
    limit = stack.spec.gateway.settings.rate_limit
    max_rps, ceiling = c.max_rps, "capacity.max_rps"
    if (
        limit.enabled
        and not spec.load.workload.tenants
        and limit.requests_per_minute < 60 * max_rps
    ):
        max_rps = limit.requests_per_minute / 60
        ceiling = f"the stack's rate limit of {limit.requests_per_minute} requests a minute a key"
    plan = SearchPlan(
        min(c.start_rps, max_rps), max_rps, max_steps=c.max_steps, precision=c.precision
    )
    set_rotation(stack, one)
    try:
        result = search(run_at, plan, list(slos))
    finally:
        restore_rotation(stack)
    if result.outcome == "interrupted":
        raise KeyboardInterrupt
    derived = derive_target(result, c.share, slo_ms, ceiling)
    progress(f"  {derived.basis}")
    time.sleep(spec.autoscale.rate_window_s + stack.spec.prometheus.scrape_interval_s)
    return derived
