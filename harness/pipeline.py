"""The one place the steps are chained: spec -> stack -> probes -> load -> verdict -> report.

The CLI and the pytest plugin are thin callers of `run_gate`.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from harness.calibrate import calibrate
from harness.chaos import run_experiment
from harness.errors import ConfigError, HarnessError
from harness.exit_codes import exit_code
from harness.observe.resources import ResourceSampler
from harness.paths import STACK_DIR
from harness.probes.accounting import probe_cost, probe_injection
from harness.probes.breaker import BreakerConfig, probe_breaker, wait_breakers_healed
from harness.probes.monitoring import probe_alert_rule_tests, probe_monitoring
from harness.probes.pii import probe_pii
from harness.probes.practices import (
    probe_cache,
    probe_rate_limit,
    probe_security,
    probe_streaming,
)
from harness.provenance import now_iso
from harness.report.model import RunReport
from harness.report.write import write_reports
from harness.spec.experiment import ExperimentSpec
from harness.spec.gate import GateSpec
from harness.spec.load import LoadSpec
from harness.spec.stack import StackSpec
from harness.stack import RunningStack, start_stack
from harness.verdict.baseline import (
    HistoryRecord,
    append_history,
    compare_with_history,
    key_metrics,
    read_history,
    same_stack,
    trend,
)
from harness.verdict.checks import CheckResult, coverage_check, overall_outcome
from harness.verdict.policy import judge_policy
from harness.verdict.resources import judge_resources

Progress = Callable[[str], None]


@dataclass
class GateRun:
    report: RunReport
    out_dir: Path
    paths: dict[str, Path]

    @property
    def exit_code(self) -> int:
        return exit_code(self.report.outcome)


def _guarded(name: str, category: str, fn: Callable[[], CheckResult]) -> CheckResult:
    """A probe that raises is an `error` check with the reason, not a crashed gate."""
    t0 = time.monotonic()
    try:
        return fn()
    except Exception as exc:  # any failure of a probe is evidence, keep going
        return CheckResult(
            name=name, category=category, outcome="error",
            reasons=[f"{type(exc).__name__}: {exc}"], duration_s=round(time.monotonic() - t0, 3),
        )  # fmt: skip


def _probes(gate: GateSpec, stack: RunningStack, progress: Progress) -> list[CheckResult]:
    """The probes' expectations come from the policy; the candidate's settings only say what to
    send (its keys, its injection patterns, its prices) and how long to wait for it to heal."""
    ep = stack.endpoints
    policy = gate.policy
    settings = stack.spec.gateway.settings
    validation = settings.validation
    plan: list[tuple[bool, str, str, Callable[[], CheckResult]]] = [
        (gate.probes.streaming, "streamed completion", "stack",
         lambda: probe_streaming(ep.nginx, ep.api_key, policy.streaming)),
        (gate.probes.security, "authentication and input validation", "security",
         lambda: probe_security(ep.nginx, ep.api_key, policy.max_prompt_chars)),
        (gate.probes.injection, "prompt-injection flagging", "security",
         lambda: probe_injection(ep.nginx, ep.api_key, ep.gateways,
                                 validation.injection_patterns, validation.injection_policy)),
        (gate.probes.pii, "PII filtered from answers", "security",
         lambda: probe_pii(ep.nginx, ep.api_key, policy.pii_kinds)),
        (gate.probes.cache, "response cache", "cache",
         lambda: probe_cache(ep.nginx, ep.api_key, policy.cache.hit_speedup)),
        (gate.probes.cost, "cost accounting", "cost",
         lambda: probe_cost(ep.nginx, ep.api_key, ep.gateways,
                            settings.cost.price_per_1k_tokens)),
        (gate.probes.monitoring, "metrics and alert rules", "monitoring",
         lambda: probe_monitoring(ep.prometheus, policy, stack.spec.gateway.replicas)),
        (gate.probes.alert_rule_tests, "alert rule unit tests (promtool)", "monitoring",
         lambda: probe_alert_rule_tests(stack.run_dir / "config" / "alerts.yml",
                                        gate_rule_tests(gate))),
        (gate.probes.breaker, "circuit breaker opens and recovers", "resilience",
         lambda: probe_breaker(
             ep.gateways, ep.api_key, ep.toxiproxy,
             sorted(p for p in ep.proxies if p.startswith("primary-")),
             BreakerConfig(policy.breaker.failure_threshold,
                           policy.breaker.recovery_timeout_s),
             progress,
         )),
    ]  # fmt: skip
    results = []
    for enabled, name, category, fn in plan:
        if not enabled:
            results.append(_disabled(name, category))
            continue
        result = _guarded(name, category, fn)
        progress(f"  {result.outcome.upper():5} {name}" + (f": {'; '.join(result.reasons)}"
                                                          if result.reasons else ""))  # fmt: skip
        results.append(result)
    return results


def gate_rule_tests(gate: GateSpec) -> Path:
    """The policy's promtool tests (a profile's path, resolved by the CLI); else the project's."""
    name = gate.policy.alerts.rule_tests
    return Path(name) if name else STACK_DIR / "prometheus" / "alerts_test.yml"


