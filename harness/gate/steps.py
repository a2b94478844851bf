"""The gate as declared steps. Each step runs against one context and adds its checks to the
report; `plan_gate` lists them in order, with each ordering constraint stated where it is decided
(the rate limit on a key nothing else uses runs right after the probes; on the gate's own key it
runs last, after any breaker an experiment opened has healed).

Steps measure and hand their evidence to `harness/verdict/`, which decides most outcomes; the
probes, the load step's validity check and the chaos runner still decide some of their own.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from harness.chaos.runner import DEFAULT_RECOVERY_S, run_experiment
from harness.data.progress import Progress
from harness.data.samples import Sample
from harness.errors import is_stack_side
from harness.events import CheckDecided, EventBus
from harness.gate.calibrate import calibrate
from harness.gate.load_step import run_gate_load
from harness.gate.logs_step import attach, collect_evidence, log_checks, samples_under
from harness.measure.history import (
    HistoryRecord,
    figures_of_summary,
    read_history,
    same_stack,
    trend,
)
from harness.measure.sample_file import SAMPLE_FILE, write_sample_file
from harness.observe.logs import LogStore
from harness.observe.resources import ResourceSampler
from harness.paths import STACK_DIR
from harness.probes.accounting import (
    COST_METRICS,
    INJECTION_METRIC,
    probe_cost,
    probe_injection,
)
from harness.probes.breaker import BREAKER_METRIC, probe_breaker, wait_breakers_healed
from harness.probes.monitoring import probe_alert_rule_tests, probe_monitoring
from harness.probes.pii import probe_pii
from harness.probes.practices import (
    HOSTILE,
    probe_cache,
    probe_rate_limit,
    probe_security,
    probe_streaming,
)
from harness.report.model import RunReport
from harness.report.write import write_reports
from harness.spec.experiment import (
    ExperimentSpec,
    Kill,
    Pause,
    ProxyDown,
    ToxicFault,
    TrafficBurst,
)
from harness.spec.gate import GateSpec
from harness.stack import RunningStack
from harness.verdict.baseline import accepted, compare_with_history
from harness.verdict.breaker import BreakerConfig
from harness.verdict.chaos import key_expectations_decided
from harness.verdict.checks import CheckResult, disabled, unmet
from harness.verdict.logs import ERRORS_LOGGED, NO_EXCEPTIONS, NO_SECRETS
from harness.verdict.policy import judge_policy
from harness.verdict.resources import judge_resources


@dataclass(frozen=True)
class ExperimentFile:
    path: Path
    spec: ExperimentSpec


@dataclass
class GateContext:
    """What every step may read, the report they all write into, and the events they emit."""

    gate: GateSpec
    stack: RunningStack
    report: RunReport
    out_dir: Path
    bus: EventBus
    experiments: list[ExperimentFile] = field(default_factory=list)
    history: Path | None = None
    stack_key: str = ""

    @property
    def progress(self) -> Progress:
        """For the lower layers, which report progress as lines."""
        return self.bus.note

    def add(self, check: CheckResult) -> None:
        self.report.checks.append(check)
        self.bus.emit(CheckDecided(check))


class Step:
    """One part of the gate. `run` measures and adds checks to the context's report."""

    title = ""

    def run(self, ctx: GateContext) -> None:
        raise NotImplementedError


def guarded(name: str, category: str, fn: Callable[[], CheckResult]) -> CheckResult:
    """A probe that fails talking to the stack is an `error` check with the reason; any other
    exception is the harness's own defect and ends the run as a crash (`is_stack_side`)."""
    t0 = time.monotonic()
    try:
        return fn()
    except Exception as exc:
        if not is_stack_side(exc):
            raise
        return CheckResult(
            name=name,
            category=category,
            outcome="error",
            reasons=[f"{type(exc).__name__}: {exc}"],
            duration_s=round(time.monotonic() - t0, 3),
        )


