"""Run a chaos experiment on a running stack: load in the background, a fault in the middle,
expectations judged on the requests meant for before / during / after the fault."""

from __future__ import annotations

import threading
import time
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from harness.chaos.steady_state import await_steady_state
from harness.clients.poll import poll_until
from harness.clients.webhook import AlertLog, AlertNotification
from harness.data.progress import Progress
from harness.errors import ConfigError, ConfigProblem
from harness.faults.burst import BurstPlan, burst_figures, plan_burst, write_answers
from harness.faults.inject import FaultAction, check_targets
from harness.load.clock import now
from harness.load.runner import LoadRun, LoadRunError, run_load
from harness.measure.fates import FateTable, fate_table
from harness.measure.recovery import Recovery, recovery
from harness.measure.summary import LoadSummary, summarize
from harness.measure.timeseries import outcomes_per_second
from harness.measure.window import phase_of, phases
from harness.observe.alert_states import AlertStates
from harness.observe.live_rules import live_rules
from harness.report.experiment_journal import AlertMark, ExperimentJournal, Timeline
from harness.spec.experiment import ExperimentSpec, TrafficBurst
from harness.spec.policy import Policy
from harness.stack import RunningStack
from harness.stack.names import alert_names
from harness.stack.target import from_endpoints
from harness.verdict.burst import burst_checks
from harness.verdict.chaos import (
    AlertNotified,
    alert_checks,
    load_check,
    pending_checks,
    phase_checks,
    phase_readers,
    recovery_checks,
    silent_truncation_checks,
)
from harness.verdict.checks import CheckResult
from harness.verdict.steady_state import steady_state_check

FIRST_SAMPLE_TIMEOUT_S = 90.0
# The policy's breaker recovery timeout when no profile gives one (PRACTICES.md).
DEFAULT_RECOVERY_S = Policy().breaker.recovery_timeout_s


@dataclass
class ExperimentResult:
    spec: ExperimentSpec
    checks: list[CheckResult]
    fault_start_s: float | None = None
    fault_end_s: float | None = None
    # When the window said the fault should end (the same clock); fault_end_s is when it did.
    fault_planned_end_s: float | None = None
    phases: dict[str, LoadSummary] = field(default_factory=dict)
    # Seconds since the load started: the fault window, alert notifications, outcomes per second.
    timeline: Timeline = field(default_factory=Timeline)
    # What became of each request, per phase and for those in flight at the fault's start and end.
    fates: FateTable | None = None
    # Each request's phase by client request id, and the checks that read each phase (evidence).
    request_phases: dict[str, str] = field(default_factory=dict)
    readers: dict[str, list[str]] = field(default_factory=dict)
    recovery: Recovery | None = None

    def journal(self, file: str = "") -> ExperimentJournal:
        return ExperimentJournal(
            file=file,
            title=self.spec.title,
            experiment=self.spec.model_dump(mode="json"),
            fault_start_s=self.fault_start_s,
            fault_end_s=self.fault_end_s,
            fault_planned_end_s=self.fault_planned_end_s,
            phases=self.phases,
            timeline=self.timeline,
            checks=self.checks,
            fates=self.fates,
            recovery=self.recovery,
        )


class _BackgroundLoad(threading.Thread):
    """run_load in a thread; the result or the exception is kept for the caller."""

    def __init__(self, exp: ExperimentSpec, stack: RunningStack, run_dir: Path, progress: Progress):
        super().__init__(name="experiment-load", daemon=True)
        self.exp, self.stack, self.run_dir, self.progress = exp, stack, run_dir, progress
        self.result: LoadRun | None = None
        self.error: BaseException | None = None
        self.stop = threading.Event()

    def run(self) -> None:
        try:
            target = from_endpoints(self.stack.endpoints)
            self.result = run_load(
                self.exp.load, target, self.run_dir, self.progress, stop=self.stop
            )
        except BaseException as exc:  # handed to the main thread
            self.error = exc

    def first_request_sent(self) -> bool:
        return any(p.stat().st_size > 0 for p in (self.run_dir / "samples").glob("*.jsonl"))


def _wait_first_request(load: _BackgroundLoad) -> None:
    sent = poll_until(
        load.first_request_sent,
        FIRST_SAMPLE_TIMEOUT_S,
        0.2,
        until=lambda sent: sent or not load.is_alive(),
    )
    if not sent:
        raise LoadRunError("the experiment's load never completed a request: " + str(load.error))


