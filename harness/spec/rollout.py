"""A rollout profile: how traffic moves from the running version (baseline) to the new one
(candidate), and the bar the candidate must clear at each move.

The profile is the policy: its margins, bounds and switch SLO are never the candidate's. Two
strategies:
- `canary`: the candidate's share goes through `steps` (default 5% -> 50% -> 100%, PRACTICES.md);
  at each step below 100% the candidate is compared with the baseline on the traffic of that
  same window, look by look, until it is shown no worse than every margin (promote), shown worse
  or still undecided at the step's bound (abort: all traffic back on the baseline).
- `blue_green`: the candidate (green) is verified while the baseline (blue) takes all traffic,
  then all traffic switches to green under load, blue drains, and the switch back (the rollback)
  is exercised the same way.
- `rolling`: in the baseline's primary pool each model-server replica in turn is taken out of the
  gateways' rotation, drained, stopped, started as the candidate's primary server, shown ready
  (its first token answered) and put back.
- `scale_out`: the baseline alone under a burst (the load's shape), the harness acting as the
  autoscaler of its primary pool (PRACTICES.md's HPA rule as a policy): a replica added when the
  per-replica request rate stays above the target, removed (drained) when it falls back.
"""

from __future__ import annotations

from typing import Literal

from pydantic import Field, field_validator, model_validator

from harness.spec.base import Strict
from harness.spec.load import ClosedLoop, LoadSpec, Seconds

Strategy = Literal["canary", "blue_green", "rolling", "scale_out"]
# What decides a canary step: every figure, or the gross failures alone (`Analysis.judge`).
Judge = Literal["all", "gross_failures"]


class Margins(Strict):
    """How much worse than the baseline the candidate may be and still be promoted.

    Latency figures are relative changes of the candidate's statistic over the baseline's (0.1:
    at most 10% slower); rates are differences in percentage points (1.0: at most 1 pp more).
    """

    ttft_p50: float = Field(0.10, gt=0, le=10)
    ttft_p95: float = Field(0.20, gt=0, le=10)
    itl_p50: float = Field(0.10, gt=0, le=10)
    e2e_p50: float = Field(0.10, gt=0, le=10)
    error_rate_pp: float = Field(1.0, gt=0, le=100)
    fallback_share_pp: float = Field(1.0, gt=0, le=100)


class Analysis(Strict):
    """The looks at one canary step: every `look_every_s`, at most `max_looks` (the step's bound);
    the overall chance of promoting a candidate worse than a margin is at most `alpha` per figure
    (alpha spending over the looks, as the gate's SLO looks)."""

    look_every_s: Seconds = Field(10.0, gt=0, le=3600)
    max_looks: int = Field(6, ge=1, le=50)
    alpha: float = Field(0.05, gt=0, lt=0.5)
    # Bootstrap resamples of a latency figure's interval, per look.
    resamples: int = Field(1000, ge=100, le=100_000)
    margins: Margins = Margins()
    # all: every figure decides. gross_failures: only the error rate (failed, cut, hung or refused
    # requests) and the fallback share decide; the latency figures are reported with their
    # intervals and the candidate requests that would decide them, and neither hold nor abort a
    # step (a stack whose steps carry too few requests to decide a few percent: llama.cpp on CPU).
    judge: Judge = "all"


class Switch(Strict):
    """How the traffic moves, and what a move must not cost the requests around it."""

    # reload: nginx reloads its weights gracefully. restart: nginx is stopped and started (an
    # ungraceful switch: exists to show what one costs; the switch checks fail it).
    mode: Literal["reload", "restart"] = "reload"
    # Requests sent up to this long after a move, and those in flight at it, are the move's.
    settle_s: Seconds = Field(3.0, gt=0, le=600)
    # Every move: its requests' TTFT p95 at most this (the SLO during a switch).
    ttft_p95_ms: float = Field(2000.0, gt=0)
    # A version taken out of traffic finishes its in-flight streams within this, or is cut.
    drain_timeout_s: Seconds = Field(30.0, gt=0, le=3600)


class Rolling(Strict):
    """How a rolling update replaces each replica."""

    # false: each replica is killed at once, never taken out of rotation nor drained (what an
    # update without drain does; the per-replica checks see its cut streams).
    drain: bool = True
    # From the new replica's start to its first token (a llama.cpp server loads its model).
    ready_timeout_s: Seconds = Field(120.0, gt=0, le=3600)
    # Between two replicas: the pool serves whole this long.
    pause_s: Seconds = Field(2.0, ge=0, le=3600)


class CapacityTarget(Strict):
    """How `target_rps_per_replica: from_capacity` is set: before the burst, a short capacity
    search (`harness capacity`'s doubling, then bisection) through the stack's front door with one
    primary replica in rotation; the target is `share` of the highest rate shown to keep the SLO
    (TTFT p95, errors at most 1%), the per-replica rate an HPA's target stands for."""

    share: float = Field(0.7, gt=0, le=1)
    # The search's TTFT p95 SLO; None: the burst's own (`autoscale.ttft_p95_ms`).
    ttft_p95_ms: float | None = Field(None, gt=0)
    start_rps: float = Field(1.0, gt=0)
    max_rps: float = Field(1000.0, gt=0)
    # Each step's load, and the search's bound: at most this many steps, ended sooner when the
    # highest pass and the lowest fail are within `precision` of each other.
    step_s: Seconds = Field(5.0, gt=0, le=600)
    max_steps: int = Field(5, ge=1, le=12)
    precision: float = Field(0.25, gt=0, le=4)

    @model_validator(mode="after")
    def _rates(self) -> CapacityTarget:
        if self.max_rps < self.start_rps:
            raise ValueError(f"max_rps ({self.max_rps:g}) is below start_rps ({self.start_rps:g})")
        return self


