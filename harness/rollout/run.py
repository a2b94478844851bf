"""Run a rollout: the baseline and the candidate side by side behind the split front, steady
streaming load through it, the traffic moved step by step, every move's requests counted.

Canary: each step below 100% is looked at every `look_every_s` on that step's window (requests
sent after the move settled, and only those old enough to have finished: a slow version's
requests are not left out of a look for being slow); `verdict/rollout.py` decides promote, hold
or abort. Abort puts all traffic back on the baseline, and that move is checked like any other.
Blue-green: the candidate verified on its own front door, all traffic switched to it, the
baseline drained, then the switch back exercised the same way.

Whatever happens (a failure, Ctrl-C, SIGTERM) all traffic is put back on the baseline before the
stacks stop, and the result says where the rollout stopped.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from contextlib import ExitStack
from dataclasses import dataclass, field, replace
from pathlib import Path

import httpx

from harness.chaos.steady_state import ask_front_door
from harness.clients.http import http_get
from harness.clients.poll import poll_until
from harness.data.progress import Progress
from harness.data.samples import Sample, SampleTail
from harness.load.clock import now
from harness.load.runner import LoadRun, LoadRunError, run_load
from harness.measure.timeseries import per_second, per_version
from harness.report.rollout_journal import MoveRecord, RolloutJournal, ScaleRecord, SignalRecord
from harness.rollout.autoscale import Autoscaler
from harness.rollout.rolling import replace_replicas, restore_rotation
from harness.spec.rollout import RolloutSpec
from harness.spec.stack import StackSpec
from harness.stack import RunningStack, start_stack
from harness.stack.orchestrator import make_launcher
from harness.stack.ports import free_ports
from harness.stack.provider import Launcher, ServiceHandle
from harness.stack.split_front import BASELINE, CANDIDATE, SplitFront
from harness.stack.target import from_endpoints
from harness.verdict.checks import CheckResult
from harness.verdict.rollout import (
    Move,
    ScaleEvent,
    StepLook,
    burst_slo_check,
    canary_check,
    look_at_step,
    move_check,
    move_requests,
    scale_out_check,
)
from harness.verdict.steady_state import FrontDoorAnswer

FIRST_SAMPLE_TIMEOUT_S = 60.0
# Candidate probes before a blue-green switch: each must come back whole from the candidate.
VERIFY_PROBES = 3


@dataclass
class RolloutResult:
    spec: RolloutSpec
    checks: list[CheckResult]
    journal: RolloutJournal
    interrupted: bool = False
    samples: list[Sample] = field(default_factory=list)


class _Load(threading.Thread):
    def __init__(
        self,
        spec: RolloutSpec,
        front_url: str,
        stack: RunningStack,
        run_dir: Path,
        progress: Progress,
    ) -> None:
        super().__init__(name="rollout-load", daemon=True)
        self.target = replace(from_endpoints(stack.endpoints), url=front_url)
        self.spec, self.run_dir, self.progress = spec, run_dir, progress
        self.result: LoadRun | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            self.result = run_load(
                self.spec.load,
                self.target,
                self.run_dir,
                self.progress,
                stop=self.stop,
                default_checks=False,
            )
        except BaseException as exc:  # handed to the main thread
            self.error = exc


class _Rollout:
    """The state of one rollout while it runs: the front, the load's samples, the moves."""

    def __init__(
        self,
        spec: RolloutSpec,
        front: SplitFront | None,
        load: _Load,
        stacks: dict[str, RunningStack],
        progress: Progress,
    ) -> None:
        self.spec, self.front, self.load, self.stacks = spec, front, load, stacks
        self.progress = progress
        self.tail = SampleTail(load.run_dir / "samples")
        self.samples: list[Sample] = []
        self.moves: list[Move] = []
        self.looks: list[StepLook] = []
        self.stopped = ""
        self.checks: list[CheckResult] = []
        self.scaler: Autoscaler | None = None

    def read(self) -> list[Sample]:
        self.samples += self.tail.new_samples()
        return self.samples

    def alive(self) -> None:
        if not self.load.is_alive():
            raise LoadRunError(f"the rollout's load ended early: {self.load.error}")

    def move(self, label: str, share: float, expect: str | None) -> Move:
        """Move the candidate's share; when a version leaves traffic, wait for it to drain."""
        assert self.front is not None, "a share moves only through the split front"
        was = self.front.share
        at = now()
        self.front.set_share(share, self.spec.switch.mode)
        leaving = BASELINE if share >= 1 > was else CANDIDATE if share <= 0 < was else None
        drain_s, drained = (None, None) if leaving is None else self._drain(leaving, at)
        m = Move(
            f"{label}: {was:.0%} -> {share:.0%} candidate",
            at,
            expect,
            drain_s=drain_s,
            drained=drained,
            share_from=was,
            share_to=share,
        )
        self.moves.append(m)
        self.progress(
            f"  {label}: candidate {was:.0%} -> {share:.0%}"
            + ("" if drain_s is None else f", {leaving} drained in {drain_s:.1f}s")
        )
        return m

    def _drain(self, version: str, since: float) -> tuple[float | None, bool | None]:
        """Seconds until the version's nginx holds no request but ours (stub_status Writing)."""
        url = self.stacks[version].endpoints.nginx_status
        if url is None:
            return None, None

        def writing() -> int | None:
            try:
                text = http_get(url, timeout=2.0).text
            except httpx.HTTPError:
                return None
            for line in text.splitlines():
                if "Writing:" in line:
                    return int(line.split("Writing:")[1].split()[0])
            return None

        left = poll_until(
            writing, self.spec.switch.drain_timeout_s, 0.1, until=lambda w: w is not None and w <= 1
        )
        done = left is not None and left <= 1
        return (now() - since if done else None), done

    def wait(self, seconds: float) -> None:
        end = time.monotonic() + seconds
        while (left := end - time.monotonic()) > 0:
            self.alive()
            time.sleep(min(0.5, left))

    def canary(self) -> None:
        spec, a = self.spec, self.spec.analysis
        promoted = True
        for share in spec.steps:
            self.move(f"step to {share:.0%}", share, CANDIDATE if share >= 1 else None)
            if share >= 1:
                self.wait(spec.switch.settle_s + spec.bake_s)
                break
            start = self.moves[-1].at_s + spec.switch.settle_s
            decision = "hold"
            for look in range(1, a.max_looks + 1):
                self.wait(a.look_every_s if look > 1 else a.look_every_s + spec.switch.settle_s)
                lk = self._look(share, look, start)
                self.looks.append(lk)
                decision = lk.decision
                self.progress(
                    f"  {share:.0%} look {look}/{a.max_looks}: {lk.n_baseline} baseline, "
                    f"{lk.n_candidate} candidate requests: {decision}"
                    + ("" if decision == "promote" else f" ({lk.reasons[0]})")
                )
                if decision != "hold":
                    break
            if decision != "promote":
                promoted = False
                self.stopped = f"aborted at {share:.0%}"
                self.move("rollback", 0.0, BASELINE)
                self.wait(spec.switch.settle_s + spec.bake_s)
                break
        if promoted:
            self.stopped = "promoted to 100%"
        self.checks.append(canary_check(self.looks, spec.steps, promoted))

    def _look(self, share: float, look: int, start: float) -> StepLook:
        at = now()
        samples = self.read()
        window = [s for s in samples if s.sent_s >= start]
        # Only requests old enough to have finished, were they as slow as the slowest seen yet.
        horizon = max([1.0, *(s.e2e_ms / 1000.0 for s in window)])
        window = [s for s in window if s.sent_s <= at - horizon]
        base = [s for s in window if s.x_version == BASELINE]
        cand = [s for s in window if s.x_version == CANDIDATE]
        t0 = self.load_start()
        return look_at_step(share, look, at - t0, base, cand, self.spec.analysis, seed=look)

    def load_start(self) -> float:
        return min((s.sent_s for s in self.samples), default=now())

    def scale_out(self, launcher: Launcher, launched: list[ServiceHandle]) -> None:
        """The burst runs its course (the load's own duration) under the autoscaler."""
        self.scaler = Autoscaler(
            self.spec, self.stacks[BASELINE], launcher, launched, self.progress
        )
        self.scaler.run(until=lambda: not self.load.is_alive())
        self.moves += self.scaler.moves
        outs = [e for e in self.scaler.events if e.kind == "out"]
        self.stopped = f"the burst ran its course; {len(outs)} replica(s) added"

    def rolling(
        self, candidate: StackSpec, launcher: Launcher, launched: list[ServiceHandle]
    ) -> None:
        spec = self.spec
        self.wait(spec.switch.settle_s)
        moves = replace_replicas(
            spec, self.stacks[BASELINE], candidate, launcher, self.progress, self.alive, launched
        )
        self.moves += moves
        self.wait(spec.switch.settle_s + spec.bake_s)
        failed = [m for m in moves if m.problems]
        self.stopped = (
            f"stopped at {failed[0].title.rsplit(': ', 1)[1]}"
            if failed
            else f"every primary replica replaced ({len(moves)})"
        )

    def blue_green(self) -> None:
        spec = self.spec
        verified = verify_candidate(self.stacks[CANDIDATE])
        self.checks.append(verified)
        if verified.outcome != "pass":
            self.stopped = "candidate not verified: no traffic moved"
            return
        self.wait(spec.hold_s)
        self.move("switch to the candidate (green)", 1.0, CANDIDATE)
        self.wait(spec.switch.settle_s + spec.hold_s)
        self.move("switch back to the baseline (blue): the rollback", 0.0, BASELINE)
        self.wait(spec.switch.settle_s + spec.bake_s)
        self.stopped = "switched to the candidate and back"


