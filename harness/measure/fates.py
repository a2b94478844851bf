"""The fate of every request of a chaos experiment, read from its sample alone: what a user of
the stream got, in fixed names (docs/chaos.md defines each). A description, not a judgement: the
verdict (`harness/verdict/chaos.py`) decides what a count means.

Counted per fault phase (before / during / after, as `window.phases` assigns them), for the
requests in flight when the fault started and when it ended (sent before the instant, done after
it), and for the whole experiment.
"""

from __future__ import annotations

from collections.abc import Sequence

from pydantic import BaseModel, ConfigDict, Field

from harness.data.samples import STREAM_ENDED_SILENTLY, Sample
from harness.measure.window import phase_of

FATES = ("completed", "failed_over", "error_in_stream", "cut_silently", "refused", "hung", "failed")
# The groups a fate table counts, in the order a report shows them.
GROUPS = ("before", "during", "after", "in_flight_at_start", "in_flight_at_end", "all")
# Request ids kept per group of the fates a report names (enough to look a few up).
IDS_KEPT = 5


def fate(s: Sample) -> str:
    """What happened to one request; the stream's own end first, then who answered."""
    if s.error is None:
        return "failed_over" if s.x_served_by in ("fallback", "degraded") else "completed"
    if s.error == "incomplete" and s.error_detail == STREAM_ENDED_SILENTLY:
        return "cut_silently"
    if s.error == "stream_error":
        return "error_in_stream"
    if s.error == "timeout":
        return "hung"
    if s.error == "http" and s.x_served_by == "degraded":
        return "failed_over"  # the gateway's degraded answer: its fallback of last resort
    if s.error == "http" and s.status in (429, 503):
        return "refused"
    return "failed"


def in_flight_at(s: Sample, t: float) -> bool:
    """Sent before the instant and done after it."""
    return s.sent_s < t < s.done_s


def request_id(s: Sample) -> str:
    """The id the stack's logs know the request by: the gateway's, else the client's own."""
    return s.x_request_id or s.client_request_id


class FateCounts(BaseModel):
    model_config = ConfigDict(extra="ignore")  # stored output: lenient
    requests: int = 0
    counts: dict[str, int] = Field(default_factory=lambda: dict.fromkeys(FATES, 0))
    # Of the refused: those whose answer said when to come back.
    refused_with_retry_after: int = 0
    # The first few request ids of each fate other than completed, by send time.
    ids: dict[str, list[str]] = Field(default_factory=dict)

    def add(self, s: Sample) -> None:
        f = fate(s)
        self.requests += 1
        self.counts[f] = self.counts.get(f, 0) + 1
        if f == "refused" and s.retry_after is not None:
            self.refused_with_retry_after += 1
        if f != "completed" and len(kept := self.ids.setdefault(f, [])) < IDS_KEPT:
            kept.append(request_id(s))


class FateTable(BaseModel):
    model_config = ConfigDict(extra="ignore")
    groups: dict[str, FateCounts] = Field(default_factory=dict)

    def group(self, name: str) -> FateCounts:
        return self.groups.get(name) or FateCounts()


def fate_table(
    samples: Sequence[Sample], run_start_s: float, fault_start_s: float, fault_end_s: float
) -> FateTable:
    """Every request's fate counted in its phase, in the in-flight groups it belongs to, and in
    "all" (every request of the experiment, its phase or not)."""
    groups = {g: FateCounts() for g in GROUPS}
    for s in sorted(samples, key=lambda x: x.sent_s):
        groups["all"].add(s)
        if (phase := phase_of(s, run_start_s, fault_start_s, fault_end_s)) is not None:
            groups[phase].add(s)
        if in_flight_at(s, fault_start_s):
            groups["in_flight_at_start"].add(s)
        if in_flight_at(s, fault_end_s):
            groups["in_flight_at_end"].add(s)
    return FateTable(groups=groups)