def _disabled(name: str, category: str) -> CheckResult:
    return CheckResult(name=name, category=category, outcome="skipped",
                       reasons=["disabled in the gate profile"])  # fmt: skip


@dataclass(frozen=True)
class ExperimentFile:
    path: Path
    spec: ExperimentSpec


def _stack_check(stack: RunningStack) -> CheckResult:
    return CheckResult(
        name="stack starts and every target is scraped", category="stack", outcome="pass",
        reasons=[f"up in {stack.startup_seconds:.1f} s"],
        measured={"startup_s": round(stack.startup_seconds, 2)},
    )  # fmt: skip


def _experiments(
    experiments: list[ExperimentFile], stack: RunningStack, out_dir: Path, report: RunReport,
    progress: Progress,
) -> None:  # fmt: skip
    for i, exp in enumerate(experiments):
        try:
            result = run_experiment(
                exp.spec, stack, out_dir / f"experiment-{i}", progress, source=str(exp.path)
            )
        except (RuntimeError, HarnessError) as exc:
            if isinstance(exc, ConfigError):
                raise
            report.checks.append(CheckResult(
                name=f"{exp.spec.title}", category="chaos", outcome="error",
                reasons=[f"{type(exc).__name__}: {exc}"],
            ))  # fmt: skip
            continue
        report.checks += result.checks
        report.experiments.append({"file": str(exp.path), **result.journal()})
        write_reports(report, out_dir)


def _run(
    report: RunReport,
    stack_spec: StackSpec,
    out_dir: Path,
    provider: str | None,
    progress: Progress,
    body: Callable[[RunningStack], None],
    key_checks: tuple[str, ...] = (),
) -> GateRun:
    """Bring the stack up, run `body`, and write the report whatever happens.

    Outcomes: passed / failed (a check failed) / error (could not run) / interrupted (the
    partial report is written, then the interruption is raised again for the caller's exit code).
    """
    t0 = time.monotonic()
    paths = write_reports(report, out_dir)  # a report exists from the first second
    interrupted: BaseException | None = None
    crashed: Exception | None = None
    try:
        progress(f"bringing the stack up ({provider or stack_spec.provider} provider)")
        with start_stack(
            stack_spec, run_dir=out_dir / "stack", provider=provider, progress=progress
        ) as stack:
            report.endpoints = stack.endpoints.model_dump()
            report.startup_seconds = round(stack.startup_seconds, 2)
            report.checks.append(_stack_check(stack))
            try:
                body(stack)
            finally:
                if stack.alerts is not None:
                    report.alerts = [n.payload for n in stack.alerts.notifications]
        coverage = coverage_check(report.checks, key_checks)
        if coverage.outcome != "pass":
            progress(f"  {coverage.outcome.upper():5} {coverage.name}: "
                     f"{'; '.join(coverage.reasons)}")  # fmt: skip
        report.checks.append(coverage)
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
        report.errors.append(f"the harness crashed: {type(exc).__name__}: {exc}")
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
) -> GateRun:
    """Run the gate: probes, load with SLOs (and against the history), then the experiments.

    With `history`, the run's key figures are compared with earlier runs there and appended.
    """
    report = RunReport(
        command=command, name=gate.name, gate_spec=gate.model_dump(mode="json"),
        stack_spec=stack_spec.model_dump(mode="json"), run_dir=str(out_dir),
    )  # fmt: skip
    stack_key = f"{stack_spec.name} ({provider or stack_spec.provider})"

    def body(stack: RunningStack) -> None:
        if gate.relative_slos():
            report.calibration = calibrate(gate.load or LoadSpec(), out_dir / "calibration",
                                           progress)  # fmt: skip
        policy = judge_policy(gate.policy, stack.spec)
        progress(f"  {policy.outcome.upper():5} {policy.name}: {'; '.join(policy.reasons)}")
        report.checks.append(policy)
        progress("probes:")
        report.checks.extend(_probes(gate, stack, progress))
        # The rate-limit probe spends a key's budget for the minute: with a key nothing else of
        # the gate uses it runs now, otherwise last, once the experiments' faults have healed.
        spare_key = _spare_key(stack)
        if spare_key is not None:
            _rate_limit(gate, stack, spare_key, report, progress, fresh_key=True)
        write_reports(report, out_dir)
        if gate.load is not None:
            from harness.gate_load import run_gate_load

            sampler = ResourceSampler(stack.services).start()
            try:
                gate_load = run_gate_load(
                    gate, stack, out_dir / "load", progress, report.calibration
                )
            finally:
                usage = sampler.stop()
                report.resources = usage
            checks, load_report = gate_load.checks, gate_load.report
            resources = judge_resources(usage, gate.policy.resources)
            progress(f"  {resources.outcome.upper():5} {resources.name}: {resources.reasons[0]}")
            report.checks.append(resources)
            report.load = load_report
            report.checks.extend(checks)
            if history is not None and gate.regression.enabled:
                check = _regression_check(gate, history, stack_key, load_report)
                progress(f"  {check.outcome.upper():5} {check.name}: {'; '.join(check.reasons)}")
                report.checks.append(check)
            if history is not None:
                current = _history_record(gate, report, stack_key)
                report.history = trend(same_stack(read_history(history), stack_key), current)
            write_reports(report, out_dir)
        _experiments(experiments or [], stack, out_dir, report, progress)
        if spare_key is None:
            if experiments:
                wait_breakers_healed(
                    stack.endpoints.gateways,
                    stack.spec.gateway.settings.breaker.recovery_timeout_s,
                    progress,
                )
            _rate_limit(gate, stack, stack.endpoints.api_key, report, progress, fresh_key=False)

    run = _run(report, stack_spec, out_dir, provider, progress, body, gate.key_checks)
    if history is not None and report.outcome in ("passed", "failed") and report.load:
        append_history(history, _history_record(gate, report, stack_key))
    return run