def gate_rule_tests(gate: GateSpec) -> Path:
    """The policy's promtool tests (a profile's path, resolved by the CLI); else the project's."""
    name = gate.policy.alerts.rule_tests
    return Path(name) if name else STACK_DIR / "prometheus" / "alerts_test.yml"


BESIDE_BREAKER = "during the breaker probe's recovery wait"


class Calibrate(Step):
    """The machine's speed, measured while nothing loads it: first, or beside the breaker
    probe's recovery wait (the stack idle then), when that probe runs; then this step only
    measures what the wait did not."""

    title = "calibration"

    def run(self, ctx: GateContext) -> None:
        assert ctx.gate.load is not None
        if ctx.report.calibration is not None:
            ctx.progress(f"  measured {BESIDE_BREAKER}")
            return
        ctx.report.calibration = calibrate(ctx.gate.load, ctx.out_dir / "calibration", ctx.progress)

    def beside(self, ctx: GateContext) -> Callable[[], None]:
        """The calibration as work for a wait: an error is said and left to the step."""

        def work() -> None:
            try:
                self.run(ctx)
                if (cal := ctx.report.calibration) is not None:
                    cal.measured_during = BESIDE_BREAKER
            except Exception as exc:
                ctx.progress(f"  calibration beside the breaker's wait failed, again later: {exc}")

        return work


class JudgePolicy(Step):
    title = "policy"

    def run(self, ctx: GateContext) -> None:
        name = "candidate's practices meet the policy"
        if why := ctx.stack.lacks("declared settings"):
            ctx.add(unmet(name, "policy", why))
            return
        ctx.add(judge_policy(ctx.gate.policy, ctx.stack.spec))


BREAKER_NEEDS = ("served_by", f"metric:{BREAKER_METRIC}", "gateways", "primary proxies")


@dataclass
class Probes(Step):
    """The probes send and expect what the policy says, whatever the candidate configured (its
    injection patterns included); the candidate's settings only give its keys and its prices.
    `while_breaker_open`: work to run beside the breaker probe's recovery wait."""

    while_breaker_open: Callable[[], None] | None = None
    title: str = "probes"

    def run(self, ctx: GateContext) -> None:
        gate, stack = ctx.gate, ctx.stack
        ep, policy = stack.endpoints, gate.policy
        settings = stack.spec.gateway.settings
        prom_headers = stack.prometheus_headers()
        # (enabled, name, category, what it needs of the stack, the probe)
        plan: list[tuple[bool, str, str, tuple[str, ...], Callable[[], CheckResult]]] = [
            (
                gate.probes.streaming,
                "streamed completion",
                "stack",
                ("request_id",),
                lambda: probe_streaming(ep.nginx, ep.api_key, policy.streaming),
            ),
            (
                gate.probes.security,
                "authentication and input validation",
                "security",
                tuple(f"error:{e}" for e in HOSTILE.values()),
                lambda: probe_security(ep.nginx, ep.api_key, policy.max_prompt_chars),
            ),
            (
                gate.probes.injection,
                "prompt-injection flagging",
                "security",
                (
                    f"metric:{INJECTION_METRIC}",
                    "gateways",
                    *(("error:prompt_injection",) if policy.injection.action == "reject" else ()),
                ),
                lambda: probe_injection(ep.nginx, ep.api_key, ep.gateways, policy.injection),
            ),
            (
                gate.probes.pii,
                "PII filtered from answers",
                "security",
                ("gateway",),
                lambda: probe_pii(ep.nginx, ep.api_key, policy.pii_kinds),
            ),
            (
                gate.probes.cache,
                "response cache",
                "cache",
                ("cache",),
                lambda: probe_cache(ep.nginx, ep.api_key, policy.cache.hit_speedup),
            ),
            (
                gate.probes.cost,
                "cost accounting",
                "cost",
                (*(f"metric:{m}" for m in COST_METRICS), "gateways"),
                lambda: probe_cost(
                    ep.nginx, ep.api_key, ep.gateways, settings.cost.price_per_1k_tokens
                ),
            ),
            (
                gate.probes.monitoring,
                "metrics and alert rules",
                "monitoring",
                ("prometheus", *(f"metric:{m}" for m in policy.monitoring.gateway_metrics)),
                lambda: probe_monitoring(
                    ep.prometheus, policy, len(ep.gateways) or None, headers=prom_headers
                ),
            ),
            (
                gate.probes.alert_rule_tests,
                "alert rule unit tests (promtool)",
                "monitoring",
                ("rules file",),
                lambda: probe_alert_rule_tests(
                    stack.run_dir / "config" / "alerts.yml", gate_rule_tests(gate)
                ),
            ),
            (
                gate.probes.breaker,
                "circuit breaker opens and recovers",
                "resilience",
                BREAKER_NEEDS,
                lambda: probe_breaker(
                    ep.gateways,
                    ep.api_key,
                    ep.toxiproxy,
                    sorted(p for p in ep.proxies if p.startswith("primary-")),
                    BreakerConfig(
                        policy.breaker.failure_threshold, policy.breaker.recovery_timeout_s
                    ),
                    ctx.progress,
                    self.while_breaker_open,
                ),
            ),
        ]
        for enabled, name, category, needs, fn in plan:
            if not enabled:
                ctx.add(disabled(name, category))
            elif why := stack.lacks(*needs):
                ctx.add(unmet(name, category, why))
            else:
                ctx.add(guarded(name, category, fn))


