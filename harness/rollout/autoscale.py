"""The harness as the autoscaler of the baseline's primary pool under a burst (local provider).

Every `poll_s` it reads the signal an HPA on a custom metric reads: the pool's request rate over
`rate_window_s` (the gateways' `llm_upstream_requests_total{pool="primary"}`, from Prometheus)
divided by the replicas in rotation. Above `target_rps_per_replica` for `scale_up_after_s`: a
replica is added (a new model server on a port of its own, dialled directly; ready when its first
token is answered; then put in every gateway's rotation, SIGHUP). Below what one replica fewer
could carry for `scale_down_after_s`: the newest added replica is taken out of rotation, drained
and stopped. Each step's time is kept: the signal crossing the target, the decision, the replica
ready, in rotation, serving its first request (its own request counter moved).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field

from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient, PrometheusError
from harness.data.progress import Progress
from harness.load.clock import now
from harness.rollout.rolling import (
    drain_replica,
    primary_urls,
    server_metric,
    set_rotation,
    start_replica,
)
from harness.spec.rollout import RolloutSpec
from harness.stack import RunningStack
from harness.stack.planner import ModelServerSlot, model_server_def
from harness.stack.ports import free_ports
from harness.stack.provider import Launcher, ServiceHandle
from harness.verdict.rollout import Move, ScaleEvent, SignalPoint

SIGNAL = 'sum(rate(llm_upstream_requests_total{{pool="primary"}}[{window}s]))'
# A model server's own count of what it served (vLLM and its simulator; llama.cpp).
SERVED_COUNTERS = ("vllm:request_success_total", "llamacpp:tokens_predicted_total")


@dataclass
class Autoscaler:
    spec: RolloutSpec
    stack: RunningStack
    launcher: Launcher
    launched: list[ServiceHandle]
    progress: Progress
    signal: list[SignalPoint] = field(default_factory=list)
    events: list[ScaleEvent] = field(default_factory=list)
    moves: list[Move] = field(default_factory=list)
    # Replicas added and in rotation, newest last: (name, url, handle).
    added: list[tuple[str, str, ServiceHandle]] = field(default_factory=list)

    @property
    def target(self) -> float:
        t = self.spec.autoscale.target_rps_per_replica
        assert not isinstance(t, str), "a target from capacity is measured before the burst"
        return t

    def in_rotation(self) -> list[str]:
        return primary_urls(self.stack) + [url for _, url, _ in self.added]

    def _read(self, prom: PrometheusClient) -> float | None:
        try:
            got = prom.query(SIGNAL.format(window=round(self.spec.autoscale.rate_window_s)))
        except PrometheusError:
            return None
        return got[0].value if got else None  # no series yet: no signal, not a zero

    def run(self, until: Callable[[], bool], moves_until_s: float | None = None) -> None:
        """Control until `until()` (the burst's load ended). After `moves_until_s` the signal is
        still read but no replica is added or removed: a move there would settle after the
        load's last request was sent, with none to show what it cost."""
        a = self.spec.autoscale
        above_since: float | None = None
        below_since: float | None = None
        # After a scale-out the signal's window still holds the old rate: no decision within it.
        quiet_until = 0.0
        with PrometheusClient(
            self.stack.endpoints.prometheus, headers=self.stack.prometheus_headers()
        ) as prom:
            while not until():
                rate = self._read(prom)
                t = now()
                replicas = len(self.in_rotation())
                per = None if rate is None else rate / replicas
                self.signal.append(SignalPoint(t_s=t, per_replica_rps=per, replicas=replicas))
                over = per is not None and per > self.target
                # One replica fewer could carry it with room (10%): the scale-in signal.
                under = (
                    rate is not None and replicas > 1 and rate / (replicas - 1) < 0.9 * self.target
                )
                above_since = (above_since or t) if over else None
                below_since = (below_since or t) if under else None
                started = len(primary_urls(self.stack)) + sum(
                    1 for e in self.events if e.kind == "out"
                )
                up = above_since is not None and t - above_since >= a.scale_up_after_s
                down = below_since is not None and t - below_since >= a.scale_down_after_s
                may_move = t >= quiet_until and (moves_until_s is None or t <= moves_until_s)
                if may_move and up and started < a.max_replicas:
                    assert above_since is not None
                    self._scale_out(above_since, t)
                    above_since = None
                    quiet_until = now() + a.rate_window_s
                elif may_move and down and self.added:
                    self._scale_in()
                    below_since = None
                time.sleep(a.poll_s)

    def _scale_out(self, crossed: float, decided: float) -> None:
        a = self.spec.autoscale
        n = len(primary_urls(self.stack)) + sum(1 for e in self.events if e.kind == "out")
        name = f"primary-{n}"
        port = free_ports(1)[0]
        url = f"http://127.0.0.1:{port}"
        definition = model_server_def(
            ModelServerSlot(name, "primary", port), self.stack.spec.primary, self.stack.run_dir
        )
        started = now()
        handle, first, _ = start_replica(
            self.stack,
            self.launcher,
            self.launched,
            definition,
            self.stack.spec.primary.server.served_name,
            f"{name}.log",
            a.serve_within_s,
        )
        ready = None if first is None else started + first
        in_rotation = serving = None
        if ready is not None and a.put_in_rotation:
            self.added.append((name, url, handle))
            set_rotation(self.stack, self.in_rotation())
            in_rotation = now()
        if ready is not None:
            base = server_metric(url, SERVED_COUNTERS) or 0.0
            left = a.serve_within_s - (now() - decided)
            moved = poll_until(
                lambda: server_metric(url, SERVED_COUNTERS),
                max(0.5, left),
                0.1,
                until=lambda v: v is not None and v > base,
            )
            if moved is not None and moved > base:
                serving = now()
        event = ScaleEvent(
            kind="out",
            replica=name,
            replicas_after=len(self.in_rotation()),
            crossed_s=crossed,
            decided_s=decided,
            started_s=started,
            ready_s=ready,
            in_rotation_s=in_rotation,
            serving_s=serving,
        )
        self.events.append(event)
        self.progress(
            f"  scale-out: {name} decided {decided - crossed:.1f}s after the signal crossed, "
            + (f"ready after {ready - decided:.1f}s" if ready else "never ready")
            + (f", serving after {serving - decided:.1f}s" if serving else ", never serving")
        )

    def _scale_in(self) -> None:
        name, url, handle = self.added.pop()
        at = now()
        set_rotation(self.stack, self.in_rotation())
        drain_s, drained = drain_replica(self.stack, url, url, self.spec.switch.drain_timeout_s)
        handle.stop()
        self.events.append(
            ScaleEvent(
                kind="in",
                replica=name,
                replicas_after=len(self.in_rotation()),
                decided_s=at,
                started_s=at,
            )
        )
        self.moves.append(
            Move(
                f"scale-in: {name} removed",
                at,
                None,
                until_s=now(),
                drain_s=drain_s,
                drained=drained,
            )
        )
        self.progress(
            f"  scale-in: {name} out of rotation, "
            + (f"drained in {drain_s:.1f}s" if drain_s is not None else "not drained")
        )