def _history_record(gate: GateSpec, report: RunReport, stack: str) -> HistoryRecord:
    return HistoryRecord(
        name=gate.name, started_at=report.started_at, git_sha=report.git_sha,
        outcome=report.outcome, metrics=key_metrics(report.load), stack=stack,
    )  # fmt: skip


def _spare_key(stack: RunningStack) -> str | None:
    """An API key of the stack other than the one the gate sends its traffic with."""
    auth = stack.spec.gateway.settings.auth
    others = [k for k in auth.api_keys if k != stack.endpoints.api_key] if auth.enabled else []
    return others[-1] if others else None


def _rate_limit(
    gate: GateSpec, stack: RunningStack, key: str, report: RunReport, progress: Progress,
    *, fresh_key: bool,
) -> None:  # fmt: skip
    """The policy's budget is probed whatever the candidate declares: a candidate with its
    limiter off fails here, not skips."""
    if not gate.probes.rate_limit:
        report.checks.append(_disabled("rate limit per API key", "rate-limit"))
        return
    limits = stack.spec.gateway.settings.rate_limit
    declared = limits.requests_per_minute if limits.enabled else None
    check = _guarded(
        "rate limit per API key", "rate-limit",
        lambda: probe_rate_limit(stack.endpoints.nginx, key, gate.policy.rate_limit_per_minute,
                                 declared=declared, fresh_key=fresh_key),
    )  # fmt: skip
    progress(f"  {check.outcome.upper():5} {check.name}: {'; '.join(check.reasons)}")
    report.checks.append(check)


def _regression_check(
    gate: GateSpec, history: Path, stack: str, load_report: dict[str, Any]
) -> CheckResult:
    r = gate.regression
    return compare_with_history(
        key_metrics(load_report), same_stack(read_history(history), stack), window=r.window,
        min_runs=r.min_runs, max_regression_pct=r.max_regression_pct,
        outcome_on_regression=r.outcome,
    )  # fmt: skip


def run_chaos(
    experiments: list[ExperimentFile],
    stack_spec: StackSpec,
    *,
    out_dir: Path,
    provider: str | None = None,
    command: str = "harness chaos",
    progress: Progress = print,
) -> GateRun:
    """Run experiments on one stack (their stack_overrides merged into the stack spec)."""
    report = RunReport(
        command=command, name="chaos: " + ", ".join(e.spec.title for e in experiments),
        stack_spec=stack_spec.model_dump(mode="json"), run_dir=str(out_dir),
    )  # fmt: skip

    def body(stack: RunningStack) -> None:
        _experiments(experiments, stack, out_dir, report, progress)

    return _run(report, stack_spec, out_dir, provider, progress, body)
