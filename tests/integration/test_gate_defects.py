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

from harness.spec.gate import GateProbes

pytestmark = [pytest.mark.integration, pytest.mark.gate, pytest.mark.slow]

SIM_STACK = Path(__file__).parents[1] / "fixtures" / "sim-stack.yaml"
# The simulated stack's breaker recovers in 4 s (quick tests), and its misses take only ~50 ms
# (30 ms to the first token), so a hit can be only a few times faster (3.8x on a busy runner):
# the policy is told so.
SIM_POLICY = {"breaker": {"recovery_timeout_s": 4}, "cache": {"hit_speedup": 2}}
# Loads here allow a send lag of 250 ms (the default profile's): beside the suite's other
# workers a 2-core runner stalls the generator (a 50 ms bound failed a run at 209 ms).
PROBES_ONLY = {"probes": {"breaker": False}, "load": None, "key_checks": []}
PROBES = tuple(GateProbes.model_fields)


def only(*probes: str) -> dict[str, bool]:
    """A profile's `probes:` with every probe off but these."""
    return {p: p in probes for p in PROBES}


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
        [
            sys.executable,
            "-m",
            "harness",
            "gate",
            "--profile",
            str(prof),
            "--stack",
            str(stack),
            "--out",
            str(tmp_path / "out"),
            "--no-history",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    report = json.loads((tmp_path / "out" / "report.json").read_text())
    return r.returncode, report, r.stdout + r.stderr


def failed(report: dict[str, Any], name: str) -> list[str]:
    check = next(c for c in report["checks"] if c["name"] == name)
    assert check["outcome"] == "fail", check
    reasons: list[str] = check["reasons"]
    return reasons


DEFECTS = [
    pytest.param(
        {"nginx": {"buffering": True}},
        {},
        "streamed completion",
        "the stream is buffered",
        id="buffering-proxy",
    ),
    pytest.param(
        {"gateway": {"settings": {"cost": {"price_per_1k_tokens": {"default": 0.0}}}}},
        {},
        "cost accounting",
        "a zero cost",
        id="zero-prices",
    ),
    pytest.param(
        {},
        {
            "policy": {
                **SIM_POLICY,
                "monitoring": {"gateway_metrics": ["llm_requests_total", "llm_queue_depth"]},
            }
        },
        "metrics and alert rules",
        "metric llm_queue_depth not exported",
        id="missing-metric",
    ),
    pytest.param(
        {},
        {"policy": {**SIM_POLICY, "monitoring": {"jobs": ["gateway", "tracing"]}}},
        "metrics and alert rules",
        "no scrape target for job 'tracing'",
        id="missing-scrape-job",
    ),
    pytest.param(
        {"gateway": {"settings": {"logging": {"level": "error"}}}},
        {},
        "error answers logged with request id and reason",
        "no gateway log line with its request id",
        id="error-answers-unlogged",
    ),
    pytest.param(
        {"gateway": {"settings": {"logging": {"debug_requests": True}}}},
        {},
        "no API key or prompt PII in the logs",
        "API key sk-har... in a gateway line",
        id="debug-logging-leaks-keys",
    ),
]


# Planted together, one stack each: no two defects of a gate share a check or a setting.
DEFECTS_TOGETHER = [
    ("buffering-proxy", "zero-prices", "missing-metric", "error-answers-unlogged"),
    ("missing-scrape-job", "debug-logging-leaks-keys"),
]


def merged(parts: list[dict[str, Any]]) -> dict[str, Any]:
    """The parts deep-merged into a fresh dict (the parts left as they are)."""
    out: dict[str, Any] = {}
    for part in parts:
        deep_update(out, json.loads(json.dumps(part)))
    return out


def test_the_defect_groups_hold_every_defect_once_and_share_no_check() -> None:
    defects = {p.id: p.values for p in DEFECTS}
    assert sorted(i for g in DEFECTS_TOGETHER for i in g) == sorted(defects)
    for group in DEFECTS_TOGETHER:
        checks = [defects[i][2] for i in group]
        assert len(checks) == len(set(checks)), group


@pytest.mark.parametrize("group", [pytest.param(g, id="+".join(g)) for g in DEFECTS_TOGETHER])
def test_a_planted_defect_fails_the_gate_with_its_checks_reason(
    tmp_path: Path, group: tuple[str, ...]
) -> None:
    rows = [next(p.values for p in DEFECTS if p.id == i) for i in group]
    candidate = merged([row[0] for row in rows])
    profile = merged([PROBES_ONLY, *(row[1] for row in rows)])
    rc, report, out = run_gate(tmp_path, profile, candidate)
    assert rc == 1, out[-3000:]
    for i, (_, _, check, reason) in zip(group, rows, strict=True):
        reasons = failed(report, check)
        assert any(reason in r for r in reasons), (i, reasons)


def settings(**practices: Any) -> dict[str, Any]:
    return {"gateway": {"settings": practices}}


# The checks that prove a practice by behaviour, by their probe in the profile.
PROBE_CHECKS = {
    "security": "authentication and input validation",
    "injection": "prompt-injection flagging",
    "pii": "PII filtered from answers",
    "cache": "response cache",
    "alert_rule_tests": "alert rule unit tests (promtool)",
    "breaker": "circuit breaker opens and recovers",
    "rate_limit": "rate limit per API key",
}
SLOW_ALERTS = {
    k: "1d"
    for k in ("error_rate_window", "error_rate_for", "slow_window", "slow_for", "gpu_memory_for")
}
# Every practice the policy sets, declared at its weakest by the candidate (off, empty, huge):
# (candidate, policy, the policy check's reasons, the probe that shows it in seconds on the
# simulated stack and its check's reason; None where only a fault experiment or hours would).
WEAKEST = [
    pytest.param(
        settings(auth={"enabled": False}),
        {},
        ["authentication: candidate off, policy required"],
        "security",
        "no key: POST answered 200",
        id="auth-off",
    ),
    pytest.param(
        settings(auth={"allow_anonymous": True}),
        {},
        ["authentication: candidate allows anonymous, policy required"],
        "security",
        "no key: POST answered 200",
        id="anonymous-allowed",
    ),
    pytest.param(
        settings(rate_limit={"enabled": False}),
        {},
        ["rate limit: candidate disabled, policy 100/min per key"],
        "rate_limit",
        "no 429",
        id="limiter-off",
    ),
    pytest.param(
        settings(rate_limit={"requests_per_minute": 1_000_000}),
        {},
        ["rate limit: candidate allows 1000000/min per key, policy 100/min"],
        "rate_limit",
        "admitted at once, policy 100/minute",
        id="limiter-huge",
    ),
    pytest.param(
        settings(breaker={"failure_threshold": 1_000_000}),
        {},
        ["circuit breaker: candidate opens after 1000000 failures, policy at most 5"],
        "breaker",
        "after 5 failures the breaker reads closed, want open",
        id="breaker-never-opens",
    ),
    pytest.param(
        settings(breaker={"recovery_timeout_s": 0.5}),
        {},
        ["circuit breaker: candidate retries the pool after 0.5 s, policy not before 4 s"],
        "breaker",
        "before its recovery timeout of 4s",
        id="breaker-retries-at-once",
    ),
    pytest.param(
        settings(fallback={"enabled": False}),
        {},
        ["fallback: candidate disabled, policy after 5 s"],
        None,
        None,
        id="fallback-off",
    ),
    pytest.param(
        settings(fallback={"primary_timeout_s": 1_000_000}),
        {},
        ["fallback: candidate waits 1e+06 s for the primary, policy at most 5 s"],
        None,
        None,
        id="fallback-never",
    ),
    pytest.param(
        settings(fallback={"fallback_max_tokens": 1_000_000}),
        {},
        ["fallback budget: candidate 1000000 tokens, policy at most 50"],
        None,
        None,
        id="fallback-budget-huge",
    ),
    pytest.param(
        settings(validation={"max_prompt_chars": 1_000_000_000}),
        {},
        ["maximum prompt length: candidate 1000000000 chars, policy at most 10000"],
        "security",
        "oversized prompt: POST answered 200",
        id="prompt-limit-huge",
    ),
    pytest.param(
        settings(validation={"injection_patterns": []}),
        {},
        [
            "prompt-injection patterns: candidate does not flag 'ignore previous "
            "instructions', 'disregard above', 'system:', 'assistant:', policy flags "
            "'ignore previous instructions', 'disregard above', 'system:', 'assistant:'"
        ],
        "injection",
        "llm_prompt_injection_detected_total{pattern='disregard above'} grew by 0, want 1",
        id="injection-patterns-none",
    ),
    pytest.param(
        {},
        {"injection": {"action": "reject"}},
        [
            "prompt injection: candidate lets flagged prompts through (log), policy "
            "refuses them (reject)"
        ],
        "injection",
        "'system:': policy reject: status 200",
        id="injection-let-through",
    ),
    pytest.param(
        settings(pii={"enabled": False}),
        {},
        ["PII filtering: candidate disabled, policy filters email, phone, ssn"],
        "pii",
        "the plain answer leaks the planted email 'jane.doe@example.com'",
        id="pii-filter-off",
    ),
    pytest.param(
        settings(cache={"enabled": False}),
        {},
        ["response cache: candidate disabled, policy TTL 3600 s"],
        "cache",
        "X-Cache was",
        id="cache-off",
    ),
    pytest.param(
        settings(cache={"ttl_s": 1_000_000_000}),
        {},
        ["cache TTL: candidate 1000000000 s, policy at most 3600 s"],
        None,
        None,
        id="cache-ttl-huge",
    ),
    pytest.param(
        {"prometheus": {"error_rate_threshold": 1.0}},
        {},
        ["HighErrorRate threshold: candidate 1, policy at most 0.05"],
        "alert_rule_tests",
        "HighErrorRate",
        id="error-alert-never-fires",
    ),
    pytest.param(
        {"prometheus": {"slow_p95_seconds": 1_000_000}},
        {},
        ["SlowResponse threshold: candidate 1e+06 s, policy at most 10 s"],
        "alert_rule_tests",
        "SlowResponse",
        id="slow-alert-never-fires",
    ),
    pytest.param(
        {"prometheus": {"gpu_memory_ratio": 1.0}},
        {},
        ["GPUMemoryHigh threshold: candidate 1, policy at most 0.95"],
        "alert_rule_tests",
        "GPUMemoryHigh",
        id="gpu-alert-never-fires",
    ),
    pytest.param(
        {"prometheus": SLOW_ALERTS},
        {},
        [
            "HighErrorRate window: candidate 1d, policy at most 5m",
            "HighErrorRate `for`: candidate 1d, policy at most 2m",
            "SlowResponse window: candidate 1d, policy at most 5m",
            "SlowResponse `for`: candidate 1d, policy at most 5m",
            "GPUMemoryHigh `for`: candidate 1d, policy at most 5m",
        ],
        "alert_rule_tests",
        "alertname: GPUMemoryHigh",
        id="alerts-too-slow",
    ),
]


# The rows gated together, one stack each: no two rows in a group share a probe or a setting, so
# each defect still fails with its own reason (19 stacks were a minute of the suite).
WEAKEST_TOGETHER = [
    (
        "auth-off",
        "limiter-off",
        "breaker-never-opens",
        "pii-filter-off",
        "error-alert-never-fires",
        "fallback-budget-huge",
    ),
    (
        "anonymous-allowed",
        "limiter-huge",
        "breaker-retries-at-once",
        "cache-off",
        "slow-alert-never-fires",
        "fallback-never",
    ),
    ("prompt-limit-huge", "injection-patterns-none", "gpu-alert-never-fires", "cache-ttl-huge"),
    ("injection-let-through", "alerts-too-slow", "fallback-off"),
]


def test_the_groups_hold_every_row_once_and_share_no_probe() -> None:
    rows = {p.id: p.values for p in WEAKEST}
    grouped = [i for group in WEAKEST_TOGETHER for i in group]
    assert sorted(grouped) == sorted(rows)
    for group in WEAKEST_TOGETHER:
        probes = [rows[i][3] for i in group if rows[i][3] is not None]
        assert len(probes) == len(set(probes)), group
        sections = [k for i in group for part in rows[i][:2] for k in _sections(part)]
        assert len(sections) == len(set(sections)), group


def _sections(part: Any) -> list[str]:
    """The settings (or policy fields) a row's candidate or policy sets, as section.field."""
    assert isinstance(part, dict)
    inner = part.get("gateway", {}).get("settings", part)
    return [f"{k}.{j}" for k, v in inner.items() for j in v]


@pytest.mark.parametrize("group", [pytest.param(g, id="+".join(g)) for g in WEAKEST_TOGETHER])
def test_a_practice_at_its_weakest_fails_the_gate(tmp_path: Path, group: tuple[str, ...]) -> None:
    """The candidate cannot lower its own bar: for each practice declared at its weakest, the
    policy check names the difference, and the probe, sending and expecting the policy's
    values, fails on what the stack does (several practices per stack, each its own reason)."""
    rows = [next(p.values for p in WEAKEST if p.id == i) for i in group]
    candidate, policy = merged([row[0] for row in rows]), merged([row[1] for row in rows])
    probes = [row[3] for row in rows if row[3] is not None]
    profile = {**PROBES_ONLY, "probes": only(*probes), "policy": {**SIM_POLICY, **policy}}
    rc, report, out = run_gate(tmp_path, profile, candidate)
    assert rc == 1, out[-3000:]
    differences = failed(report, "candidate's practices meet the policy")
    assert sorted(differences) == sorted(d for row in rows for d in row[2])
    for i, (_, _, _, probe, reason) in zip(group, rows, strict=True):
        if probe is not None:
            reasons = failed(report, PROBE_CHECKS[probe])
            assert any(reason in r for r in reasons), (i, reasons)


def test_a_skipped_key_check_means_the_gate_cannot_pass(tmp_path: Path) -> None:
    rc, report, out = run_gate(
        tmp_path,
        {
            **PROBES_ONLY,
            "probes": {"breaker": False, "cache": False},
            "key_checks": ["response cache"],
        },
    )
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
        "load": {
            "duration_s": "6s",
            "workload": {"max_tokens": 8},
            "load": {"kind": "open", "rate_rps": 10, "max_send_lag_ms": 250},
        },
        "slos": ["ttft_p95_ms<=200"],
        "confidence": {"max_duration_s": "12s"},
        "key_checks": ["slo"],
    }
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


