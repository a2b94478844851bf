"""Every gate check seen failing: a candidate with one defect planted, and the gate fails with
that check's reason (simulated stack, so each run takes seconds)."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

pytestmark = [pytest.mark.integration, pytest.mark.gate, pytest.mark.slow]

SIM_STACK = Path(__file__).parents[1] / "fixtures" / "sim-stack.yaml"
# The simulated stack's breaker recovers in 4 s (quick tests), and its misses take only ~50 ms
# (30 ms to the first token), so a hit can be only a few times faster: the policy is told so.
SIM_POLICY = {"breaker": {"recovery_timeout_s": 4}, "cache": {"hit_speedup": 4}}
PROBES_ONLY = {"probes": {"breaker": False}, "load": None, "key_checks": []}


def deep_update(base: dict[str, Any], extra: dict[str, Any]) -> dict[str, Any]:
    for k, v in extra.items():
        base[k] = deep_update(base.get(k) or {}, v) if isinstance(v, dict) else v
    return base


def run_gate(
    tmp_path: Path, profile: dict[str, Any], candidate: dict[str, Any] | None = None
) -> tuple[int, dict[str, Any], str]:
    spec = deep_update(yaml.safe_load(SIM_STACK.read_text()), candidate or {})
    stack = tmp_path / "stack.yaml"
    stack.write_text(yaml.safe_dump(spec))
    prof = tmp_path / "profile.yaml"
    prof.write_text(yaml.safe_dump({"kind": "gate", "policy": SIM_POLICY, **profile}))
    r = subprocess.run(
        [sys.executable, "-m", "harness", "gate", "--profile", str(prof), "--stack", str(stack),
         "--out", str(tmp_path / "out"), "--no-history"],
        capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    return r.returncode, report, r.stdout + r.stderr


def failed(report: dict[str, Any], name: str) -> list[str]:
    check = next(c for c in report["checks"] if c["name"] == name)
    assert check["outcome"] == "fail", check
    reasons: list[str] = check["reasons"]
    return reasons


DEFECTS = [
    pytest.param({"nginx": {"buffering": True}}, {}, "streamed completion",
                 "the stream is buffered", id="buffering-proxy"),
    pytest.param({"gateway": {"settings": {"cache": {"enabled": False}}}}, {}, "response cache",
                 "X-Cache was", id="cache-off"),
    pytest.param({"gateway": {"settings": {"rate_limit": {"requests_per_minute": 1000}}}}, {},
                 "rate limit per API key", "admitted at once, policy 100/minute",
                 id="limiter-too-generous"),
    pytest.param({"gateway": {"settings": {"rate_limit": {"enabled": False}}}}, {},
                 "rate limit per API key", "no 429", id="limiter-off"),
    pytest.param({"gateway": {"settings": {"cost": {"price_per_1k_tokens": {"default": 0.0}}}}},
                 {}, "cost accounting", "a zero cost", id="zero-prices"),
    pytest.param({}, {"policy": {**SIM_POLICY, "monitoring": {
                     "gateway_metrics": ["llm_requests_total", "llm_queue_depth"]}}},
                 "metrics and alert rules", "metric llm_queue_depth not exported",
                 id="missing-metric"),
    pytest.param({}, {"policy": {**SIM_POLICY, "monitoring": {"jobs": ["gateway", "tracing"]}}},
                 "metrics and alert rules", "no scrape target for job 'tracing'",
                 id="missing-scrape-job"),
    pytest.param({"prometheus": {"error_rate_threshold": 0.5}}, {},
                 "alert rule unit tests (promtool)", "HighErrorRate", id="broken-alert-rule"),
    pytest.param({"gateway": {"settings": {"validation": {"max_prompt_chars": 200000}}}}, {},
                 "authentication and input validation", "oversized prompt",
                 id="prompt-limit-too-high"),
    pytest.param({"gateway": {"settings": {"logging": {"level": "error"}}}}, {},
                 "error answers logged with request id and reason",
                 "no gateway log line with its request id", id="error-answers-unlogged"),
    pytest.param({"gateway": {"settings": {"logging": {"debug_requests": True}}}}, {},
                 "no API key or prompt PII in the logs", "API key sk-har... in a gateway line",
                 id="debug-logging-leaks-keys"),
]  # fmt: skip


@pytest.mark.parametrize(("candidate", "profile", "check", "reason"), DEFECTS)
def test_a_planted_defect_fails_the_gate_with_its_checks_reason(
    tmp_path: Path, candidate: dict[str, Any], profile: dict[str, Any], check: str, reason: str
) -> None:
    rc, report, out = run_gate(tmp_path, {**PROBES_ONLY, **profile}, candidate)
    assert rc == 1, out[-3000:]
    reasons = failed(report, check)
    assert any(reason in r for r in reasons), reasons


def test_the_candidate_cannot_lower_its_own_bar(tmp_path: Path) -> None:
    """A candidate that weakens its practices fails the policy check with the difference named,
    and the probes hold it to the policy's values, not its own."""
    rc, report, out = run_gate(
        tmp_path, {**PROBES_ONLY, "probes": {"breaker": True}},
        {"gateway": {"settings": {"rate_limit": {"requests_per_minute": 1000},
                                  "breaker": {"failure_threshold": 50}}}},
    )  # fmt: skip
    assert rc == 1, out[-3000:]
    reasons = failed(report, "candidate's practices meet the policy")
    assert "rate limit: candidate allows 1000/min per key, policy 100/min" in reasons
    assert "circuit breaker: candidate opens after 50 failures, policy at most 5" in reasons
    breaker = failed(report, "circuit breaker opens and recovers")
    assert any("after 5 failures the breaker reads closed, want open" in r for r in breaker)


