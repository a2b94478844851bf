"""The one place the steps are chained: spec -> stack -> steps (probes, load, experiments) ->
verdict -> report. The gate's steps are declared in `steps.py`; this module brings the stack
up, runs them and writes the report whatever happens. A profile's rollout step
(`rollout_step.py`) runs last, once the gate's stack is down.

`harness gate`, `harness chaos` and the nightly's gate call `run_gate` and `run_chaos`.
"""

from __future__ import annotations

import time
import traceback
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from harness.data.progress import Progress
from harness.errors import HarnessError
from harness.events import CheckDecided, EventBus, Recorder, StepStarted, console
from harness.exit_codes import exit_code
from harness.gate.rollout_step import RolloutPlan, run_rollout_step
from harness.gate.steps import (
    ExperimentFile,
    GateContext,
    history_record,
    plan_gate,
    run_experiments,
)
from harness.measure.history import append_history
from harness.measure.sample_file import SAMPLE_FILE, write_sample_file
from harness.provenance import now_iso
from harness.report.model import RunReport
from harness.report.write import write_reports
from harness.rollout.run import run_rollout
from harness.spec.gate import GateSpec
from harness.spec.rollout import RolloutSpec
from harness.spec.stack import StackSpec
from harness.stack import RunningStack, start_stack
from harness.verdict.checks import coverage_check, overall_outcome, stack_check

__all__ = ["ExperimentFile", "GateRun", "run_chaos", "run_gate", "run_rollout_gate"]

# The traceback of a crash of the harness, beside the report.
CRASH_FILE = "crash.txt"


@dataclass
class GateRun:
    report: RunReport
    out_dir: Path
    paths: dict[str, Path]

    @property
    def exit_code(self) -> int:
        return exit_code(self.report.outcome)


def _spec_copy(spec: StackSpec) -> dict[str, object]:
    """The stack spec as the report keeps it; an external one only as written (the defaults of
    the reference stack, such as its development keys, say nothing about someone else's)."""
    return spec.model_dump(mode="json", exclude_unset=spec.external is not None)


def _bus(report: RunReport, progress: Progress) -> EventBus:
    """The run's events, printed by `progress` and kept in the report's event log."""
    bus = EventBus()
    bus.subscribe(console(progress))
    recorder = Recorder()
    report.events = recorder.records
    bus.subscribe(recorder.record)
    return bus


def _run(
    report: RunReport,
    stack_spec: StackSpec,
    out_dir: Path,
    provider: str | None,
    bus: EventBus,
    body: Callable[[RunningStack], None],
    key_checks: tuple[str, ...] = (),
    allow_remote: bool = False,
    after: Callable[[], None] | None = None,
) -> GateRun:
    """Bring the stack up, run `body`, then `after` once the stack is down, and write the report
    whatever happens."""

    def work() -> None:
        bus.note(f"bringing the stack up ({provider or stack_spec.provider} provider)")
        with start_stack(
            stack_spec,
            run_dir=out_dir / "stack",
            provider=provider,
            progress=bus.note,
            allow_remote=allow_remote,
        ) as stack:
            report.endpoints = stack.endpoints.model_copy(update={"api_key": "<redacted>"})
            report.startup_seconds = round(stack.startup_seconds, 2)
            report.checks.append(stack_check(stack.startup_seconds))
            try:
                body(stack)
            finally:
                if stack.alerts is not None:
                    report.alerts = [n.typed() for n in stack.alerts.notifications]
        if after is not None:
            after()
        coverage = coverage_check(report.checks, key_checks)
        report.checks.append(coverage)
        bus.emit(CheckDecided(coverage))

    return _reported(report, out_dir, work)


def _reported(report: RunReport, out_dir: Path, work: Callable[[], None]) -> GateRun:
    """Run `work` (it fills the report's checks) and write the report whatever happens.

    Outcomes: passed / failed (a check failed) / error (could not run) / interrupted (the
    partial report is written, then the interruption is raised again for the caller's exit code).
    """
    t0 = time.monotonic()
    paths = write_reports(report, out_dir)  # a report exists from the first second
    interrupted: BaseException | None = None
    crashed: Exception | None = None
    try:
        work()
        report.outcome = (
            "passed" if overall_outcome(report.checks) in ("pass", "warn") else "failed"
        )
    except KeyboardInterrupt as exc:
        report.outcome = "interrupted"
        report.errors.append("interrupted (Ctrl-C or SIGTERM); the report holds what ran before")
        interrupted = exc
    except HarnessError as exc:
        report.outcome = "error"
        report.errors.append(str(exc))
    except Exception as exc:  # a crash of the harness: could not run, never a verdict
        report.outcome = "error"
        out_dir.mkdir(parents=True, exist_ok=True)
        (out_dir / CRASH_FILE).write_text(traceback.format_exc())
        report.crash = CRASH_FILE
        report.errors.append(
            f"the harness crashed: {type(exc).__name__}: {exc} (a defect of the "
            f"harness, not a verdict; traceback in {CRASH_FILE})"
        )
        crashed = exc
    finally:
        report.finished_at = now_iso()
        report.duration_s = round(time.monotonic() - t0, 2)
        report.exit_code = exit_code(report.outcome)
        paths = write_reports(report, out_dir)
    if interrupted is not None:
        raise interrupted
    if crashed is not None:
        raise crashed  # after the report is written: the CLI prints it and exits 2
    return GateRun(report=report, out_dir=out_dir, paths=paths)


