"""Judging the monitoring from what its probes saw (`harness/probes/monitoring.py` measures):
every target up, every job the policy expects scraped (one gateway target per replica), the
policy's gateway metrics exported, its alert rules loaded and evaluating, and the policy's
promtool tests passing on the deployed rules."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from harness.spec.policy import Policy
from harness.verdict.checks import CheckResult

# promtool's last lines kept as the reasons of a failed run.
PROMTOOL_LINES = 10


@dataclass(frozen=True)
class MonitoringEvidence:
    """What Prometheus showed: its targets, the gateways' metrics and the rules it loaded."""

    targets: int
    # "job scrape_url: last_error" of each target not up.
    down: Sequence[str]
    # Targets per job.
    jobs: Mapping[str, int]
    # The policy's gateway metrics not exported: reference name -> the gateway's name for it.
    missing_metrics: Mapping[str, str]
    rules_loaded: frozenset[str]
    # "rule: last_error" of each rule that fails to evaluate.
    broken_rules: Sequence[str]
    # Gateway replicas the stack runs (None: not known, not checked).
    gateway_replicas: int | None = None


def judge_monitoring(evidence: MonitoringEvidence, policy: Policy) -> CheckResult:
    e = evidence
    failures = [f"target down: {d}" for d in e.down]
    failures += [
        f"no scrape target for job {j!r}" for j in policy.monitoring.jobs if j not in e.jobs
    ]
    scraped = e.jobs.get("gateway", 0)
    if e.gateway_replicas is not None and scraped < e.gateway_replicas:
        failures.append(f"{scraped} gateway targets scraped, the stack runs {e.gateway_replicas}")
    failures += [
        f"metric {named}{'' if named == m else f' ({m})'} not exported by the gateways"
        for m, named in e.missing_metrics.items()
    ]
    failures += [
        f"alert rule {a} not loaded" for a in policy.alerts.required if a not in e.rules_loaded
    ]
    failures += [f"alert rule fails to evaluate: {b}" for b in e.broken_rules]
    measured: dict[str, float | int | str | None] = {
        "targets": e.targets,
        "targets_down": len(e.down),
        "jobs": len(e.jobs),
        "practices_metrics_present": len(policy.monitoring.gateway_metrics)
        - len(e.missing_metrics),
        "alert_rules_loaded": len(e.rules_loaded),
    }
    return CheckResult.from_reasons(
        "metrics and alert rules",
        "monitoring",
        failures,
        measured,
        f"{e.targets} targets up, {len(e.rules_loaded)} alert rules loaded",
    )


@dataclass(frozen=True)
class PromtoolRun:
    """`promtool test rules`: the policy's tests file run on the deployed rules."""

    exit_code: int
    output: str
    rules: Path
    tests: Path


def judge_rule_tests(run: PromtoolRun) -> CheckResult:
    """promtool's verdict stands; a failed run's last lines are the reasons (a failed run that
    printed nothing still fails)."""
    lines = [line for line in run.output.splitlines() if line.strip()]
    failures = [] if run.exit_code == 0 else lines[-PROMTOOL_LINES:]
    if run.exit_code != 0 and not failures:
        failures = [f"promtool exited {run.exit_code} and printed nothing"]
    return CheckResult.from_reasons(
        "alert rule unit tests (promtool)",
        "monitoring",
        failures,
        {"exit_code": run.exit_code, "rules": str(run.rules), "tests": str(run.tests)},
        f"the policy's tests ({run.tests.name}) pass on the deployed rules",
    )