def test_a_skipped_key_check_means_the_gate_cannot_pass(tmp_path: Path) -> None:
    rc, report, out = run_gate(
        tmp_path, {**PROBES_ONLY, "probes": {"breaker": False, "cache": False},
                   "key_checks": ["response cache"]},
    )  # fmt: skip
    assert rc == 1, out[-3000:]
    assert "key check 'response cache' was skipped: disabled in the gate profile" in failed(
        report, "key checks ran"
    )
    # Everything else passed: the skip alone failed the gate.
    assert {c["outcome"] for c in report["checks"] if c["name"] != "key checks ran"} <= {
        "pass",
        "skipped",
    }


def test_a_slowed_model_pool_fails_the_latency_slo_with_its_bound(tmp_path: Path) -> None:
    """Model servers ten times slower than the SLO allows: the p95 SLO fails on its lower
    confidence bound, with n and the bound in the reason; a healthy pool passes the same SLO."""
    profile = {
        "probes": {k: False for k in ("breaker", "rate_limit", "alert_rule_tests")},
        "load": {"duration_s": "6s", "workload": {"max_tokens": 8},
                 "load": {"kind": "open", "rate_rps": 10}},
        "slos": ["ttft_p95_ms<=200"],
        "confidence": {"max_duration_s": "12s"},
        "key_checks": ["slo"],
    }  # fmt: skip
    # 10 requests a second: above the policy's 100 a minute, so both allow more here.
    profile["policy"] = {**SIM_POLICY, "rate_limit_per_minute": 1000}
    lifted = {"gateway": {"settings": {"rate_limit": {"requests_per_minute": 1000}}}}
    slow = {**lifted, "primary": {"server": {"time_to_first_token_ms": 2000}}}
    rc, report, out = run_gate(tmp_path, profile, slow)
    assert rc == 1, out[-3000:]
    check = next(c for c in report["checks"] if c["name"] == "SLO ttft_p95_ms<=200")
    assert check["outcome"] == "fail" and check["measured"]["decision"] == "fail", check
    assert check["measured"]["lower"] > 200 and check["measured"]["n"] >= 20
    assert "n=" in check["reasons"][0]
    md = (tmp_path / "out" / "summary.md").read_text()
    assert "How sure (95% confidence bounds)" in md

    healthy = tmp_path / "healthy"
    healthy.mkdir()
    rc, report, out = run_gate(healthy, profile, lifted)
    assert rc == 0, out[-3000:]
    check = next(c for c in report["checks"] if c["name"] == "SLO ttft_p95_ms<=200")
    assert check["measured"]["decision"] == "pass" and check["measured"]["upper"] <= 200


def test_pii_filtering_is_proven_on_an_echoing_model_and_a_leak_fails(tmp_path: Path) -> None:
    echo = {"primary": {"server": {"mode": "echo"}}, "fallback": {"server": {"mode": "echo"}}}
    profile = {**PROBES_ONLY, "probes": {"breaker": False, "rate_limit": False}}
    rc, report, out = run_gate(tmp_path, profile, echo)
    assert rc == 0, out[-3000:]
    pii = next(c for c in report["checks"] if c["name"] == "PII filtered from answers")
    assert pii["outcome"] == "pass", pii
    leaky = tmp_path / "leaky"
    leaky.mkdir()
    rc, report, out = run_gate(
        leaky, profile, {**echo, "gateway": {"settings": {"pii": {"enabled": False}}}}
    )
    assert rc == 1, out[-3000:]
    assert any("leaks the planted email" in r for r in failed(report, "PII filtered from answers"))


