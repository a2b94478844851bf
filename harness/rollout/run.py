"""Run a rollout: the baseline and the candidate side by side behind the split front, steady
streaming load through it, the traffic moved step by step, every move's requests counted.

Canary: each step below 100% is looked at every `look_every_s` on that step's window (requests
sent after the move settled, and only those old enough to have finished: a slow version's
requests are not left out of a look for being slow); `verdict/rollout.py` decides promote, hold
or abort. Abort puts all traffic back on the baseline, and that move is checked like any other.
Blue-green: the candidate verified on its own front door, all traffic switched to it, the
baseline drained, then the switch back exercised the same way.

An external deployment (a stack spec with `provider: external`) is not started here: with hooks
(`external.rollout`) its own tooling moves the traffic at the harness's word, the load goes to its
entry and each answer names its version in a header; without hooks (the baseline's and the
candidate's own URLs, as an Argo Rollouts analysis has them) the harness splits its own load
between the two and judges one step (`compare`), moving nothing.

Whatever happens (a failure, Ctrl-C, SIGTERM) all traffic is put back on the baseline (or the
rollback hook is called) before the stacks stop, and the result says where the rollout stopped.
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
from harness.clients.kubernetes import DeploymentReader
from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient
from harness.clients.webhook import WebhookPayload
from harness.data.progress import Progress
from harness.data.samples import Sample, SampleTail
from harness.errors import StackError
from harness.load.clock import now
from harness.load.runner import LoadRun, LoadRunError, run_load
from harness.measure.timeseries import per_second, per_version
from harness.report.rollout_journal import MoveRecord, RolloutJournal, ScaleRecord, SignalRecord
from harness.rollout.autoscale import Autoscaler
from harness.rollout.capacity_target import CapacityBasis, measure_target
from harness.rollout.hooks import HookFailed
from harness.rollout.replica_watch import ReplicaWatch
from harness.rollout.rolling import replace_replicas, restore_rotation
from harness.rollout.traffic import FrontTraffic, HookTraffic, Traffic
from harness.spec.external import ExternalReplicas
from harness.spec.load import ClosedLoop, LoadSpec, OpenLoop
from harness.spec.rollout import RolloutSpec, Switch
from harness.spec.stack import StackSpec
from harness.stack import RunningStack, SharedServices, scrape_beside, start_stack
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
    verify_check,
)

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
    # What the baseline's Alertmanager sent during the rollout (it sees both versions where the
    # candidate shares its monitoring).
    alerts: list[WebhookPayload] = field(default_factory=list)


# How long after the final rollback settled the load still sends, so requests show the
# baseline answering again; and how much longer it may run on while none has answered yet.
ROLLBACK_CHECK_S = 1.5
RUN_OUT_BOUND_S = 30.0


class _Load(threading.Thread):
    """The rollout's load to one entry. Its samples name the version that answered: `version`
    when the entry is one version's own, else the version header's value, as `labels` map it."""

    def __init__(
        self,
        spec: LoadSpec,
        front_url: str,
        stack: RunningStack,
        run_dir: Path,
        progress: Progress,
        version: str | None = None,
        labels: dict[str, str] | None = None,
    ) -> None:
        super().__init__(name="rollout-load", daemon=True)
        self.target = replace(from_endpoints(stack.endpoints), url=front_url)
        self.spec, self.run_dir, self.progress = spec, run_dir, progress
        self.version, self.labels = version, labels or {}
        self.tail = SampleTail(run_dir / "samples")
        self.result: LoadRun | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def tagged(self, samples: list[Sample]) -> list[Sample]:
        for s in samples:
            s.x_version = self.version or self.labels.get(s.x_version or "", s.x_version)
        return samples

    def run(self) -> None:
        try:
            self.result = run_load(
                self.spec,
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
        front: Traffic | None,
        loads: list[_Load],
        stacks: dict[str, RunningStack],
        progress: Progress,
    ) -> None:
        self.spec, self.front, self.loads, self.stacks = spec, front, loads, stacks
        self.progress = progress
        self.samples: list[Sample] = []
        self.moves: list[Move] = []
        self.looks: list[StepLook] = []
        self.stopped = ""
        self.checks: list[CheckResult] = []
        self.scaler: Autoscaler | ReplicaWatch | None = None
        # autoscale.target_rps_per_replica: from_capacity: the target measured, and its basis.
        self.capacity: CapacityBasis | None = None

    def read(self) -> list[Sample]:
        for load in self.loads:
            self.samples += load.tagged(load.tail.new_samples())
        return self.samples

    def alive(self) -> None:
        for load in self.loads:
            if not load.is_alive():
                raise LoadRunError(f"the rollout's load ended early: {load.error}")

    def move(self, label: str, share: float, expect: str | None, promote: bool = False) -> Move:
        """Move the candidate's share (or, `promote`, call the promote hook); when a version
        leaves traffic, wait for it to drain. A hook that fails is a failed move: its reason
        is the move's problem, and the caller rolls back."""
        assert self.front is not None, "a share moves only through the split front or hooks"
        was = self.front.share
        at = now()
        problems: tuple[str, ...] = ()
        try:
            if promote:
                assert isinstance(self.front, HookTraffic)
                self.front.promote()
            else:
                self.front.set_share(share, self.spec.switch.mode)
        except HookFailed as exc:
            problems = (str(exc),)
            self.progress(f"  {label}: {exc}")
        leaving = BASELINE if share >= 1 > was else CANDIDATE if share <= 0 < was else None
        drain_s, drained = (None, None) if leaving is None else self._drain(leaving, at)
        m = Move(
            f"{label}: {was:.0%} -> {share:.0%} candidate",
            at,
            None if problems else expect,
            drain_s=drain_s,
            drained=drained,
            share_from=was,
            share_to=share,
            problems=problems,
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

    def run_out(self) -> None:
        """After a move that may end the rollout: the load runs on through the settle and the
        bake, and long enough that requests sent after the move settled have answered (its
        check is judged on them, whatever `bake_s` the profile gives)."""
        settled = self.moves[-1].at_s + self.spec.switch.settle_s
        self.wait(self.spec.switch.settle_s + max(self.spec.bake_s, ROLLBACK_CHECK_S))
        # A slow server (llama.cpp on a busy machine) may not have answered a request sent
        # after the move settled yet; the check needs one, so the load runs on, bounded.
        if self._answered_since(settled):
            return
        self.progress("  the load runs on until a request sent after the move answers")
        end = time.monotonic() + RUN_OUT_BOUND_S
        while time.monotonic() < end and not self._answered_since(settled):
            self.wait(0.5)

    def _answered_since(self, t: float) -> bool:
        return any(s.sent_s >= t for s in self.read())

    def canary(self) -> None:
        spec = self.spec
        failed: str | None = None  # a move that failed: why
        decision = "promote"
        for share in spec.steps:
            m = self.move(f"step to {share:.0%}", share, CANDIDATE if share >= 1 else None)
            if m.problems:
                failed = f"the move to {share:.0%} failed: {m.problems[0]}"
            elif share >= 1:
                self.run_out()
                failed = self._promote()
            else:
                decision = self._analyse(share, m.at_s + spec.switch.settle_s)
            if failed or decision != "promote":
                self.stopped = f"aborted at {share:.0%}" + (f" ({failed})" if failed else "")
                self.move("rollback", 0.0, BASELINE)
                self.run_out()
                break
        promoted = not failed and decision == "promote"
        if promoted:
            self.stopped = "promoted to 100%"
        self.checks.append(canary_check(self.looks, spec.steps, promoted, failed))

    def _promote(self) -> str | None:
        """An external deployment's promote hook, once the candidate holds all traffic: checked
        like any move. Why it failed, or None."""
        if not (isinstance(self.front, HookTraffic) and self.front.promotes):
            return None
        m = self.move("promote", 1.0, CANDIDATE, promote=True)
        self.run_out()
        return f"the promotion failed: {m.problems[0]}" if m.problems else None

    def _analyse(self, share: float, start: float) -> str:
        """Look at one step every `look_every_s` until it is decided or its bound: promote or
        abort."""
        a = self.spec.analysis
        decision = "hold"
        for look in range(1, a.max_looks + 1):
            self.wait(a.look_every_s if look > 1 else a.look_every_s + self.spec.switch.settle_s)
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
        return decision

    def compare(self) -> None:
        """Both versions at their own URLs, the harness's load split between them (the first
        step's share to the candidate) and nothing moved: the deployment's tooling moves its
        traffic. One step's looks decide."""
        share = self.spec.steps[0]
        decision = self._analyse(share, self.load_start())
        promoted = decision == "promote"
        self.stopped = f"compared at {share:.0%} of the harness's load: " + (
            "no worse than the baseline" if promoted else "aborted"
        )
        self.checks.append(canary_check(self.looks, [share], promoted))

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
        span = max(0.0, at - horizon - start)
        return look_at_step(
            share, look, at - t0, base, cand, self.spec.analysis, seed=look, window_s=span
        )

    def load_start(self) -> float:
        return min((s.sent_s for s in self.samples), default=now())

    def target_from_capacity(self, run_dir: Path) -> None:
        """Before the burst: the autoscaler's target from one replica's capacity."""
        got = measure_target(self.spec, self.stacks[BASELINE], run_dir, self.progress)
        self.capacity = got
        if got.target is not None:
            a = self.spec.autoscale.model_copy(update={"target_rps_per_replica": got.target})
            self.spec = self.spec.model_copy(update={"autoscale": a})

    def scale_out(self, launcher: Launcher, launched: list[ServiceHandle]) -> None:
        """The burst runs its course (the load's own duration) under the autoscaler."""
        if self.capacity is not None and self.capacity.target is None:
            self.stopped = "no burst: no target from capacity"
            return
        self.scaler = Autoscaler(
            self.spec, self.stacks[BASELINE], launcher, launched, self.progress
        )
        # The schedule began with the first request; no move in its last settle time.
        began = min(s.meant_s for s in self.samples)
        last_move = began + self.loads[0].spec.duration_s - self.spec.switch.settle_s
        self.scaler.run(until=lambda: not self.loads[0].is_alive(), moves_until_s=last_move)
        self.moves += self.scaler.moves
        outs = [e for e in self.scaler.events if e.kind == "out"]
        self.stopped = f"the burst ran its course; {len(outs)} replica(s) added"

    def watch_scale_out(self, replicas: ExternalReplicas) -> None:
        """The burst runs its course while the deployment's own autoscaler scales it."""
        stack = self.stacks[BASELINE]
        k8s = None if replicas.kubernetes is None else DeploymentReader(replicas.kubernetes)
        try:
            with PrometheusClient(
                stack.endpoints.prometheus, headers=stack.prometheus_headers()
            ) as prom:
                self.scaler = ReplicaWatch(self.spec, replicas, prom, k8s, self.progress)
                self.scaler.run(until=lambda: not self.loads[0].is_alive())
        finally:
            if k8s is not None:
                k8s.close()
        outs = [e for e in self.scaler.events if e.kind == "out"]
        self.stopped = f"the burst ran its course; {len(outs)} replica(s) added by the deployment"

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
        verified = verify_candidate(self.stacks[CANDIDATE], spec.switch)
        self.checks.append(verified)
        if verified.outcome != "pass":
            self.stopped = "candidate not verified: no traffic moved"
            return
        self.wait(spec.hold_s)
        self.move("switch to the candidate (green)", 1.0, CANDIDATE)
        self.wait(spec.switch.settle_s + spec.hold_s)
        self.move("switch back to the baseline (blue): the rollback", 0.0, BASELINE)
        self.run_out()
        self.stopped = "switched to the candidate and back"


def verify_candidate(stack: RunningStack, switch: Switch) -> CheckResult:
    """A few streamed requests straight to the candidate's front door, one at a time."""
    return verify_check([ask_front_door(stack) for _ in range(VERIFY_PROBES)], switch.ttft_p95_ms)


def _run_on(r: _Rollout, seconds: float) -> None:
    """Let the load run `seconds` more (the final rollback's check); a second Ctrl-C ends it."""
    r.progress(f"  the load runs {seconds:g}s more to check the rollback (Ctrl-C: stop now)")
    end = time.monotonic() + seconds
    try:
        while (left := end - time.monotonic()) > 0 and all(ld.is_alive() for ld in r.loads):
            time.sleep(min(0.2, left))
    except KeyboardInterrupt:
        r.progress("  stopping now: the rollback is left unchecked")


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
    basis = None if r.capacity is None else r.capacity.basis
    a = r.spec.autoscale
    if scaler is None:
        no_target = r.capacity is not None and r.capacity.target is None
        return [scale_out_check([], [], None, a.serve_within_s, basis)] if no_target else []
    t0 = r.load_start()
    seconds = [(t0 + b.t_s, b.ttft_p95_ms) for b in per_second(r.samples, t0, max(1.0, end_s - t0))]
    return [
        scale_out_check(scaler.signal, scaler.events, scaler.target, a.serve_within_s, basis),
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


def _bring_up(
    spec: RolloutSpec,
    baseline: StackSpec,
    candidate: StackSpec,
    run_dir: Path,
    provider: str | None,
    progress: Progress,
    stack: ExitStack,
    allow_remote: bool,
) -> dict[str, RunningStack]:
    """Each version's stack, started or attached. A rolling update replaces replicas inside the
    baseline, a scale-out adds them: only it runs. An external deployment with hooks is one
    entry where both versions answer: one stack for both. A candidate started beside a started
    baseline uses the baseline's services that `spec.shared` names, and the baseline's
    Prometheus scrapes it."""
    versions = [(BASELINE, baseline)]
    ext = candidate.external
    hooks = ext is not None and ext.rollout is not None
    if hooks:
        versions = [(BASELINE, candidate)]
    elif spec.strategy not in ("rolling", "scale_out"):
        versions.append((CANDIDATE, candidate))
    stacks: dict[str, RunningStack] = {}
    for version, stack_spec in versions:
        shares = shared_parts(spec, baseline, candidate) if version == CANDIDATE else ()
        progress(
            f"{version}: {'attaching to' if stack_spec.external else 'starting'} {stack_spec.name}"
            + (f" (the baseline's {', '.join(shares)})" if shares else "")
        )
        stacks[version] = stack.enter_context(
            start_stack(
                stack_spec,
                run_dir=run_dir / version,
                provider=provider,
                progress=progress,
                wait_for_scrapes=False,
                allow_remote=allow_remote,
                shared=SharedServices.of(stacks[BASELINE].endpoints, shares) if shares else None,
                label=None if stack_spec.external else version,
            )
        )
        if "monitoring" in shares:
            scrape_beside(stacks[BASELINE], stacks[version])
    if hooks:
        stacks[CANDIDATE] = stacks[BASELINE]
    return stacks


def shared_parts(spec: RolloutSpec, baseline: StackSpec, candidate: StackSpec) -> tuple[str, ...]:
    """What the candidate uses of the baseline's stack: `spec.shared` where both versions are
    stacks the harness starts side by side (an attached stack's services are not its to lend)."""
    if spec.strategy not in ("canary", "blue_green") or baseline.external or candidate.external:
        return ()
    return tuple(spec.shared)


def _share_of(load: LoadSpec, share: float) -> LoadSpec:
    """`share` of the load: of an open loop's rate, of a closed loop's users (one at least)."""
    kind = load.load
    if isinstance(kind, OpenLoop):
        part: OpenLoop | ClosedLoop = kind.model_copy(update={"rate_rps": kind.rate_rps * share})
    else:
        assert isinstance(kind, ClosedLoop)  # the inputs refuse a trace here
        part = kind.model_copy(update={"users": max(1, round(kind.users * share))})
    return load.model_copy(update={"load": part})


def _compare_loads(
    spec: RolloutSpec, stacks: dict[str, RunningStack], run_dir: Path, progress: Progress
) -> list[_Load]:
    """One load per version, at its own URL: the first step's share of the profile's load to the
    candidate, the rest to the baseline."""
    share = spec.steps[0]
    progress(f"comparing: {share:.0%} of the load to the candidate, the rest to the baseline")
    return [
        _Load(
            _share_of(spec.load, part),
            stacks[version].endpoints.nginx,
            stacks[version],
            run_dir / f"load-{version}",
            progress,
            version,
        )
        for version, part in ((BASELINE, 1 - share), (CANDIDATE, share))
    ]


def _check_versions_named(samples: list[Sample], url: str, header: str) -> None:
    """Before any move, every answer is the baseline's: at least one must say so, or the
    deployment does not name its versions as its spec says and no step could be judged."""
    if any(s.x_version == BASELINE for s in samples):
        return
    seen = sorted({repr(s.x_version) for s in samples if s.x_version} or {"none"})
    raise StackError(
        f"no answer from {url} named the baseline in its {header} header before any move "
        f"(saw {', '.join(seen)}): check `external.rollout.version_header` and `versions`"
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
    allow_remote: bool = False,
) -> RolloutResult:
    """Bring both versions up (or attach to an external deployment), run the rollout, and always
    put traffic back on the baseline and stop everything. Interrupted (KeyboardInterrupt): the
    result is marked and says where."""
    journal = RolloutJournal(
        strategy=spec.strategy,
        steps=list(spec.steps),
        baseline_stack=baseline.model_dump(mode="json"),
        candidate_stack=candidate.model_dump(mode="json"),
        profile=spec.model_dump(mode="json"),
    )
    result = RolloutResult(spec=spec, checks=[], journal=journal)
    one_stack = spec.strategy in ("rolling", "scale_out")
    ext = candidate.external
    with ExitStack() as stack:
        stacks = _bring_up(
            spec, baseline, candidate, run_dir, provider, progress, stack, allow_remote
        )
        if on_stacks is not None:
            on_stacks(stacks[BASELINE])
        launcher: Launcher | None = None
        # Replicas a rolling update started: stopped before their stack's teardown.
        launched: list[ServiceHandle] = []
        front: Traffic | None = None
        if ext is None:
            launcher = make_launcher(provider or baseline.provider, baseline, run_dir)
            stack.callback(launcher.close)
            stack.callback(_stop_all, launched)
            entry = stacks[BASELINE].endpoints.nginx
            if not one_stack:
                split = SplitFront(
                    launcher,
                    run_dir / "front",
                    free_ports(1)[0],
                    stacks[BASELINE].endpoints.nginx,
                    stacks[CANDIDATE].endpoints.nginx,
                    spec.switch.drain_timeout_s,
                )
                stack.callback(split.stop)
                entry, front = split.url, FrontTraffic(split)
                progress(f"split front {split.url}: all traffic on the baseline")
            loads = [_Load(spec.load, entry, stacks[BASELINE], run_dir / "load", progress)]
        elif spec.strategy == "scale_out":
            loads = [_Load(spec.load, ext.url, stacks[BASELINE], run_dir / "load", progress)]
        elif ext.rollout is not None:
            front = HookTraffic(ext.rollout, progress)
            v = ext.rollout.versions
            labels = {v.baseline: BASELINE, v.candidate: CANDIDATE}
            loads = [
                _Load(
                    spec.load, ext.url, stacks[BASELINE], run_dir / "load", progress, None, labels
                )
            ]
        else:
            loads = _compare_loads(spec, stacks, run_dir, progress)
        r = _Rollout(spec, front, loads, stacks, progress)
        finished = False
        try:
            if r.spec.strategy == "scale_out" and (
                r.spec.autoscale.target_rps_per_replica == "from_capacity"
            ):
                r.target_from_capacity(run_dir / "capacity")
            for load in loads:
                load.start()
            got = poll_until(
                lambda: bool(r.read()),
                FIRST_SAMPLE_TIMEOUT_S,
                0.2,
                until=lambda got: got or not all(ld.is_alive() for ld in loads),
            )
            if not got:
                errors = "; ".join(str(ld.error) for ld in loads if ld.error)
                raise LoadRunError(f"the rollout's load never completed a request: {errors}")
            if ext is not None and ext.rollout is not None:
                _check_versions_named(r.samples, ext.url, ext.rollout.version_header)
            if ext is not None and spec.strategy == "scale_out":
                assert ext.replicas is not None  # checked before anything started
                r.watch_scale_out(ext.replicas)
            elif ext is not None and ext.rollout is None:
                r.compare()
            elif spec.strategy == "canary":
                r.canary()
            elif spec.strategy == "blue_green":
                r.blue_green()
            elif spec.strategy == "rolling":
                assert launcher is not None
                r.rolling(candidate, launcher, launched)
            else:
                assert launcher is not None
                r.scale_out(launcher, launched)
            finished = True
        except KeyboardInterrupt:
            result.interrupted = True
            where = f"at {front.share:.0%}" if front is not None else f"during the {spec.strategy}"
            r.stopped = f"interrupted {where}" + (f" ({r.stopped})" if r.stopped else "")
        finally:
            if not finished and front is not None and front.share != 0 and front.alive():
                # Back on the baseline before anything stops, whatever ended the rollout, and
                # checked like any move: the load runs on until requests sent after it settled
                # have answered.
                r.move("rollback (the rollout ended)", 0.0, BASELINE)
                _run_on(r, spec.switch.settle_s + ROLLBACK_CHECK_S)
            if not finished and one_stack and ext is None:
                restore_rotation(stacks[BASELINE])
            for load in loads:
                load.stop.set()
            for load in loads:
                if load.ident is not None:  # started
                    load.join(timeout=spec.load.drain_timeout_s + 60)
        end = now()
        r.read()
        if all(ld.result is not None for ld in loads):
            r.samples = [s for ld in loads if ld.result for s in ld.tagged(ld.result.samples)]
        result.samples = r.samples
        if (alerts := stacks[BASELINE].alerts) is not None:
            result.alerts = [n.typed() for n in alerts.notifications]
        journal.shared = list(shared_parts(spec, baseline, candidate))
        result.checks = r.checks + _scale_checks(r, end) + _move_checks(r, end)
        t0 = r.load_start()
        journal.final_share = (
            front.share
            if front is not None
            else spec.steps[0]  # compared: the candidate's share of the harness's own load
            if ext is not None
            else 1.0
            if finished
            else 0.0
        )
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
                mode=("drain" if spec.rolling.drain else "kill")
                if one_stack
                else "hook"
                if ext is not None
                else spec.switch.mode,
                drain_s=m.drain_s,
                drained=m.drained,
                figures=m.figures,
            )
            for m in r.moves
        ]
        if r.capacity is not None:
            journal.target_basis = r.capacity.basis
            journal.capacity = r.capacity.result
        if r.scaler is not None:
            journal.target_rps_per_replica = r.scaler.target
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