def _first_notified(
    receiver: AlertLog, alert: str, status: str, since: float, within_s: float
) -> float | None:
    """Seconds from `since` (wall time) to Alertmanager's first `status` notification for
    `alert`, waiting for it up to `within_s` after `since` (None: none came)."""
    deadline = since + within_s

    def first() -> AlertNotification | None:
        return next(
            (
                n
                for n in receiver.notifications
                if since <= n.received_at and alert in n.alert_names(status)
            ),
            None,
        )

    # A notification ends the wait between looks early; at most a second between them.
    note = poll_until(
        first,
        deadline - time.time(),
        1.0,
        sleep=lambda s: receiver.wait_for(alert, status, timeout_s=s),
    )
    return None if note is None else note.received_at - since


def _alerts_notified(
    exp: ExperimentSpec, stack: RunningStack, fault_start: float, fault_end: float
) -> list[AlertNotified] | None:
    """When each expected alert was notified (None: the stack has no alert receiver)."""
    receiver = stack.alerts
    if receiver is None:
        return None
    seen = []
    for want in exp.expect.alerts:
        firing = _first_notified(receiver, want.alert, "firing", fault_start, want.fires_within_s)
        resolved = None
        if want.resolves_within_s is not None:
            resolved = _first_notified(
                receiver, want.alert, "resolved", fault_end, want.resolves_within_s
            )
        seen.append(AlertNotified(firing, resolved))
    return seen


def _timeline(run: LoadRun, result: ExperimentResult) -> Timeline:
    """What a plot of the experiment needs, in seconds since the load started."""
    ctx = run.context
    start, end = result.fault_start_s or ctx.start_s, result.fault_end_s or ctx.start_s
    span = max([ctx.duration_s, *(s.done_s - ctx.start_s for s in run.samples)])
    marks = []
    for c in result.checks:
        for status, since in (("firing", start), ("resolved", end)):
            after = c.measured.get(f"{status}_after_s")
            if c.category == "alerts" and isinstance(after, (int, float)):
                alert = c.measured.get("alert")
                marks.append(
                    AlertMark(
                        alert=None if alert is None else str(alert),
                        status=status,
                        t_s=round(since - ctx.start_s + after, 2),
                    )
                )
    return Timeline(
        fault_s=[round(start - ctx.start_s, 2), round(end - ctx.start_s, 2)],
        alerts=marks,
        seconds=outcomes_per_second(run.samples, ctx.start_s, span),
    )


def run_experiment(
    exp: ExperimentSpec,
    stack: RunningStack,
    run_dir: Path,
    progress: Progress = print,
    source: str = "experiment",
    recovery_timeout_s: float = DEFAULT_RECOVERY_S,
) -> ExperimentResult:
    """Run one experiment from steady state (waited for up to the policy's breaker
    `recovery_timeout_s` and a margin; not reached: the fault is not injected and the result
    says why); the fault is always undone, whatever happens meanwhile."""
    check_targets(exp.fault, set(stack.endpoints.proxies), set(stack.services), source)
    unknown_alerts = [a.alert for a in exp.expect.alerts if a.alert not in alert_names(stack.spec)]
    # Checked before the load starts, not minutes into the run; an external stack's are its own.
    if unknown_alerts and stack.spec.external is None:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "expect.alerts",
                    f"no alert rule named {', '.join(unknown_alerts)}; the stack's "
                    f"rules: {', '.join(sorted(alert_names(stack.spec)))}",
                )
            ],
        )
    burst = _burst_plan(exp, stack, source)
    progress(f"experiment: {exp.title}")
    steady = steady_state_check(exp.title, await_steady_state(stack, recovery_timeout_s, progress))
    if steady.outcome != "pass":
        progress(f"  {steady.reasons[0]}")
        return ExperimentResult(spec=exp, checks=[steady])
    with ExitStack() as live:
        if exp.live_rules is not None:
            names = live.enter_context(
                live_rules(
                    stack.endpoints.prometheus,
                    stack.run_dir / "config" / "alerts.yml",
                    exp.live_rules.window,
                    exp.live_rules.hold,
                )
            )
            progress(
                f"  live rules: {', '.join(names)} with {exp.live_rules.window} windows, "
                f"held {exp.live_rules.hold}"
            )
        result = _run_experiment(exp, stack, run_dir, progress, burst)
    result.checks.insert(0, steady)
    return result