def test_load_step_checks_fail_on_a_failing_primary_slow_answers_and_heavy_services(
    tmp_path: Path,
) -> None:
    """One run, three load-step defects: the primary's answers fail (so the fallback serves
    them: the primary's share check fails), no answer meets a per-request SLO (goodput
    fails), and the services are over a memory ceiling (resources fail); a relative SLO is judged
    against the calibration of the pinned llama.cpp build, whose figures are in the report."""
    profile = {
        "probes": {k: False for k in ("breaker", "rate_limit", "alert_rule_tests", "pii")},
        "load": {"duration_s": "5s", "workload": {"max_tokens": 8},
                 "load": {"kind": "open", "rate_rps": 4}},
        "slos": ["ttft_ms<=1", "ttft_p50_ms<=50x"],
        "confidence": {"max_duration_s": "0s"},
        "policy": {**SIM_POLICY, "resources": {"rss_mb_max": 1}},
        "key_checks": [],
    }  # fmt: skip
    # Server errors only: a 4xx the primary answers is the client's error, passed on as its answer.
    failing = {"primary": {"server": {"failure_injection_rate": 100,
                                      "failure_types": ["server_error"]}}}  # fmt: skip
    rc, report, out = run_gate(tmp_path, profile, failing)
    assert rc == 1, out[-3000:]
    primary = failed(report, "served by the primary pool")
    assert "primary_share" in primary[0] and "violates" in primary[0], primary
    goodput = next(c for c in report["checks"] if c["name"].startswith("goodput"))
    assert goodput["outcome"] == "fail" and goodput["measured"]["estimate"] == 0, goodput
    assert any("over the policy's 1 MB" in r for r in failed(report, "resource usage during load"))
    assert report["calibration"]["ttft_ms"] > 0
    relative = next(c for c in report["checks"] if c["name"] == "SLO ttft_p50_ms<=50x")
    assert "of the calibration is ttft_p50_ms<=" in " ".join(relative["reasons"]), relative


def test_a_stack_that_falls_behind_the_offered_rate_fails_kept_up(tmp_path: Path) -> None:
    """Model servers that take one request at a time, a second each, offered ten a second: the
    backlog shows as fewer answers within the schedule than were sent."""
    profile = {
        "probes": {k: False for k in ("breaker", "rate_limit", "alert_rule_tests", "pii")},
        "load": {"duration_s": "6s", "workload": {"max_tokens": 4},
                 "load": {"kind": "open", "rate_rps": 10}},
        "slos": ["error_rate<=0.5"],
        "confidence": {"max_duration_s": "0s", "inconclusive_is": "warn"},
        "policy": {**SIM_POLICY, "rate_limit_per_minute": 1000},
        "key_checks": [],
    }  # fmt: skip
    one_at_a_time = {"server": {"max_num_seqs": 1, "time_to_first_token_ms": 1000}}
    candidate = {
        "gateway": {"settings": {"rate_limit": {"requests_per_minute": 1000}}},
        "primary": one_at_a_time, "fallback": one_at_a_time,
    }  # fmt: skip
    rc, report, out = run_gate(tmp_path, profile, candidate)
    assert rc == 1, out[-3000:]
    reasons = failed(report, "stack kept up with the offered rate")
    assert "achieved_ratio" in reasons[0], reasons
    # The load generator itself kept its schedule: the fault is the stack's, not the client's.
    kept = next(c for c in report["checks"] if c["name"] == "load generator kept its schedule")
    assert kept["outcome"] == "pass", kept


def test_a_deployed_alert_rule_that_cannot_fire_fails_the_alert_check(tmp_path: Path) -> None:
    """Every pool down, and the candidate's HighErrorRate needs an error rate above 100%: the
    deployed rule, loaded live with short windows, never fires, and the gate says so."""
    exp = yaml.safe_load(
        (Path(__file__).parents[2] / "chaos" / "every-pool-down-live-alert.yaml").read_text()
    )
    exp["load"].update(duration_s="16s")
    exp.update(fault_at_s="3s", fault_for_s="10s")
    exp["expect"]["alerts"] = [{"alert": "HighErrorRate", "fires_within_s": 25}]
    (tmp_path / "exp.yaml").write_text(yaml.safe_dump(exp))
    profile = {**PROBES_ONLY, "probes": {k: False for k in ("breaker", "rate_limit", "pii")},
               "experiments": [str(tmp_path / "exp.yaml")], "key_checks": ["alerts"]}  # fmt: skip
    rc, report, out = run_gate(tmp_path, profile, {"prometheus": {"error_rate_threshold": 1.0}})
    assert rc == 1, out[-3000:]
    reasons = failed(report, f"{exp['title']}: alert HighErrorRate fires")
    assert reasons == ["no firing notification within 25s after the fault started"], reasons
