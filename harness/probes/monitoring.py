"""Probes of the monitoring: targets scraped, PRACTICES.md metrics present, alert rules sound."""

from __future__ import annotations

import subprocess
import tempfile
import time
from pathlib import Path

import yaml

from harness import wire
from harness.clients.poll import poll_until
from harness.clients.prometheus import PrometheusClient, Rule
from harness.paths import STACK_DIR
from harness.spec.policy import Policy
from harness.tools import find_binary
from harness.verdict.checks import CheckResult
from harness.verdict.monitoring import (
    MonitoringEvidence,
    PromtoolRun,
    judge_monitoring,
    judge_rule_tests,
)


def probe_monitoring(
    prometheus_url: str,
    policy: Policy | None = None,
    gateway_replicas: int | None = None,
    settle_s: float = 5.0,
    headers: dict[str, str] | None = None,
) -> CheckResult:
    """Every target up; every target the policy expects is there (one per gateway replica); the
    gateways export the policy's metrics; the policy's alert rules are loaded and evaluate."""
    policy = policy or Policy()
    t0 = time.monotonic()
    with PrometheusClient(prometheus_url, timeout_s=10, headers=headers) as prom:
        targets = prom.targets()
        jobs: dict[str, int] = {}
        for t in targets:
            jobs[t.job] = jobs.get(t.job, 0) + 1
        missing, rules = _gateway_metrics_and_rules(
            prom, policy.monitoring.gateway_metrics, settle_s
        )
    evidence = MonitoringEvidence(
        targets=len(targets),
        down=[f"{t.job} {t.scrape_url}: {t.last_error}" for t in targets if t.health != "up"],
        jobs=jobs,
        # Under the gateway's names, beside the policy's.
        missing_metrics={m: wire.current().expected_metric(m) for m in missing},
        rules_loaded=frozenset(r.name for r in rules),
        broken_rules=[f"{r.name}: {r.last_error}" for r in rules if r.health == "err"],
        gateway_replicas=gateway_replicas,
    )
    check = judge_monitoring(evidence, policy)
    check.duration_s = round(time.monotonic() - t0, 3)
    return check


def _gateway_metrics_and_rules(
    prom: PrometheusClient, metrics: tuple[str, ...] | list[str], settle_s: float
) -> tuple[list[str], list[Rule]]:
    """The policy's gateway metrics not exported (under the gateway's names), and the rules.
    The gateway's counters appear after the first requests: allow a scrape or two."""
    named = {m: wire.current().expected_metric(m) for m in metrics}
    query = f'count by (__name__) ({{__name__=~"{"|".join(named.values())}", job="gateway"}})'

    def missing() -> list[str]:
        present = {s.labels.get("__name__", "") for s in prom.query(query)}
        return [m for m in metrics if named[m] not in present]

    return poll_until(missing, settle_s, 0.5, until=lambda left: not left), prom.rules()


def probe_alert_rule_tests(
    deployed_rules: Path, tests_file: Path = STACK_DIR / "prometheus" / "alerts_test.yml"
) -> CheckResult:
    """The policy's promtool unit tests, run against the rules the candidate deployed: each alert
    fires when it should and stays silent otherwise."""
    t0 = time.monotonic()
    promtool = str(find_binary("promtool"))
    with tempfile.TemporaryDirectory(prefix="harness-promtool-") as tmp:
        tests = yaml.safe_load(tests_file.read_text(encoding="utf-8"))
        tests["rule_files"] = [str(deployed_rules.resolve())]
        copy = Path(tmp) / tests_file.name
        copy.write_text(yaml.safe_dump(tests, sort_keys=False), encoding="utf-8")
        run = subprocess.run(
            [promtool, "test", "rules", copy.name],
            cwd=tmp,
            capture_output=True,
            text=True,
            timeout=60,
        )
    out = (run.stdout + run.stderr).strip()
    check = judge_rule_tests(PromtoolRun(run.returncode, out, deployed_rules, tests_file))
    check.duration_s = round(time.monotonic() - t0, 3)
    return check