@dataclass
class RateLimit(Step):
    """The policy's budget probed on `key`, whatever the candidate declares: a candidate with its
    limiter off fails here, not skips. It spends the key's budget for the minute."""

    key: str
    fresh_key: bool
    heal_first: bool = False
    title: str = "rate limit"

    def run(self, ctx: GateContext) -> None:
        if not ctx.gate.probes.rate_limit:
            ctx.add(disabled("rate limit per API key", "rate-limit"))
            return
        stack = ctx.stack
        if why := stack.lacks("error:rate_limited"):
            ctx.add(unmet("rate limit per API key", "rate-limit", why))
            return
        if self.heal_first:  # an open breaker would leave the burst to the fallback pool alone
            wait_breakers_healed(
                stack.endpoints.gateways,
                stack.spec.gateway.settings.breaker.recovery_timeout_s,
                ctx.progress,
            )
        limits = stack.spec.gateway.settings.rate_limit
        declared = limits.requests_per_minute if limits.enabled else None
        ctx.add(
            guarded(
                "rate limit per API key",
                "rate-limit",
                lambda: probe_rate_limit(
                    stack.endpoints.nginx,
                    self.key,
                    ctx.gate.policy.rate_limit_per_minute,
                    declared=declared,
                    fresh_key=self.fresh_key,
                ),
            )
        )


class Load(Step):
    """Open-loop looks at the front door with resource sampling; then the regression check
    against the history of the same stack."""

    title = "load"

    def run(self, ctx: GateContext) -> None:
        gate, report = ctx.gate, ctx.report
        sampler = ResourceSampler(ctx.stack.services).start()
        try:
            load = run_gate_load(
                gate, ctx.stack, ctx.out_dir / "load", ctx.progress, report.calibration
            )
        finally:
            report.resources = sampler.stop()
        report.load = load.report
        write_sample_file(ctx.out_dir / SAMPLE_FILE, load.samples)  # for `harness compare`
        for check in load.checks:
            ctx.add(check)
        ctx.add(judge_resources(report.resources, gate.policy.resources))
        if ctx.history is None:
            return
        history = same_stack(read_history(ctx.history), ctx.stack_key)
        if gate.regression.enabled:
            r = gate.regression
            ctx.add(
                compare_with_history(
                    figures_of_summary(load.report.summary),
                    history,
                    window=r.window,
                    min_runs=r.min_runs,
                    max_regression_pct=r.max_regression_pct,
                    outcome_on_regression=r.outcome,
                )
            )
        report.history = trend(history, history_record(ctx))


