"""The monitoring judged from what Prometheus showed: everything up, scraped, exported and
loaded passes; a target down, a job or a gateway replica not scraped, a metric not exported, a
rule not loaded or failing to evaluate fails with each named. promtool's failure is its own
last lines."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

from harness.spec.policy import Policy
from harness.verdict.monitoring import (
    MonitoringEvidence,
    PromtoolRun,
    judge_monitoring,
    judge_rule_tests,
)

POLICY = Policy()


def sound() -> MonitoringEvidence:
    jobs = dict.fromkeys(POLICY.monitoring.jobs, 1) | {"gateway": 2}
    return MonitoringEvidence(
        targets=sum(jobs.values()),
        down=[],
        jobs=jobs,
        missing_metrics={},
        rules_loaded=frozenset(POLICY.alerts.required) | {"ExtraRule"},
        broken_rules=[],
        gateway_replicas=2,
    )


def test_everything_up_and_loaded_passes() -> None:
    e = sound()
    check = judge_monitoring(e, POLICY)
    assert check.outcome == "pass", check.reasons
    loaded = len(POLICY.alerts.required) + 1
    assert check.reasons == [f"{e.targets} targets up, {loaded} alert rules loaded"]
    assert check.measured["practices_metrics_present"] == len(POLICY.monitoring.gateway_metrics)


def test_a_target_down_and_a_job_missing_fail() -> None:
    job = "redis"
    assert job in POLICY.monitoring.jobs
    jobs = {j: n for j, n in sound().jobs.items() if j != job}
    down = ["gateway http://127.0.0.1:8081/metrics: connection refused"]
    check = judge_monitoring(replace(sound(), down=down, jobs=jobs), POLICY)
    assert check.outcome == "fail"
    assert check.reasons == [
        "target down: gateway http://127.0.0.1:8081/metrics: connection refused",
        f"no scrape target for job {job!r}",
    ]
    assert check.measured["targets_down"] == 1


def test_a_gateway_replica_not_scraped_fails() -> None:
    e = replace(sound(), jobs=sound().jobs | {"gateway": 1}, gateway_replicas=3)
    check = judge_monitoring(e, POLICY)
    assert check.outcome == "fail"
    assert check.reasons == ["1 gateway targets scraped, the stack runs 3"]


def test_a_metric_not_exported_is_named_as_the_gateway_names_it() -> None:
    missing = {"llm_cost_usd_total": "acme_cost_total", "llm_requests_total": "llm_requests_total"}
    check = judge_monitoring(replace(sound(), missing_metrics=missing), POLICY)
    assert check.outcome == "fail"
    assert check.reasons == [
        "metric acme_cost_total (llm_cost_usd_total) not exported by the gateways",
        "metric llm_requests_total not exported by the gateways",
    ]


def test_a_rule_not_loaded_or_failing_to_evaluate_fails() -> None:
    rule = POLICY.alerts.required[0]
    e = replace(
        sound(),
        rules_loaded=sound().rules_loaded - {rule},
        broken_rules=["HighLatency: bad_data: unknown function"],
    )
    check = judge_monitoring(e, POLICY)
    assert check.outcome == "fail"
    assert check.reasons == [
        f"alert rule {rule} not loaded",
        "alert rule fails to evaluate: HighLatency: bad_data: unknown function",
    ]


def test_promtool_failure_gives_its_last_lines_and_success_passes(tmp_path: Path) -> None:
    rules, tests = tmp_path / "alerts.yml", tmp_path / "alerts_test.yml"
    out = "\n".join(f"line {i}" for i in range(15)) + "\n\n  FAILED:\n"
    failed = judge_rule_tests(PromtoolRun(1, out, rules, tests))
    assert failed.outcome == "fail"
    assert failed.reasons == [f"line {i}" for i in range(6, 15)] + ["  FAILED:"]
    assert failed.measured["exit_code"] == 1
    silent = judge_rule_tests(PromtoolRun(2, "", rules, tests))
    assert silent.outcome == "fail" and silent.reasons == ["promtool exited 2 and printed nothing"]
    passed = judge_rule_tests(PromtoolRun(0, "SUCCESS", rules, tests))
    assert passed.outcome == "pass"
    assert passed.reasons == ["the policy's tests (alerts_test.yml) pass on the deployed rules"]