def verify_candidate(stack: RunningStack) -> CheckResult:
    """A few streamed requests straight to the candidate's front door, each answered in full."""
    answers: list[FrontDoorAnswer] = [ask_front_door(stack) for _ in range(VERIFY_PROBES)]
    failures = [f"probe {i + 1}: {why}" for i, a in enumerate(answers) if (why := a.off())]
    ttfts = [a.ttft_s * 1000 for a in answers if a.ttft_s is not None]
    return CheckResult.from_reasons(
        "blue-green: candidate verified before it takes traffic",
        "rollout",
        failures,
        {"probes": len(answers), "ttft_max_ms": round(max(ttfts), 1) if ttfts else None},
        passed_note=f"{len(answers)} streamed requests answered in full by the candidate",
    )


def _move_checks(r: _Rollout, end_s: float) -> list[CheckResult]:
    settle = r.spec.switch.settle_s
    out = []
    for i, m in enumerate(r.moves):
        nxt = r.moves[i + 1].at_s if i + 1 < len(r.moves) else end_s
        after = [s for s in r.samples if m.at_s + settle <= s.sent_s < nxt]
        out.append(move_check(m, move_requests(r.samples, m, settle), after, r.spec.switch))
    return out


def _burst(spec: RolloutSpec, t0: float) -> tuple[float, float]:
    """The burst's window on the samples' clock: the load's spike, else the whole load."""
    load, shape = spec.load, spec.load.shape
    if shape.kind != "spike":
        return t0, t0 + load.duration_s
    at = shape.spike_at_s if shape.spike_at_s is not None else load.duration_s / 3
    length = shape.spike_s if shape.spike_s is not None else load.duration_s / 3
    return t0 + at, t0 + at + length


