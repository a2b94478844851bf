"""A chaos experiment: background load, one fault for a while, and what must hold before, during
and after it (plus which alerts must fire and resolve).

Fault kinds, by where they act:
- network (a Toxiproxy proxy per model-server replica and Redis): `proxy_down` and every
  Toxiproxy toxic (`latency`, `bandwidth`, `slicer`, `limit_data`, `reset_peer`, `timeout`,
  `slow_close`), with the toxic's direction (`stream`) and `toxicity`;
- HTTP (the nginx fault front of a model-server replica, `faults.http_front` of the stack):
  `http_error` (a share of answers replaced by 500/503/429) and `stream_stall`;
- process (a service): `pause`, `kill`;
- figures (the simulated GPU exporter, `faults.gpu_sim_exporter` of the stack): `gpu_memory`;
- traffic (the stack's entry, where the load goes): `traffic_burst`, requests on one API key
  over its rate limit.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, get_args

from pydantic import Field, field_validator, model_validator

from harness.spec.base import Strict
from harness.spec.load import LoadSpec, Seconds
from harness.spec.stack import StackSpec

# The service name of a replica's nginx fault front, and of the simulated GPU exporter.
HTTP_FRONT_PREFIX = "httpfault-"
GPU_SIM_EXPORTER = "gpu-sim-exporter"


class ProxyDown(Strict):
    """Toxiproxy refuses connections to these proxies (the services look down)."""

    kind: Literal["proxy_down"] = "proxy_down"
    targets: tuple[str, ...] = Field(min_length=1)


class ToxicFault(Strict):
    """A Toxiproxy toxic on each target proxy. `stream`: downstream acts on what the service
    sends back, upstream on what is sent to it; `toxicity`: the share of connections affected."""

    targets: tuple[str, ...] = Field(min_length=1)
    stream: Literal["upstream", "downstream"] = "downstream"
    toxicity: float = Field(1.0, ge=0, le=1)

    def attributes(self) -> dict[str, int]:
        raise NotImplementedError


class Latency(ToxicFault):
    """Every chunk of data is delayed by latency_ms +- jitter_ms."""

    kind: Literal["latency"] = "latency"
    latency_ms: int = Field(ge=1)
    jitter_ms: int = Field(0, ge=0)

    def attributes(self) -> dict[str, int]:
        return {"latency": self.latency_ms, "jitter": self.jitter_ms}


class Bandwidth(ToxicFault):
    """At most rate_kbps kilobytes per second pass."""

    kind: Literal["bandwidth"] = "bandwidth"
    rate_kbps: int = Field(ge=0)

    def attributes(self) -> dict[str, int]:
        return {"rate": self.rate_kbps}


class Slicer(ToxicFault):
    """Data is sliced into pieces of average_size +- size_variation bytes, delay_us apart."""

    kind: Literal["slicer"] = "slicer"
    average_size: int = Field(ge=1)
    size_variation: int = Field(0, ge=0)
    delay_us: int = Field(0, ge=0)

    def attributes(self) -> dict[str, int]:
        return {
            "average_size": self.average_size,
            "size_variation": self.size_variation,
            "delay": self.delay_us,
        }


class LimitData(ToxicFault):
    """A connection is closed after `bytes` bytes (headers included): a stream cut short."""

    kind: Literal["limit_data"] = "limit_data"
    bytes: int = Field(ge=1)

    def attributes(self) -> dict[str, int]:
        return {"bytes": self.bytes}


class ResetPeer(ToxicFault):
    """Connections are reset (TCP RST) timeout_ms after they open; 0: at once."""

    kind: Literal["reset_peer"] = "reset_peer"
    timeout_ms: int = Field(0, ge=0)

    def attributes(self) -> dict[str, int]:
        return {"timeout": self.timeout_ms}


class Timeout(ToxicFault):
    """No data passes; connections are closed after timeout_ms, or held open while the fault
    lasts when it is 0 (a hung service behind an open socket)."""

    kind: Literal["timeout"] = "timeout"
    timeout_ms: int = Field(0, ge=0)

    def attributes(self) -> dict[str, int]:
        return {"timeout": self.timeout_ms}


class SlowClose(ToxicFault):
    """Closing a connection is delayed by delay_ms."""

    kind: Literal["slow_close"] = "slow_close"
    delay_ms: int = Field(ge=1)

    def attributes(self) -> dict[str, int]:
        return {"delay": self.delay_ms}


class HttpError(Strict):
    """A share of the requests to each target replica are answered with `status` by its nginx
    fault front instead of the model server (429 and 503 with Retry-After)."""

    kind: Literal["http_error"] = "http_error"
    targets: tuple[str, ...] = Field(min_length=1)
    status: Literal[500, 503, 429] = 500
    share: float = Field(1.0, gt=0, le=1)
    retry_after_s: int = Field(1, ge=0)


class StreamStall(Strict):
    """A share of the answers of each target replica stall after their first `after_bytes`
    bytes (headers included): the rest trickles at `rate_bytes_per_s`."""

    kind: Literal["stream_stall"] = "stream_stall"
    targets: tuple[str, ...] = Field(min_length=1)
    share: float = Field(1.0, gt=0, le=1)
    after_bytes: int = Field(600, ge=1)
    rate_bytes_per_s: int = Field(1, ge=1)


class Pause(Strict):
    """SIGSTOP (container: docker pause) the services; resumed at the end of the fault."""

    kind: Literal["pause"] = "pause"
    targets: tuple[str, ...] = Field(min_length=1)


class Kill(Strict):
    """SIGKILL (container: docker kill) the services; restarted at the end of the fault."""

    kind: Literal["kill"] = "kill"
    targets: tuple[str, ...] = Field(min_length=1)


class GpuMemory(Strict):
    """The simulated GPU exporter reports `used_ratio` of GPU memory in use (otherwise
    `faults.gpu_sim_exporter.idle_ratio`)."""

    kind: Literal["gpu_memory"] = "gpu_memory"
    targets: tuple[str, ...] = (GPU_SIM_EXPORTER,)
    used_ratio: float = Field(0.97, ge=0, le=1)


class TrafficBurst(Strict):
    """Extra requests on one API key at `rate_rps` during the fault (at most `max_requests`), on
    top of the load and to where it goes: the per-key rate limit must refuse what exceeds
    `per_minute` with 429 and Retry-After, and leave the load's own key alone."""

    kind: Literal["traffic_burst"] = "traffic_burst"
    # The stack's entry (nginx, or an external stack's URL): the only place a burst goes.
    targets: tuple[Literal["entry"], ...] = Field(("entry",), min_length=1, max_length=1)
    # None: the first key of the stack's gateway other than the load's.
    key: str | None = Field(None, min_length=1)
    rate_rps: float = Field(25.0, gt=0, le=200)
    max_requests: int = Field(200, ge=1, le=1000)
    # The budget judged (the policy's); None: the stack's declared requests_per_minute.
    per_minute: int | None = Field(None, ge=1)

    def planned(self, window_s: float) -> int:
        """Requests the burst sends in a window this long: bounded by its rate and its count."""
        return min(self.max_requests, int(self.rate_rps * window_s))