def history_record(ctx: GateContext) -> HistoryRecord:
    r = ctx.report
    regressed = any(c.category == "regression" and c.outcome in ("warn", "fail") for c in r.checks)
    summary = r.load.summary if r.load else None
    return HistoryRecord(
        name=ctx.gate.name,
        run=ctx.out_dir.name,
        started_at=r.started_at,
        git_sha=r.git_sha,
        outcome=r.outcome,
        stack=ctx.stack_key,
        requests=summary.counts.total if summary else 0,
        figures=figures_of_summary(summary),
        regressed=regressed,
        accepted=accepted(r.outcome, regressed),
    )


class Logs(Step):
    """The log store's checks after the load and the experiments, and the load step's evidence
    attached to its checks."""

    title = "logs"

    def run(self, ctx: GateContext) -> None:
        names = (ERRORS_LOGGED, NO_EXCEPTIONS, NO_SECRETS)
        ep = ctx.stack.endpoints
        if not ctx.gate.probes.logs or ep.logs is None:
            for name in names:
                ctx.add(
                    disabled(name, "logging")
                    if not ctx.gate.probes.logs
                    else unmet(name, "logging", "no log store in the stack")
                )
            return
        store = LogStore(ep.logs)
        auth = ctx.stack.spec.gateway.settings.auth
        load = samples_under(ctx.out_dir / "load") if ctx.gate.load is not None else []
        try:
            checks = log_checks(store, ep.nginx, ep.api_key, auth.api_keys, load)
        except Exception as exc:  # the store is evidence too: its failure is an error check
            if not is_stack_side(exc):
                raise
            checks = [
                CheckResult(
                    name=n,
                    category="logging",
                    outcome="error",
                    reasons=[f"log store: {type(exc).__name__}: {exc}"],
                )
                for n in names
            ]
        load_checks = [c for c in ctx.report.checks if c.category in ("slo", "load")]
        add_evidence(store, load, load_checks or checks, "the load step", ctx.progress)
        for check in checks:
            ctx.add(check)


class Experiments(Step):
    title = "experiments"

    def run(self, ctx: GateContext) -> None:
        run_experiments(
            ctx.experiments,
            ctx.stack,
            ctx.out_dir,
            ctx.report,
            ctx.bus,
            ctx.gate.policy.breaker.recovery_timeout_s,
            ctx.gate.key_checks,
        )


def run_experiments(
    experiments: list[ExperimentFile],
    stack: RunningStack,
    out_dir: Path,
    report: RunReport,
    bus: EventBus,
    recovery_timeout_s: float = DEFAULT_RECOVERY_S,
    key_checks: Sequence[str] = (),
) -> None:
    """Each experiment in turn, each from steady state (bounded by the policy's breaker
    `recovery_timeout_s`, never the candidate's); an expectation named in `key_checks` must be
    decided (inconclusive fails)."""
    for i, exp in enumerate(experiments):
        if why := stack.lacks(*experiment_needs(exp.spec)):
            check = unmet(exp.spec.title, "chaos", why)
            report.checks.append(check)
            bus.emit(CheckDecided(check))
            continue
        try:
            result = run_experiment(
                exp.spec,
                stack,
                out_dir / f"experiment-{i}",
                bus.note,
                source=str(exp.path),
                recovery_timeout_s=recovery_timeout_s,
            )
        except Exception as exc:
            if not is_stack_side(exc):
                raise  # a bad file (exit 2) or the harness's own defect: never a verdict
            checks = [
                CheckResult(
                    name=f"{exp.spec.title}",
                    category="chaos",
                    outcome="error",
                    reasons=[f"{type(exc).__name__}: {exc}"],
                )
            ]
        else:
            result.checks = key_expectations_decided(result.checks, key_checks)
            checks = result.checks
            report.experiments.append(result.journal(str(exp.path)))
            if stack.endpoints.logs is not None:
                add_evidence(
                    LogStore(stack.endpoints.logs),
                    samples_under(out_dir / f"experiment-{i}"),
                    checks,
                    exp.spec.title,
                    bus.note,
                    result.request_phases,
                    result.readers,
                )
        for check in checks:
            report.checks.append(check)
            bus.emit(CheckDecided(check))
        write_reports(report, out_dir)