def _scale_checks(r: _Rollout, end_s: float) -> list[CheckResult]:
    scaler = r.scaler
    if scaler is None:
        return []
    a = r.spec.autoscale
    t0 = r.load_start()
    seconds = [(t0 + b.t_s, b.ttft_p95_ms) for b in per_second(r.samples, t0, max(1.0, end_s - t0))]
    return [
        scale_out_check(scaler.signal, scaler.events, a.target_rps_per_replica, a.serve_within_s),
        burst_slo_check(
            seconds, scaler.events, _burst(r.spec, t0), a.ttft_p95_ms, a.recover_within_s
        ),
    ]


def _scale_record(e: ScaleEvent, t0: float) -> ScaleRecord:
    def rel(t: float | None) -> float | None:
        return None if t is None else round(t - t0, 2)

    return ScaleRecord(
        kind=e.kind,
        replica=e.replica,
        replicas_after=e.replicas_after,
        crossed_s=rel(e.crossed_s),
        decided_s=round(e.decided_s - t0, 2),
        ready_s=rel(e.ready_s),
        in_rotation_s=rel(e.in_rotation_s),
        serving_s=rel(e.serving_s),
    )


def _stop_all(services: list[ServiceHandle]) -> None:
    for svc in services:
        svc.stop()


def run_rollout(
    spec: RolloutSpec,
    baseline: StackSpec,
    candidate: StackSpec,
    run_dir: Path,
    *,
    provider: str | None = None,
    progress: Progress = print,
    on_stacks: Callable[[RunningStack], None] | None = None,
) -> RolloutResult:
    """Bring both versions up, run the rollout, and always put traffic back on the baseline and
    stop everything. Interrupted (KeyboardInterrupt): the result is marked and says where."""
    journal = RolloutJournal(
        strategy=spec.strategy,
        steps=list(spec.steps),
        baseline_stack=baseline.model_dump(mode="json"),
        candidate_stack=candidate.model_dump(mode="json"),
        profile=spec.model_dump(mode="json"),
    )
    result = RolloutResult(spec=spec, checks=[], journal=journal)
    one_stack = spec.strategy in ("rolling", "scale_out")
    # A rolling update replaces replicas inside the baseline, a scale-out adds them: only it runs.
    versions = [(BASELINE, baseline)]
    if not one_stack:
        versions.append((CANDIDATE, candidate))
    with ExitStack() as stack:
        stacks: dict[str, RunningStack] = {}
        for version, stack_spec in versions:
            progress(f"{version}: starting {stack_spec.name}")
            stacks[version] = stack.enter_context(
                start_stack(
                    stack_spec,
                    run_dir=run_dir / version,
                    provider=provider,
                    progress=progress,
                    wait_for_scrapes=False,
                )
            )
        if on_stacks is not None:
            on_stacks(stacks[BASELINE])
        launcher = make_launcher(provider or baseline.provider, baseline, run_dir)
        stack.callback(launcher.close)
        # Replicas a rolling update started: stopped before their stack's teardown.
        launched: list[ServiceHandle] = []
        stack.callback(_stop_all, launched)
        front: SplitFront | None = None
        entry = stacks[BASELINE].endpoints.nginx
        if not one_stack:
            front = SplitFront(
                launcher,
                run_dir / "front",
                free_ports(1)[0],
                stacks[BASELINE].endpoints.nginx,
                stacks[CANDIDATE].endpoints.nginx,
                spec.switch.drain_timeout_s,
            )
            stack.callback(front.stop)
            entry = front.url
            progress(f"split front {front.url}: all traffic on the baseline")
        load = _Load(spec, entry, stacks[BASELINE], run_dir / "load", progress)
        r = _Rollout(spec, front, load, stacks, progress)
        load.start()
        finished = False
        try:
            got = poll_until(
                lambda: bool(r.read()),
                FIRST_SAMPLE_TIMEOUT_S,
                0.2,
                until=lambda got: got or not load.is_alive(),
            )
            if not got:
                raise LoadRunError(f"the rollout's load never completed a request: {load.error}")
            if spec.strategy == "canary":
                r.canary()
            elif spec.strategy == "blue_green":
                r.blue_green()
            elif spec.strategy == "rolling":
                r.rolling(candidate, launcher, launched)
            else:
                r.scale_out(launcher, launched)
            finished = True
        except KeyboardInterrupt:
            result.interrupted = True
            where = f"at {front.share:.0%}" if front is not None else f"during the {spec.strategy}"
            r.stopped = f"interrupted {where}" + (f" ({r.stopped})" if r.stopped else "")
        finally:
            if not finished and front is not None and front.share != 0 and front.service.alive():
                # Back on the baseline before anything stops, whatever ended the rollout.
                r.move("rollback (the rollout ended)", 0.0, BASELINE)
            if not finished and front is None:
                restore_rotation(stacks[BASELINE])
            load.stop.set()
            load.join(timeout=spec.load.drain_timeout_s + 60)
        end = now()
        r.read()
        if load.result is not None:
            r.samples = load.result.samples
        result.samples = r.samples
        result.checks = r.checks + _scale_checks(r, end) + _move_checks(r, end)
        t0 = r.load_start()
        journal.final_share = front.share if front is not None else 1.0 if finished else 0.0
        journal.stopped = r.stopped
        journal.interrupted = result.interrupted
        journal.looks = r.looks
        journal.moves = [
            MoveRecord(
                label=m.title if m.share_to is None else m.title.split(": ")[0],
                share_from=m.share_from,
                share_to=m.share_to,
                at_s=round(m.at_s - t0, 2),
                until_s=None if m.until_s is None else round(m.until_s - t0, 2),
                mode=("drain" if spec.rolling.drain else "kill") if one_stack else spec.switch.mode,
                drain_s=m.drain_s,
                drained=m.drained,
                figures=m.figures,
            )
            for m in r.moves
        ]
        if r.scaler is not None:
            journal.target_rps_per_replica = spec.autoscale.target_rps_per_replica
            journal.signal = [
                SignalRecord(
                    t_s=round(p.t_s - t0, 2),
                    per_replica_rps=None
                    if p.per_replica_rps is None
                    else round(p.per_replica_rps, 2),
                    replicas=p.replicas,
                )
                for p in r.scaler.signal
            ]
            journal.scale_events = [_scale_record(e, t0) for e in r.scaler.events]
        journal.intervals = per_version(r.samples, t0, max(1.0, end - t0), journal.interval_s)
    return result