def test_pii_no_model_repeats_is_skipped_and_fails_its_key_check(tmp_path: Path) -> None:
    """Models that never repeat a planted value (both simulators in random mode): the filter
    cannot be seen on a live answer, the probe says so after its bounded tries, and as a key
    check it stops the gate from passing."""
    profile = {**PROBES_ONLY, "probes": only("pii"), "key_checks": ["PII filtered from answers"]}
    rc, report, out = run_gate(tmp_path, profile, {"fallback": {"server": {"mode": "random"}}})
    assert rc == 1, out[-3000:]
    pii = next(c for c in report["checks"] if c["name"] == "PII filtered from answers")
    why = (
        "no live answer repeated the planted PII in 6 prompts per kind, so its filtering "
        "could not be seen"
    )
    assert pii["outcome"] == "skipped" and pii["reasons"] == [why], pii
    # Three planted values, each asked of both models the entry lists.
    assert pii["measured"]["email_tries"] == 6 and pii["measured"]["ssn_tries"] == 6
    assert f"key check 'PII filtered from answers' was skipped: {why}" in failed(
        report, "key checks ran"
    )


def test_load_step_checks_fail_on_a_failing_primary_slow_answers_and_heavy_services(
    tmp_path: Path,
) -> None:
    """One run, three load-step defects: the primary's answers fail (so the fallback serves
    them: the primary's share check fails), no answer meets a per-request SLO (goodput
    fails), and the services are over a memory ceiling (resources fail); a relative SLO is judged
    against the calibration of the pinned llama.cpp build, whose figures are in the report."""
    profile = {
        "probes": {k: False for k in ("breaker", "rate_limit", "alert_rule_tests", "pii")},
        "load": {
            "duration_s": "5s",
            "workload": {"max_tokens": 8},
            "load": {"kind": "open", "rate_rps": 4, "max_send_lag_ms": 250},
        },
        "slos": ["ttft_ms<=1", "ttft_p50_ms<=50x"],
        "confidence": {"max_duration_s": "0s"},
        "policy": {**SIM_POLICY, "resources": {"rss_mb_max": 1}},
        "key_checks": [],
    }
    # Server errors only: a 4xx the primary answers is the client's error, passed on as its answer.
    failing = {
        "primary": {"server": {"failure_injection_rate": 100, "failure_types": ["server_error"]}}
    }
    rc, report, out = run_gate(tmp_path, profile, failing)
    assert rc == 1, out[-3000:]
    primary = failed(report, "served by the primary pool")
    assert "primary_share" in primary[0] and "violates" in primary[0], primary
    goodput = next(c for c in report["checks"] if c["name"].startswith("goodput"))
    assert goodput["outcome"] == "fail" and goodput["measured"]["estimate"] == 0, goodput
    assert any("over the policy's 1 MB" in r for r in failed(report, "resource usage during load"))
    assert report["calibration"]["ttft_ms"] > 0
    assert report["calibration"]["measured_during"] == "before the probes"  # no breaker probe
    relative = next(c for c in report["checks"] if c["name"] == "SLO ttft_p50_ms<=50x")
    assert "of the calibration is ttft_p50_ms<=" in " ".join(relative["reasons"]), relative