def experiment_needs(exp: ExperimentSpec) -> tuple[str, ...]:
    """What an experiment needs of the stack: its fault's handle, and what its checks read."""
    fault = exp.fault
    # Network faults act on Toxiproxy, process faults on handles, a burst on the gateway's rate
    # limit, the rest on the harness's own fault parts (HTTP fault fronts, the GPU exporter).
    needs = [
        "toxiproxy"
        if isinstance(fault, ProxyDown | ToxicFault)
        else "processes"
        if isinstance(fault, Pause | Kill)
        else "error:rate_limited"
        if isinstance(fault, TrafficBurst)  # the gateway's 429
        else "fault parts"
    ]
    if exp.live_rules is not None:
        needs.append("rules file")
    if exp.expect.alerts:
        needs.append("alerts")
    shares = " ".join((*exp.expect.before, *exp.expect.during, *exp.expect.after))
    if any(w in shares for w in ("primary_share", "fallback_share", "degraded_share")):
        needs.append("served_by")
    return tuple(needs)


def add_evidence(
    store: LogStore,
    samples: list[Sample],
    checks: list[CheckResult],
    step: str,
    note: Progress,
    phases: Mapping[str, str] | None = None,
    readers: Mapping[str, Sequence[str]] | None = None,
) -> None:
    """A step's failed, degraded and fallback requests with their log lines, under its checks
    (an experiment's under the checks of their phase)."""
    try:
        attach(collect_evidence(store, samples, phases=phases, readers=readers), checks)
    except Exception as exc:  # evidence is a help, not a verdict: say why it is missing
        if not is_stack_side(exc):
            raise
        note(f"log evidence for {step} not read: {type(exc).__name__}: {exc}")


def spare_key(stack: RunningStack) -> str | None:
    """An API key of the stack other than the one the gate sends its traffic with."""
    if stack.spec.external is not None:
        return None  # the deployment's other keys are not the harness's to know
    auth = stack.spec.gateway.settings.auth
    others = [k for k in auth.api_keys if k != stack.endpoints.api_key] if auth.enabled else []
    return others[-1] if others else None


def plan_gate(ctx: GateContext) -> list[Step]:
    """The gate's steps in order."""
    gate = ctx.gate
    steps: list[Step] = []
    calibration = Calibrate() if gate.load is not None and gate.relative_slos() else None
    # The breaker probe's recovery wait leaves the stack idle for the policy's 60 s: the
    # calibration runs beside it instead of first (a quarter of a minute less).
    breaker_runs = gate.probes.breaker and ctx.stack.lacks(*BREAKER_NEEDS) is None
    beside = calibration if breaker_runs else None
    if calibration is not None and beside is None:
        steps.append(calibration)  # first: the machine's speed, before anything loads it
    steps += [JudgePolicy(), Probes(beside.beside(ctx) if beside else None)]
    if beside is not None:  # measures only what the breaker's wait did not (a probe ended early)
        steps.append(beside)
    spare = spare_key(ctx.stack)
    if spare is not None:  # a key nothing else of the gate uses: its budget is free now
        steps.append(RateLimit(spare, fresh_key=True))
    if gate.load is not None:
        steps.append(Load())
    if ctx.experiments:
        steps.append(Experiments())
    steps.append(Logs())  # reads the lines the load and the experiments left
    if spare is None:  # the gate's own key: last, once the experiments' faults have healed
        steps.append(
            RateLimit(
                ctx.stack.endpoints.api_key, fresh_key=False, heal_first=bool(ctx.experiments)
            )
        )
    return steps