def run_gate(
    gate: GateSpec,
    stack_spec: StackSpec,
    *,
    out_dir: Path,
    provider: str | None = None,
    command: str = "harness gate",
    progress: Progress = print,
    experiments: list[ExperimentFile] | None = None,
    history: Path | None = None,
    allow_remote: bool = False,
    rollout: RolloutPlan | None = None,
) -> GateRun:
    """Run the gate's steps (`plan_gate`) on one stack, then the profile's `rollout` of that
    stack (the candidate) from the running version, once the stack is down.

    With `history`, the run's key figures are compared with earlier runs there and appended.
    """
    report = RunReport(
        command=command,
        name=gate.name,
        gate_spec=gate.model_dump(mode="json"),
        stack_spec=_spec_copy(stack_spec),
        run_dir=str(out_dir),
    )
    stack_key = f"{stack_spec.name} ({provider or stack_spec.provider})"
    contexts: list[GateContext] = []
    bus = _bus(report, progress)

    def body(stack: RunningStack) -> None:
        ctx = GateContext(gate, stack, report, out_dir, bus, experiments or [], history, stack_key)
        contexts.append(ctx)
        for step in plan_gate(ctx):
            bus.emit(StepStarted(step.title))
            step.run(ctx)
            write_reports(report, out_dir)

    def roll_out() -> None:
        assert rollout is not None
        run_rollout_step(rollout, report, out_dir, bus, provider, allow_remote)
        write_reports(report, out_dir)

    run = _run(
        report,
        stack_spec,
        out_dir,
        provider,
        bus,
        body,
        gate.key_checks,
        allow_remote,
        roll_out if rollout is not None else None,
    )
    if history is not None and report.outcome in ("passed", "failed") and report.load:
        append_history(history, history_record(contexts[0]))
    return run


def run_chaos(
    experiments: list[ExperimentFile],
    stack_spec: StackSpec,
    *,
    out_dir: Path,
    provider: str | None = None,
    command: str = "harness chaos",
    progress: Progress = print,
    allow_remote: bool = False,
) -> GateRun:
    """Run experiments on one stack (their stack_overrides merged into the stack spec)."""
    report = RunReport(
        command=command,
        kind="chaos",
        name=", ".join(e.spec.title for e in experiments),
        stack_spec=_spec_copy(stack_spec),
        run_dir=str(out_dir),
    )

    bus = _bus(report, progress)

    def body(stack: RunningStack) -> None:
        run_experiments(experiments, stack, out_dir, report, bus)

    return _run(report, stack_spec, out_dir, provider, bus, body, allow_remote=allow_remote)


def run_rollout_gate(
    rollout: RolloutSpec,
    baseline: StackSpec,
    candidate: StackSpec,
    *,
    out_dir: Path,
    provider: str | None = None,
    command: str = "harness rollout",
    progress: Progress = print,
    allow_remote: bool = False,
) -> GateRun:
    """A rollout from the baseline to the candidate, judged and reported like a gate. An
    interrupted rollout puts traffic back on the baseline, writes its partial report (where it
    stopped) and raises the interruption again."""
    report = RunReport(
        command=command,
        kind="rollout",
        name=f"{rollout.name} ({rollout.strategy})",
        gate_spec=rollout.model_dump(mode="json"),
        stack_spec=_spec_copy(candidate),
        run_dir=str(out_dir),
    )
    bus = _bus(report, progress)

    def note_baseline(stack: RunningStack) -> None:
        report.endpoints = stack.endpoints.model_copy(update={"api_key": "<redacted>"})

    def work() -> None:
        result = run_rollout(
            rollout,
            baseline,
            candidate,
            out_dir,
            provider=provider,
            progress=bus.note,
            on_stacks=note_baseline,
            allow_remote=allow_remote,
        )
        report.rollout = result.journal
        report.alerts = result.alerts
        report.checks += result.checks
        for check in result.checks:
            bus.emit(CheckDecided(check))
        if result.samples:
            write_sample_file(out_dir / SAMPLE_FILE, result.samples)
        if result.interrupted:
            raise KeyboardInterrupt
        coverage = coverage_check(report.checks, ())
        report.checks.append(coverage)

    return _reported(report, out_dir, work)