def _burst_plan(exp: ExperimentSpec, stack: RunningStack, source: str) -> BurstPlan | None:
    """A traffic burst's key and budget, checked before the load starts: it must exceed it."""
    fault = exp.fault
    if not isinstance(fault, TrafficBurst):
        return None
    plan = plan_burst(fault, stack, source)
    sends = fault.planned(exp.fault_for_s)
    if sends <= plan.per_minute:
        raise ConfigError(
            source,
            [
                ConfigProblem(
                    "fault",
                    f"the burst sends at most {sends} requests, not more than the budget "
                    f"{plan.per_minute}/minute: no request would be refused (raise rate_rps or "
                    "max_requests)",
                )
            ],
        )
    return plan


def _run_experiment(
    exp: ExperimentSpec,
    stack: RunningStack,
    run_dir: Path,
    progress: Progress,
    burst: BurstPlan | None,
) -> ExperimentResult:
    load = _BackgroundLoad(exp, stack, run_dir, progress)
    states = None
    if any(a.pending_within_s is not None for a in exp.expect.alerts):
        states = AlertStates(stack.endpoints.prometheus, headers=stack.prometheus_headers()).start()
    load.start()
    result = ExperimentResult(spec=exp, checks=[])
    try:
        _wait_first_request(load)
        time.sleep(exp.fault_at_s)
        action = FaultAction(exp.fault, stack)
        try:
            # The fault may bite any time during apply(): it starts when apply() starts.
            result.fault_start_s = now()
            result.fault_planned_end_s = result.fault_start_s + exp.fault_for_s
            wall_start = time.time()
            action.apply()
            progress(
                f"  fault: {exp.fault.kind} on {', '.join(exp.fault.targets)} "
                f"for {exp.fault_for_s:g}s"
            )
            time.sleep(max(0.0, exp.fault_for_s - (now() - result.fault_start_s)))
        finally:
            undo_from = now()
            action.undo()
            result.fault_end_s = now()
            wall_end = time.time()
            progress(f"  fault undone in {result.fault_end_s - undo_from:.2f}s")
        load.join(timeout=exp.load.duration_s + exp.load.drain_timeout_s + 120)
    except BaseException:
        load.stop.set()  # interrupted or failed: end the background load now, not at its end
        raise
    finally:
        if load.is_alive():
            load.join(timeout=60)
        if states is not None:
            states.stop()
    if load.error is not None:
        raise load.error
    run = load.result
    if run is None:
        raise LoadRunError("the experiment's load did not finish")
    summaries = phases(run.samples, run.context, result.fault_start_s, result.fault_end_s)
    # A phase's per-second series is the timeline's, already: not kept twice.
    result.phases = {k: v.model_copy(update={"timeseries": []}) for k, v in summaries.items()}
    result.checks = [load_check(exp, summarize(run.samples, run.context), run.context)]
    result.checks += phase_checks(exp, summaries)
    result.fates = fate_table(
        run.samples, run.context.start_s, result.fault_start_s, result.fault_end_s
    )
    result.checks += silent_truncation_checks(exp, result.fates)
    ctx = run.context
    result.recovery = recovery(
        run.samples,
        ctx.start_s,
        ctx.start_s + ctx.duration_s,
        result.fault_start_s,
        result.fault_end_s,
    )
    result.checks += recovery_checks(exp, result.recovery)
    if burst is not None:
        write_answers(action.burst_answers, run_dir / "burst-answers.jsonl")
        figures = burst_figures(action.burst_answers)
        progress(
            f"  burst: {figures.sent} sent, {figures.admitted} admitted, {figures.refused} "
            f"refused; admitted per minute {figures.per_minute_text()}"
        )
        result.checks += burst_checks(exp.title, figures, burst.per_minute, summaries)
    result.checks += alert_checks(exp, _alerts_notified(exp, stack, wall_start, wall_end))
    if states is not None:
        result.checks += pending_checks(exp, states, wall_start)
    result.timeline = _timeline(run, result)
    result.readers = phase_readers(exp, result.checks)
    result.request_phases = {
        s.client_request_id: p
        for s in run.samples
        if (p := phase_of(s, run.context.start_s, result.fault_start_s, result.fault_end_s))
    }
    return result
