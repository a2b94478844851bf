"""Run a chaos experiment on a running stack: load in the background, a fault in the middle,
expectations judged on the requests meant for before / during / after the fault."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from harness.errors import ConfigError, ConfigProblem
from harness.faults.inject import FaultAction, check_targets
from harness.load.clock import now
from harness.load.runner import LoadRun, run_load
from harness.load.target import from_endpoints
from harness.measure.slo import parse_slo
from harness.measure.summary import LoadSummary
from harness.measure.timeseries import outcomes_per_second
from harness.measure.window import phases
from harness.observe.webhook import AlertNotification, AlertReceiver
from harness.spec.experiment import ExperimentSpec
from harness.stack import RunningStack
from harness.stack.names import alert_names
from harness.verdict.checks import CheckResult

Progress = Callable[[str], None]
FIRST_SAMPLE_TIMEOUT_S = 90.0


@dataclass
class ExperimentResult:
    spec: ExperimentSpec
    checks: list[CheckResult]
    fault_start_s: float | None = None
    fault_end_s: float | None = None
    phases: dict[str, dict[str, Any]] = field(default_factory=dict)
    # Seconds since the load started: the fault window, alert notifications, outcomes per second.
    timeline: dict[str, Any] = field(default_factory=dict)

    def journal(self) -> dict[str, Any]:
        return {
            "title": self.spec.title,
            "experiment": self.spec.model_dump(mode="json"),
            "fault_start_s": self.fault_start_s,
            "fault_end_s": self.fault_end_s,
            "phases": self.phases,
            "timeline": self.timeline,
            "checks": [c.model_dump() for c in self.checks],
        }


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
    deadline = time.monotonic() + FIRST_SAMPLE_TIMEOUT_S
    while not load.first_request_sent():
        if not load.is_alive() or time.monotonic() > deadline:
            raise RuntimeError(
                "the experiment's load never completed a request: " + str(load.error)
            )
        time.sleep(0.2)


def _phase_checks(exp: ExperimentSpec, summaries: dict[str, LoadSummary]) -> list[CheckResult]:
    checks = []
    for phase, exprs in (("before", exp.expect.before), ("during", exp.expect.during),
                         ("after", exp.expect.after)):  # fmt: skip
        summary = summaries.get(phase)
        for expr in exprs:
            slo = parse_slo(expr)
            observed = summary.metric(slo.metric) if summary is not None else None
            result = slo.check(observed)
            n = summary.counts.total if summary is not None else 0
            checks.append(CheckResult(
                name=f"{exp.title}: {phase} the fault, {expr}", category="chaos",
                outcome="pass" if result.passed else "fail",
                reasons=[f"{result.reason} ({n} requests meant for this phase)"],
                measured={"observed": observed, "requests": n},
            ))  # fmt: skip
    return checks


def _notified(
    receiver: AlertReceiver, alert: str, status: str, since: float, within_s: float, name: str
) -> CheckResult:
    """Did Alertmanager notify `status` for `alert` within `within_s` of `since` (wall time)?"""
    deadline = since + within_s
    event = "started" if status == "firing" else "ended"

    def first() -> AlertNotification | None:
        return next(
            (n for n in receiver.notifications
             if since <= n.received_at <= deadline and alert in n.alert_names(status)),
            None,
        )  # fmt: skip

    while first() is None and time.time() < deadline:
        receiver.wait_for(alert, status, timeout_s=min(1.0, max(0.0, deadline - time.time())))
    note = first()
    if note is None:
        return CheckResult(
            name=name, category="alerts", outcome="fail",
            reasons=[f"no {status} notification within {within_s:g}s after the fault {event}"],
        )  # fmt: skip
    after = note.received_at - since
    return CheckResult(
        name=name, category="alerts", outcome="pass",
        reasons=[f"{status} notification {after:.1f}s after the fault {event}"],
        measured={"alert": alert, f"{status}_after_s": round(after, 1)},
    )  # fmt: skip


def _alert_checks(
    exp: ExperimentSpec, stack: RunningStack, fault_start: float, fault_end: float
) -> list[CheckResult]:
    checks: list[CheckResult] = []
    receiver = stack.alerts
    for want in exp.expect.alerts:
        if receiver is None:
            checks.append(CheckResult(name=f"{exp.title}: alert {want.alert}", category="alerts",
                                      outcome="error", reasons=["no alert receiver"]))  # fmt: skip
            continue
        checks.append(
            _notified(
                receiver,
                want.alert,
                "firing",
                fault_start,
                want.fires_within_s,
                f"{exp.title}: alert {want.alert} fires",
            )
        )
        if want.resolves_within_s is not None:
            checks.append(_notified(
                receiver, want.alert, "resolved", fault_end, want.resolves_within_s,
                f"{exp.title}: alert {want.alert} resolves",
            ))  # fmt: skip
    return checks


def _timeline(run: LoadRun, result: ExperimentResult) -> dict[str, Any]:
    """What a plot of the experiment needs, in seconds since the load started."""
    ctx = run.context
    start, end = result.fault_start_s or ctx.start_s, result.fault_end_s or ctx.start_s
    span = max([ctx.duration_s, *(s.done_s - ctx.start_s for s in run.samples)])
    marks = []
    for c in result.checks:
        for status, since in (("firing", start), ("resolved", end)):
            after = c.measured.get(f"{status}_after_s")
            if c.category == "alerts" and isinstance(after, (int, float)):
                marks.append({"alert": c.measured.get("alert"), "status": status,
                              "t_s": round(since - ctx.start_s + after, 2)})  # fmt: skip
    return {
        "fault_s": [round(start - ctx.start_s, 2), round(end - ctx.start_s, 2)],
        "alerts": marks,
        "seconds": outcomes_per_second(run.samples, ctx.start_s, span),
    }


def run_experiment(
    exp: ExperimentSpec, stack: RunningStack, run_dir: Path, progress: Progress = print,
    source: str = "experiment",
) -> ExperimentResult:  # fmt: skip
    """Run one experiment; the fault is always undone, whatever happens meanwhile."""
    check_targets(exp.fault, set(stack.endpoints.proxies), set(stack.services), source)
    unknown_alerts = [a.alert for a in exp.expect.alerts if a.alert not in alert_names(stack.spec)]
    if unknown_alerts:  # checked before the load starts, not minutes into the run
        raise ConfigError(source, [ConfigProblem(
            "expect.alerts", f"no alert rule named {', '.join(unknown_alerts)}; the stack's "
            f"rules: {', '.join(sorted(alert_names(stack.spec)))}",
        )])  # fmt: skip
    progress(f"experiment: {exp.title}")
    load = _BackgroundLoad(exp, stack, run_dir, progress)
    load.start()
    result = ExperimentResult(spec=exp, checks=[])
    try:
        _wait_first_request(load)
        time.sleep(exp.fault_at_s)
        action = FaultAction(exp.fault, stack)
        try:
            # The fault may bite any time during apply(): it starts when apply() starts.
            result.fault_start_s = now()
            wall_start = time.time()
            action.apply()
            progress(f"  fault: {exp.fault.kind} on {', '.join(exp.fault.targets)} "
                     f"for {exp.fault_for_s:g}s")  # fmt: skip
            time.sleep(max(0.0, exp.fault_for_s - (now() - result.fault_start_s)))
        finally:
            action.undo()
            result.fault_end_s = now()
            wall_end = time.time()
            progress("  fault undone")
        load.join(timeout=exp.load.duration_s + exp.load.drain_timeout_s + 120)
    except BaseException:
        load.stop.set()  # interrupted or failed: end the background load now, not at its end
        raise
    finally:
        if load.is_alive():
            load.join(timeout=60)
    if load.error is not None:
        raise load.error
    run = load.result
    if run is None:
        raise RuntimeError("the experiment's load did not finish")
    summaries = phases(run.samples, run.context, result.fault_start_s, result.fault_end_s)
    result.phases = {k: v.model_dump(mode="json", exclude={"timeseries"}) for k, v in
                     summaries.items()}  # fmt: skip
    result.checks = _phase_checks(exp, summaries)
    result.checks += _alert_checks(exp, stack, wall_start, wall_end)
    result.timeline = _timeline(run, result)
    for c in result.checks:
        progress(f"  {c.outcome.upper():5} {c.name}: {'; '.join(c.reasons)}")
    return result
