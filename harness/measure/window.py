"""Windows of a run: the requests meant for [start, end), summarized on their own.

A request belongs to the window its intended send time (open loop) or send time (closed loop)
falls in, so a fault window holds the requests that met the fault, however long they took.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

from harness.load.samples import Sample
from harness.measure.summary import LoadSummary, RunContext, summarize


def meant_s(s: Sample) -> float:
    return s.intended_s if s.intended_s is not None else s.sent_s


def in_window(samples: Sequence[Sample], start_s: float, end_s: float) -> list[Sample]:
    return [s for s in samples if start_s <= meant_s(s) < end_s]


def summarize_window(
    samples: Sequence[Sample], ctx: RunContext, start_s: float, end_s: float
) -> LoadSummary:
    if end_s <= start_s:
        raise ValueError(f"empty window: end {end_s} <= start {start_s}")
    # Run-wide generator counters cannot be split by window; lag per request still can.
    workers = [dataclasses.replace(w, not_sent=0, cap_waits=0, unfinished=0) for w in ctx.workers]
    sub = dataclasses.replace(
        ctx, start_s=start_s, duration_s=end_s - start_s, expected_requests=None, workers=workers
    )
    return summarize(in_window(samples, start_s, end_s), sub)


def phases(
    samples: Sequence[Sample], ctx: RunContext, fault_start_s: float, fault_end_s: float
) -> dict[str, LoadSummary]:
    """before / during / after a fault, each summarized alone (a window may be empty)."""
    run_end = ctx.start_s + ctx.duration_s
    bounds = {
        "before": (ctx.start_s, fault_start_s),
        "during": (fault_start_s, fault_end_s),
        "after": (fault_end_s, run_end),
    }
    return {name: summarize_window(samples, ctx, a, b) for name, (a, b) in bounds.items() if b > a}
