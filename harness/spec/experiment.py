"""A chaos experiment: background load, one fault for a while, and what must hold before, during
and after it (plus which alerts must fire and resolve)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator

from harness.spec.base import Strict
from harness.spec.load import LoadSpec, Seconds
from harness.spec.stack import StackSpec


class ProxyDown(Strict):
    """Toxiproxy refuses connections to these proxies (the services look down)."""

    kind: Literal["proxy_down"] = "proxy_down"
    targets: tuple[str, ...] = Field(min_length=1)


class Latency(Strict):
    """Toxiproxy delays every byte the service sends back (downstream) by latency +- jitter."""

    kind: Literal["latency"] = "latency"
    targets: tuple[str, ...] = Field(min_length=1)
    latency_ms: int = Field(ge=1)
    jitter_ms: int = Field(0, ge=0)


class Pause(Strict):
    """SIGSTOP (container: docker pause) the services; resumed at the end of the fault."""

    kind: Literal["pause"] = "pause"
    targets: tuple[str, ...] = Field(min_length=1)


class Kill(Strict):
    """SIGKILL (container: docker kill) the services; restarted at the end of the fault."""

    kind: Literal["kill"] = "kill"
    targets: tuple[str, ...] = Field(min_length=1)


Fault = Annotated[ProxyDown | Latency | Pause | Kill, Field(discriminator="kind")]


def unknown_targets(
    fault: ProxyDown | Latency | Pause | Kill, proxies: set[str], services: set[str]
) -> tuple[list[str], str, set[str]]:
    """The fault's targets the stack lacks, what kind of name they must be (network faults act on
    Toxiproxy proxies, process faults on services) and the names the stack has."""
    known, what = (proxies, "Toxiproxy proxies") if isinstance(fault, ProxyDown | Latency) else (
        services, "services")  # fmt: skip
    return [t for t in fault.targets if t not in known], what, known


class AlertExpectation(Strict):
    alert: str = Field(min_length=1)
    # Seconds after the fault starts by which Alertmanager must have notified "firing".
    fires_within_s: Seconds = Field(120.0, gt=0)
    # Seconds after the fault ends by which it must have notified "resolved"; None: not checked.
    resolves_within_s: Seconds | None = Field(None, gt=0)


class Expectations(Strict):
    """Aggregate expressions (as SLOs: `fallback_share>=0.9`, `error_rate<=0.01`) per phase."""

    before: tuple[str, ...] = ()
    during: tuple[str, ...] = ()
    after: tuple[str, ...] = ()
    alerts: tuple[AlertExpectation, ...] = ()

    @field_validator("before", "during", "after")
    @classmethod
    def _parse(cls, v: tuple[str, ...]) -> tuple[str, ...]:
        from harness.measure.slo import parse_slo

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