class Autoscale(Strict):
    """PRACTICES.md's HPA rule as a policy, the harness acting as the controller. The signal is
    the one an HPA on a custom metric reads: the pool's request rate (the gateways'
    `llm_upstream_requests_total{pool="primary"}` from Prometheus) over the replicas in rotation."""

    # A rate, or from_capacity: derived from what one replica carries (`capacity`), where the
    # practices' 100 requests/s per replica is out of the hardware's reach (the CPU stack).
    target_rps_per_replica: float | Literal["from_capacity"] = 100.0
    capacity: CapacityTarget = CapacityTarget()
    min_replicas: int = Field(2, ge=1, le=64)
    max_replicas: int = Field(10, ge=1, le=64)
    # The rate's window in Prometheus, and how often the controller reads it.
    rate_window_s: Seconds = Field(5.0, ge=2, le=600)
    poll_s: Seconds = Field(1.0, gt=0, le=60)
    # How long the signal stays above the target before a replica is added (stabilization), and
    # below what one replica fewer could carry before one is removed.
    scale_up_after_s: Seconds = Field(2.0, ge=0, le=3600)
    scale_down_after_s: Seconds = Field(10.0, ge=0, le=3600)
    # The burst's SLO: TTFT p95 of the requests meant for each second; it must hold again within
    # `recover_within_s` of the new replica serving, for as long as the burst lasts.
    ttft_p95_ms: float = Field(1000.0, gt=0)
    recover_within_s: Seconds = Field(10.0, ge=0, le=3600)
    # A new replica must serve its first request within this of the decision.
    serve_within_s: Seconds = Field(60.0, gt=0, le=3600)
    # false: new replicas are started but never put in the gateways' rotation (what a scale-out
    # without its service registration does; the checks fail it).
    put_in_rotation: bool = True

    @field_validator("target_rps_per_replica", mode="before")
    @classmethod
    def _target(cls, v: object) -> object:
        if v == "from_capacity" or (
            isinstance(v, int | float) and not isinstance(v, bool) and v > 0
        ):
            return v
        raise ValueError("a rate above 0 (requests/s per replica) or from_capacity")

    @model_validator(mode="after")
    def _bounds(self) -> Autoscale:
        if self.max_replicas < self.min_replicas:
            raise ValueError(
                f"max_replicas ({self.max_replicas}) is below min_replicas ({self.min_replicas})"
            )
        if "capacity" in self.model_fields_set and self.target_rps_per_replica != "from_capacity":
            raise ValueError(
                "capacity is used only with target_rps_per_replica: from_capacity (the target "
                f"is {self.target_rps_per_replica:g} here)"
            )
        return self


def _default_load() -> LoadSpec:
    return LoadSpec(name="rollout", load=ClosedLoop(users=8), duration_s=3600.0)


# What a candidate may use of the baseline's stack instead of starting its own.
Shareable = Literal["redis", "monitoring", "logs"]


class RolloutSpec(Strict):
    kind: Literal["rollout"] = "rollout"
    name: str = "rollout"
    strategy: Strategy = "canary"
    # The candidate's share at each canary step, rising, ending at 1 (PRACTICES.md: 5/50/100%).
    steps: tuple[float, ...] = (0.05, 0.5, 1.0)
    # Steady streaming load for the whole rollout; its duration_s is only an upper bound (the
    # rollout ends it when the last step is decided).
    load: LoadSpec = Field(default_factory=_default_load)
    analysis: Analysis = Analysis()
    switch: Switch = Switch()
    rolling: Rolling = Rolling()
    autoscale: Autoscale = Autoscale()
    # Blue-green: after each switch, the version now in traffic serves alone this long.
    hold_s: Seconds = Field(5.0, gt=0, le=3600)
    # Canary at 100%, blue-green after the switch back: the load runs this long on the final
    # version before the rollout ends (its requests are checked like a switch's).
    bake_s: Seconds = Field(5.0, ge=0, le=3600)
    # Canary and blue-green: what the candidate uses of the baseline's stack, as the versions of a
    # real rollout share them: Redis (the response cache, the rate limits), Prometheus with
    # Alertmanager (the alert rules see both versions, each target labelled by its version), the
    # log store (each line with a `stack` field). []: the candidate starts its own.
    shared: tuple[Shareable, ...] = ("redis", "monitoring", "logs")

    @field_validator("steps")
    @classmethod
    def _steps_rise_to_one(cls, v: tuple[float, ...]) -> tuple[float, ...]:
        if not v:
            raise ValueError("at least one step")
        if any(not 0 < s <= 1 for s in v):
            raise ValueError(f"each step is a share in (0, 1], got {list(v)}")
        if list(v) != sorted(set(v)):
            raise ValueError(f"steps must rise, each once, got {list(v)}")
        if v[-1] != 1:
            raise ValueError(f"the last step must be 1 (all traffic on the candidate), got {v[-1]}")
        return v

    @model_validator(mode="after")
    def _load_streams(self) -> RolloutSpec:
        if not self.load.workload.stream:
            raise ValueError("load.workload.stream must be true: a rollout counts every stream")
        return self