AnyFault = (
    ProxyDown
    | Latency
    | Bandwidth
    | Slicer
    | LimitData
    | ResetPeer
    | Timeout
    | SlowClose
    | HttpError
    | StreamStall
    | Pause
    | Kill
    | GpuMemory
    | TrafficBurst
)
Fault = Annotated[AnyFault, Field(discriminator="kind")]
FAULT_KINDS: tuple[type[AnyFault], ...] = get_args(AnyFault)


def unknown_targets(
    fault: AnyFault, proxies: set[str], services: set[str]
) -> tuple[list[str], str, set[str]]:
    """The fault's targets the stack lacks, what kind of name they must be (network faults act on
    Toxiproxy proxies, HTTP faults on replicas with a fault front, others on services) and the
    names the stack has."""
    if isinstance(fault, ProxyDown | ToxicFault):
        known, what = proxies, "Toxiproxy proxies"
    elif isinstance(fault, HttpError | StreamStall):
        known = {
            s.removeprefix(HTTP_FRONT_PREFIX) for s in services if s.startswith(HTTP_FRONT_PREFIX)
        }
        what = "replicas with an HTTP fault front (stack: faults.http_front)"
    elif isinstance(fault, TrafficBurst):
        known, what = {"entry"}, "the stack's entry, where the load goes"
    else:
        known, what = services, "services"
    return [t for t in fault.targets if t not in known], what, known