def test_a_stack_that_falls_behind_the_offered_rate_fails_kept_up(tmp_path: Path) -> None:
    """Model servers that take one request at a time, a second each, offered ten a second: the
    backlog shows as fewer answers within the schedule than were sent."""
    profile = {
        "probes": {k: False for k in ("breaker", "rate_limit", "alert_rule_tests", "pii")},
        "load": {
            "duration_s": "6s",
            "workload": {"max_tokens": 4},
            "load": {"kind": "open", "rate_rps": 10, "max_send_lag_ms": 250},
        },
        "slos": ["error_rate<=0.5"],
        "confidence": {"max_duration_s": "0s", "inconclusive_is": "warn"},
        "policy": {**SIM_POLICY, "rate_limit_per_minute": 1000},
        "key_checks": [],
    }
    one_at_a_time = {"server": {"max_num_seqs": 1, "time_to_first_token_ms": 1000}}
    candidate = {
        "gateway": {"settings": {"rate_limit": {"requests_per_minute": 1000}}},
        "primary": one_at_a_time,
        "fallback": one_at_a_time,
    }
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
    profile = {
        **PROBES_ONLY,
        "probes": {k: False for k in ("breaker", "rate_limit", "pii")},
        "experiments": [str(tmp_path / "exp.yaml")],
        "key_checks": ["alerts"],
    }
    rc, report, out = run_gate(tmp_path, profile, {"prometheus": {"error_rate_threshold": 1.0}})
    assert rc == 1, out[-3000:]
    reasons = failed(report, f"{exp['title']}: alert HighErrorRate fires")
    assert reasons == ["no firing notification within 25s after the fault started"], reasons
