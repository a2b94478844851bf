"""A scale-out watched, not made: a deployment the harness did not start scales itself (its own
autoscaler: a Kubernetes HPA, KEDA) under the harness's burst, and the harness times it.

Every `poll_s` it reads the signal the autoscaler reads (`external.replicas.signal` on the
deployment's Prometheus) and the replicas: with a Kubernetes API, the Deployment's replicas asked
for (a rise is the decision) and ready, and the Service's ready endpoints (in rotation); without
one, the replicas up in Prometheus (each arrival is seen ready and in rotation at once, and its
decision is not seen: timed from the arrival). A new replica serves once its own served count
(`external.replicas.served`, by instance) moves. A scale-in is recorded from the Deployment only.
The events and the signal are those the harness's own autoscaler records, judged by the same
check.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.clients.kubernetes import DeploymentReader, DeploymentState
from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient, PrometheusError
from harness.data.progress import Progress
from harness.errors import StackError
from harness.load.clock import now
from harness.spec.external import ExternalReplicas
from harness.spec.rollout import RolloutSpec
from harness.verdict.rollout import Move, ScaleEvent, SignalPoint

FIRST_STATE_S = 30.0


@dataclass
class _Arrival:
    """A replica on its way: decided, then ready, in rotation (its instance) and serving."""

    decided_s: float
    crossed_s: float | None
    ready_s: float | None = None
    instance: str | None = None
    in_rotation_s: float | None = None
    served_at_entry: float = 0.0
    serving_s: float | None = None


@dataclass
class ReplicaWatch:
    spec: RolloutSpec
    replicas: ExternalReplicas
    prom: PrometheusClient
    k8s: DeploymentReader | None
    progress: Progress
    signal: list[SignalPoint] = field(default_factory=list)
    events: list[ScaleEvent] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)  # a watch moves nothing

    @property
    def target(self) -> float:
        t = self.spec.autoscale.target_rps_per_replica
        assert not isinstance(t, str), "an external deployment's target is its autoscaler's"
        return t

    def _query(self, expr: str) -> dict[str, float] | None:
        try:
            rows = self.prom.query(expr)
        except PrometheusError:
            return None
        return {row.labels.get("instance", ""): row.value for row in rows}

    def _state(self) -> DeploymentState | None:
        if self.k8s is not None:
            return self.k8s.read()
        up = self._query(self.replicas.up)
        if up is None:
            return None
        return DeploymentState(len(up), len(up), frozenset(up))

    def _first_state(self) -> DeploymentState:
        """The replicas before the burst: a deployment that serves has one in rotation at least
        (Prometheus may take a few seconds to list a target it has just discovered)."""
        state = poll_until(
            self._state, FIRST_STATE_S, 0.5, until=lambda s: bool(s and s.in_rotation)
        )
        if state is None or not state.in_rotation:
            where = "the Service's ready endpoints" if self.k8s else repr(self.replicas.up)
            raise StackError(
                f"no replica of the deployment in rotation after {FIRST_STATE_S:g}s ({where})"
            )
        return state

    def run(self, until: Callable[[], bool]) -> None:
        """Watch until `until()` (the burst's load ended)."""
        a = self.spec.autoscale
        window = self.replicas.signal.replace("{window}", str(round(a.rate_window_s)))
        first = self._first_state()
        desired, known = first.desired, set(first.in_rotation)
        arrivals: list[_Arrival] = []
        # The start of the latest run of readings above the target: the decision may come (and
        # the signal fall back) between two reads.
        crossed: float | None = None
        was_over = False
        while not until():
            t = now()
            rates = self._query(window)
            rate = sum(rates.values()) if rates else None
            state = self._state() or DeploymentState(desired, len(known), frozenset(known))
            replicas = len(state.in_rotation)
            per = None if rate is None or not replicas else rate / replicas
            self.signal.append(SignalPoint(t_s=t, per_replica_rps=per, replicas=replicas))
            over = per is not None and per > self.target
            crossed = t if over and not was_over else crossed
            was_over = over
            if self.k8s is not None and state.desired > desired:
                arrivals += [_Arrival(t, crossed) for _ in range(state.desired - desired)]
                self.progress(f"  scale-out seen: {desired} -> {state.desired} replicas asked for")
            elif self.k8s is not None and state.desired < desired:
                # Only a Deployment says a replica was asked away: a target missing from one
                # Prometheus read may be a failed scrape.
                self._scale_in(t, desired - state.desired, replicas)
            desired = state.desired
            # Ready beyond the replicas the watch began with: the oldest arrivals first.
            done = sum(1 for x in arrivals if x.ready_s is not None)
            newly = max(0, state.ready - first.ready - done)
            for x in [x for x in arrivals if x.ready_s is None][:newly]:
                x.ready_s = t
            served = self._query(self.replicas.served) or {}
            for inst in sorted(state.in_rotation - known):
                known.add(inst)
                new = next((x for x in arrivals if x.instance is None), None)
                if new is None and self.k8s is not None:
                    continue  # a replica replaced, not added: no decision asked for it
                if new is None:  # no decision seen (no Kubernetes API): timed from the arrival
                    new = _Arrival(t, crossed, ready_s=t)
                    arrivals.append(new)
                    self.progress(f"  scale-out seen: {inst} arrived")
                new.instance, new.in_rotation_s = inst, t
                new.served_at_entry = served.get(inst, 0.0)
            for x in arrivals:
                moved = x.instance is not None and served.get(x.instance, 0.0) > x.served_at_entry
                if moved and x.serving_s is None and t - x.decided_s <= a.serve_within_s:
                    x.serving_s = t
            time.sleep(a.poll_s)
        n0 = len(first.in_rotation)
        self.events += [
            ScaleEvent(
                kind="out",
                replica=x.instance or f"replica {n0 + i + 1}",
                replicas_after=n0 + i + 1,
                crossed_s=x.crossed_s,
                decided_s=x.decided_s,
                started_s=x.decided_s,
                ready_s=x.ready_s,
                in_rotation_s=x.in_rotation_s,
                serving_s=x.serving_s,
            )
            for i, x in enumerate(arrivals)
        ]
        self.events.sort(key=lambda e: e.decided_s)

    def _scale_in(self, t: float, fewer: int, replicas: int) -> None:
        for i in range(fewer):
            self.events.append(
                ScaleEvent(
                    kind="in",
                    replica=f"replica {replicas - i}",
                    replicas_after=replicas - i - 1,
                    decided_s=t,
                    started_s=t,
                )
            )
        self.progress(f"  scale-in seen: {fewer} replica(s) fewer asked for")