class AlertExpectation(Strict):
    alert: str = Field(min_length=1)
    # Seconds after the fault starts by which Alertmanager must have notified "firing".
    fires_within_s: Seconds = Field(120.0, gt=0)
    # Seconds after the fault ends by which it must have notified "resolved"; None: not checked.
    resolves_within_s: Seconds | None = Field(None, gt=0)
    # Seconds after the fault starts by which Prometheus must show it pending (before it fires:
    # the rule's `for:` held it back); None: not checked.
    pending_within_s: Seconds | None = Field(None, gt=0)


class Expectations(Strict):
    """Aggregate expressions (as SLOs: `fallback_share>=0.9`, `error_rate<=0.01`) per phase."""

    before: tuple[str, ...] = ()
    during: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    alerts: tuple[AlertExpectation, ...] = ()
    # No stream may end without a finish reason or [DONE] (a client would count it a success):
    # judged on every request of the experiment; false only to tell a story that expects it.
    no_silent_truncation: bool = True
    # Recovery (docs/chaos.md, "Recovery figures"); None: not judged. Seconds from the fault's
    # end until the stack is back within its steady state ...
    recovers_within_s: Seconds | None = Field(None, gt=0)
    # ... and the most good traffic the fault may cost: a share of the requests meant during and
    # after it, beyond what the steady state predicts (a share, so it holds at any load rate).
    max_goodput_lost: float | None = Field(None, ge=0, le=1)

    @field_validator("before", "during", "after")
    @classmethod
    def _parse(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from harness.spec.slo import parse_slo

        for expr in v:
            if parse_slo(expr).scope != "aggregate":
                raise ValueError(f"{expr!r}: phase expectations are aggregate figures")
        return v


def _default_load() -> LoadSpec:
    from harness.spec.gate import light_load

    return light_load(
        "experiment-load", duration_s=30.0, max_tokens=16, prompt_words=16, arrival="constant"
    )


class LiveRules(Strict):
    """Load a short-window copy of the stack's deployed alert rules while the experiment runs, so
    production-timed alerts can be proven to fire and resolve in minutes."""

    window: str = Field("15s", pattern=r"^\d+(ms|s|m)$")  # every range selector, e.g. [5m]
    hold: str = Field("5s", pattern=r"^\d+(ms|s|m)$")  # every `for:`


class ExperimentSpec(Strict):
    kind: Literal["experiment"] = "experiment"
    title: str = Field(min_length=1)
    description: str = ""
    # Deep-merged into the stack spec before it is validated (e.g. shorter alert windows).
    stack_overrides: dict[str, Any] = Field(default_factory=dict)
    load: LoadSpec = Field(default_factory=_default_load)
    fault: Fault
    # Seconds after the first request of the load; and how long the fault lasts.
    fault_at_s: Seconds = Field(8.0, ge=0)
    fault_for_s: Seconds = Field(10.0, gt=0)
    expect: Expectations = Expectations()
    live_rules: LiveRules | None = None

    @model_validator(mode="after")
    def _fault_inside_the_run(self) -> ExperimentSpec:
        end = self.fault_at_s + self.fault_for_s
        if end >= self.load.duration_s:
            raise ValueError(
                f"the fault ends at {end:g}s but the load lasts {self.load.duration_s:g}s; "
                "leave time for the 'after' phase"
            )
        return self

    @model_validator(mode="after")
    def _burst_over_its_budget(self) -> ExperimentSpec:
        fault = self.fault
        if isinstance(fault, TrafficBurst) and fault.per_minute is not None:
            sends = fault.planned(self.fault_for_s)
            if sends <= fault.per_minute:
                raise ValueError(
                    f"fault: the burst sends at most {sends} requests (rate_rps x fault_for_s, "
                    f"max_requests), not more than per_minute {fault.per_minute}: no request "
                    "would be refused"
                )
        return self


def deep_merge(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for k, v in extra.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = deep_merge(out[k], v)
        else:
            out[k] = v
    return out


def apply_stack_overrides(
    stack: StackSpec, overrides: list[dict[str, Any]], source: str
) -> StackSpec:
    """The stack spec with experiments' overrides deep-merged in, validated again.

    Only fields the user set are merged: defaults come back on parsing, so an unset field (the
    image map, say) still defers to what is resolved later (the built image-map file).
    """
    from harness.spec.loader import parse_model

    merged = stack.model_dump(mode="json", exclude_unset=True)
    for extra in overrides:
        merged = deep_merge(merged, extra)
    return parse_model(StackSpec, merged, source)
