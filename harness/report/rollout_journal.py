"""The journal of one rollout as the report keeps it: the strategy and its steps, every traffic
move, every canary look with its figures, the per-interval view of both versions, and where the
rollout stopped. Stored output: lenient, so older reports still load."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.load.capacity import CapacityResult
from harness.measure.timeseries import VersionInterval
from harness.verdict.rollout import StepLook

_LENIENT = ConfigDict(extra="ignore")


class MoveRecord(BaseModel):
    """A traffic move on the rollout's clock (seconds since its load started)."""

    model_config = _LENIENT
    label: str
    # The candidate's share before and after; None for a move that changes none (a replica
    # replaced in a rolling update).
    share_from: float | None = None
    share_to: float | None = None
    at_s: float
    # A move that takes a while (a replica out, replaced, back): when it ended.
    until_s: float | None = None
    mode: str = "reload"
    drain_s: float | None = None
    drained: bool | None = None
    # More figures of the move (a replica's cold start, ...).
    figures: dict[str, float | None] = Field(default_factory=dict)


class ScaleRecord(BaseModel):
    """A replica added ("out") or removed ("in") by the autoscaler; seconds since the load
    started (None: the step never happened)."""

    model_config = _LENIENT
    kind: str
    replica: str
    replicas_after: int
    crossed_s: float | None = None
    decided_s: float
    ready_s: float | None = None
    in_rotation_s: float | None = None
    serving_s: float | None = None


class SignalRecord(BaseModel):
    """The autoscaler's signal at one read: requests/s per replica in rotation."""

    model_config = _LENIENT
    t_s: float
    per_replica_rps: float | None = None
    replicas: int


class RolloutJournal(BaseModel):
    model_config = _LENIENT
    strategy: str
    steps: list[float] = Field(default_factory=list)
    # The candidate's share when the rollout ended, and why it ended there.
    final_share: float = 0.0
    stopped: str = ""
    interrupted: bool = False
    moves: list[MoveRecord] = Field(default_factory=list)
    looks: list[StepLook] = Field(default_factory=list)
    interval_s: float = 1.0
    intervals: list[VersionInterval] = Field(default_factory=list)
    # scale_out: the autoscaler's target, its signal over time and the replicas it added/removed.
    target_rps_per_replica: float | None = None
    # A target derived from one replica's capacity: where it came from, and the search behind it.
    target_basis: str = ""
    capacity: CapacityResult | None = None
    signal: list[SignalRecord] = Field(default_factory=list)
    scale_events: list[ScaleRecord] = Field(default_factory=list)
    baseline_stack: dict[str, Any] = Field(default_factory=dict)
    candidate_stack: dict[str, Any] = Field(default_factory=dict)
    profile: dict[str, Any] = Field(default_factory=dict)
    # What the candidate used of the baseline's stack (Redis, monitoring, logs).
    shared: list[str] = Field(default_factory=list)
