"""Windows of a run: the requests meant for [start, end), summarized on their own.

A request belongs to the window its intended send time (open loop) or send time (closed loop)
falls in, so a fault window holds the requests that met the fault, however long they took.
Fault phases go one step further: a request still in flight when the fault began met the fault
too, so it counts in "during", not in "before".
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.data.samples import Sample
from harness.measure.summary import LoadSummary, RunContext, summarize


def _window_context(ctx: RunContext, start_s: float, end_s: float) -> RunContext:
    if end_s <= start_s:
        raise ValueError(f"empty window: end {end_s} <= start {start_s}")
    # Run-wide generator counters cannot be split by window; lag per request still can.
    workers = [dataclasses.replace(w, not_sent=0, cap_waits=0, unfinished=0) for w in ctx.workers]
    return dataclasses.replace(
        ctx, start_s=start_s, duration_s=end_s - start_s, expected_requests=None, workers=workers
    )


def phase_of(s: Sample, run_start_s: float, fault_start_s: float, fault_end_s: float) -> str | None:
    """The fault phase a request belongs to (see `phases`); None: meant before the run began."""
    meant = s.meant_s
    if meant >= fault_end_s:
        return "after"
    if meant < fault_start_s and s.done_s < fault_start_s:
        return "before"
    return "during" if meant >= run_start_s else None


def split_phases(
    samples: Sequence[Sample], run_start_s: float, fault_start_s: float, fault_end_s: float
) -> dict[str, list[Sample]]:
    """The requests of before / during / after a fault (see `phases`)."""
    split: dict[str, list[Sample]] = {"before": [], "during": [], "after": []}
    for s in samples:
        if (phase := phase_of(s, run_start_s, fault_start_s, fault_end_s)) is not None:
            split[phase].append(s)
    return split


def phases(
    samples: Sequence[Sample], ctx: RunContext, fault_start_s: float, fault_end_s: float
) -> dict[str, LoadSummary]:
    """before / during / after a fault, each summarized alone (a phase may be empty).

    before: meant before the fault and done before it began; during: every other request meant
    before the fault ended (sent into it, or in flight when it began); after: meant after it.
    """
    run_end = ctx.start_s + ctx.duration_s
    split = split_phases(samples, ctx.start_s, fault_start_s, fault_end_s)
    bounds = {
        "before": (ctx.start_s, fault_start_s),
        "during": (fault_start_s, fault_end_s),
        "after": (fault_end_s, run_end),
    }
    return {
        name: summarize(split[name], _window_context(ctx, a, b))
        for name, (a, b) in bounds.items()
        if b > a
    }
