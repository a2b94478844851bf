"""The gate's judging on exact numbers: policy against candidate, key checks, streaming spread,
the rate limit's exact budget, zero cost, resource ceilings, the checklist's percentiles and
SLOs judged with confidence bounds."""

from __future__ import annotations

import numpy as np
import pytest

from harness.data.samples import Sample
from harness.measure.summary import RunContext, summarize
from harness.observe.resources import ServiceUsage
from harness.spec.gate import GateSpec
from harness.spec.policy import Policy, ResourcePolicy, StreamingPolicy
from harness.spec.slo import parse_slo
from harness.spec.stack import StackSpec
from harness.verdict.checklist import checklist
from harness.verdict.checks import CheckResult, coverage_check
from harness.verdict.policy import duration_s, judge_policy, policy_differences
from harness.verdict.practices import judge_cost, judge_rate_limit, judge_streaming
from harness.verdict.resources import judge_resources
from harness.verdict.slo import judge_slo


def candidate(**settings: object) -> StackSpec:
    return StackSpec.model_validate({"gateway": {"settings": settings}})


# --- policy against candidate -------------------------------------------------------------------


def test_the_reference_stack_meets_the_default_policy() -> None:
    check = judge_policy(Policy(), StackSpec())
    assert check.outcome == "pass", check.reasons


@pytest.mark.parametrize(
    ("settings", "named"),
    [
        (
            {"rate_limit": {"requests_per_minute": 1000}},
            "rate limit: candidate allows 1000/min per key, policy 100/min",
        ),
        ({"rate_limit": {"enabled": False}}, "rate limit: candidate disabled"),
        ({"breaker": {"failure_threshold": 50}}, "circuit breaker: candidate opens after 50"),
        ({"breaker": {"recovery_timeout_s": 5}}, "retries the pool after 5 s"),
        ({"fallback": {"enabled": False}}, "fallback: candidate disabled"),
        ({"fallback": {"fallback_max_tokens": 500}}, "fallback budget: candidate 500 tokens"),
        ({"validation": {"max_prompt_chars": 100000}}, "maximum prompt length"),
        ({"pii": {"enabled": False}}, "PII filtering: candidate disabled"),
        ({"cache": {"enabled": False}}, "response cache: candidate disabled"),
        ({"cache": {"ttl_s": 86400}}, "cache TTL: candidate 86400 s, policy at most 3600 s"),
        ({"auth": {"enabled": False}}, "authentication: candidate off"),
        ({"auth": {"allow_anonymous": True}}, "authentication: candidate allows anonymous"),
        (
            {"validation": {"injection_patterns": []}},
            "prompt-injection patterns: candidate does not flag 'ignore previous instructions', "
            "'disregard above', 'system:', 'assistant:'",
        ),
        (
            {"validation": {"injection_patterns": ["ignore previous instructions", "system:"]}},
            "candidate does not flag 'disregard above', 'assistant:', policy flags",
        ),
    ],
)
def test_a_weakened_practice_fails_with_the_difference_named(
    settings: dict[str, object], named: str
) -> None:
    check = judge_policy(Policy(), candidate(**settings))
    assert check.outcome == "fail"
    assert any(named in r for r in check.reasons), check.reasons


def test_a_stricter_candidate_passes_and_the_candidate_cannot_lower_the_bar() -> None:
    strict = candidate(rate_limit={"requests_per_minute": 10}, breaker={"failure_threshold": 2})
    assert policy_differences(Policy(), strict) == []
    # The same generous limit passes only a policy that allows it: the profile decides.
    generous = candidate(rate_limit={"requests_per_minute": 1000})
    assert policy_differences(Policy(rate_limit_per_minute=1000), generous) == []


def test_injection_patterns_are_compared_as_the_gateway_matches_them() -> None:
    # Case does not matter (the gateway lowers both); extra patterns are stricter.
    shouting = candidate(
        validation={
            "injection_patterns": [
                "IGNORE PREVIOUS INSTRUCTIONS",
                "Disregard Above",
                "SYSTEM:",
                "assistant:",
                "jailbreak",
            ]
        }
    )
    assert policy_differences(Policy(), shouting) == []
    # A profile's own list is the bar: a pattern the candidate lacks is named.
    policy = Policy.model_validate({"injection": {"patterns": ["system:", "developer mode"]}})
    assert policy_differences(policy, StackSpec()) == [
        "prompt-injection patterns: candidate does not flag 'developer mode', policy flags "
        "'system:', 'developer mode'"
    ]
    # A policy that refuses flagged prompts fails a candidate that only logs them.
    refusing = Policy.model_validate({"injection": {"action": "reject"}})
    assert policy_differences(refusing, StackSpec()) == [
        "prompt injection: candidate lets flagged prompts through (log), policy refuses them "
        "(reject)"
    ]
    assert policy_differences(refusing, candidate(validation={"injection_policy": "reject"})) == []


def test_alert_rules_looser_than_the_policy_are_named() -> None:
    stack = StackSpec.model_validate(
        {
            "prometheus": {
                "error_rate_threshold": 0.5,
                "error_rate_for": "10m",
                "gpu_memory_ratio": 1.0,
                "slow_window": "1h",
            }
        }
    )
    assert policy_differences(Policy(), stack) == [
        "HighErrorRate threshold: candidate 0.5, policy at most 0.05",
        "GPUMemoryHigh threshold: candidate 1, policy at most 0.95",
        "HighErrorRate `for`: candidate 10m, policy at most 2m",
        "SlowResponse window: candidate 1h, policy at most 5m",
    ]
    assert duration_s("1h30m") == 5400 and duration_s("15s") == 15
    with pytest.raises(ValueError):
        duration_s("5 minutes")


# --- a gate that can say no ------------------------------------------------------------------


def check(name: str, outcome: str, category: str = "x") -> CheckResult:
    return CheckResult(name=name, category=category, outcome=outcome, reasons=["why"])  # type: ignore[arg-type]


def test_a_gate_in_which_nothing_was_judged_cannot_pass() -> None:
    c = coverage_check([check("stack", "pass", "stack"), check("a", "skipped")], ())
    assert c.outcome == "fail" and "nothing was judged" in c.reasons[0]


def test_a_skipped_or_missing_key_check_fails_the_gate() -> None:
    results = [check("a", "pass"), check("response cache", "skipped", "cache")]
    c = coverage_check(results, ("response cache", "slo"))
    assert c.outcome == "fail"
    assert "key check 'response cache' was skipped: why" in c.reasons
    assert "key check 'slo' did not run" in c.reasons
    ok = coverage_check([check("a", "pass"), check("SLO x", "pass", "slo")], ("a", "slo"))
    assert ok.outcome == "pass"


def test_the_default_profile_names_its_key_checks() -> None:
    from harness.paths import PROJECT_ROOT
    from harness.spec.loader import load_yaml_model

    gate = load_yaml_model(GateSpec, PROJECT_ROOT / "reports" / "profiles" / "default.yaml")
    assert "rate limit per API key" in gate.key_checks and "slo" in gate.key_checks
    assert {"prompt-injection flagging", "PII filtered from answers"} <= set(gate.key_checks)
    assert gate.policy == Policy()  # PRACTICES.md's values, written out
    assert gate.confidence.warn_only == ("ttft_p99_ms<=7x", "itl_p95_ms<=5x")
    assert gate.relative_slos()


# --- evidence, not labels ---------------------------------------------------------------------


def test_a_buffered_stream_fails_and_a_real_one_passes() -> None:
    policy = StreamingPolicy()
    streamed = [0.2 + 0.02 * i for i in range(24)]  # first chunk at 200 ms, then every 20 ms
    assert judge_streaming(streamed, 0.7, policy)[0] == []
    buffered = [0.69 + 0.0001 * i for i in range(24)]  # everything at the end
    failures, measured = judge_streaming(buffered, 0.7, policy)
    assert failures and "the stream is buffered" in failures[0]
    assert measured["spread"] is not None and float(measured["spread"]) < 0.01
    assert "content chunks streamed" in judge_streaming([0.1], 0.2, policy)[0][0]


def test_the_rate_limit_admits_exactly_its_budget() -> None:
    def codes(ok: int, total: int = 120) -> list[int]:
        return [200] * ok + [429] * (total - ok)

    assert judge_rate_limit(codes(100), 100, 100, fresh_key=True) == []
    assert "101 of 120 requests admitted at once, policy 100/minute" in judge_rate_limit(
        codes(101), 100, 100, fresh_key=True
    )
    # A key used earlier this minute has less left: fewer is fine, more never.
    assert judge_rate_limit(codes(60), 100, 100, fresh_key=False) == []
    assert "declares 100/minute" in judge_rate_limit(codes(99), 100, 100, fresh_key=True)[0]
    # A candidate declaring 1000/min is held to the policy's 100.
    assert judge_rate_limit(codes(120, 120), 100, 1000, fresh_key=True)[0].startswith("120 of")
    assert "no 429" in judge_rate_limit(codes(120, 120), 100, 1000, fresh_key=True)[1]


def test_a_zero_cost_fails_the_cost_check() -> None:
    usage = {"prompt_tokens": 40, "completion_tokens": 8, "cost_usd": 0.0}
    failures, _ = judge_cost(200, usage, {"m": 0.0}, 8, 40, {"default": 0.0})
    assert any("a zero cost" in f for f in failures)
    assert "llm_cost_usd_total did not grow" in failures


def test_resource_ceilings_fail_by_service() -> None:
    usage = [
        ServiceUsage(service="primary-0", samples=5, cpu_percent_mean=95, rss_mb_max=400),
        ServiceUsage(service="nginx", samples=5, cpu_percent_mean=2, rss_mb_max=10),
    ]
    assert judge_resources(usage, ResourcePolicy()).outcome == "pass"
    c = judge_resources(usage, ResourcePolicy(cpu_percent_max=80, rss_mb_max=300))
    assert c.outcome == "fail"
    assert c.reasons == [
        "primary-0: mean CPU 95% over the policy's 80%",
        "primary-0: peak memory 400 MB over the policy's 300 MB",
    ]


def test_the_latency_item_is_proven_only_when_p50_p95_and_p99_are_judged() -> None:
    def latency(names: list[str]) -> str:
        rows = checklist([check(f"SLO {n}", "pass", "slo") for n in names])
        return next(r.status for r in rows if r.item.startswith("Benchmark latency"))

    assert latency(["ttft_p95_ms<=1"]) == "not checked"
    assert latency(["ttft_p50_ms<=1", "ttft_p95_ms<=1", "e2e_p99_ms<=1"]) == "proven"


# --- SLOs judged with confidence -------------------------------------------------------------


def samples_with_ttft(values: np.ndarray) -> list[Sample]:
    return [
        Sample(
            worker=0,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id="p",
            repeated=False,
            intended_s=float(i),
            sent_s=float(i),
            e2e_ms=float(v) + 100,
            status=200,
            ttft_ms=float(v),
            output_tokens=8,
            output_chunks=8,
            x_served_by="primary",
        )
        for i, v in enumerate(values)
    ]


def judged(values: np.ndarray, expr: str) -> str:
    samples = samples_with_ttft(values)
    summary = summarize(samples, RunContext(start_s=0, duration_s=len(values), open_loop=True))
    return judge_slo(parse_slo(expr), samples, summary, alpha=0.05).decision


def test_a_p95_from_22_requests_is_not_a_pass() -> None:
    rng = np.random.default_rng(1)
    few = rng.lognormal(np.log(200), 0.3, 22)  # true p95 ~330 ms, far under 1000
    assert judged(few, "ttft_p95_ms<=1000") == "inconclusive"  # 59 are needed for a bound
    many = rng.lognormal(np.log(200), 0.3, 400)
    assert judged(many, "ttft_p95_ms<=1000") == "pass"
    assert judged(many, "ttft_p95_ms<=150") == "fail"


def test_an_error_rate_and_a_share_are_judged_with_binomial_bounds() -> None:
    samples = samples_with_ttft(np.full(200, 100.0))
    for s in samples[:2]:
        s.error, s.status = "status", 500
    summary = summarize(samples, RunContext(start_s=0, duration_s=200, open_loop=True))
    j = judge_slo(parse_slo("error_rate<=0.05"), samples, summary, alpha=0.05)
    assert j.decision == "pass" and j.n == 200 and j.upper is not None and j.upper < 0.05
    j = judge_slo(parse_slo("error_rate<=0.001"), samples, summary, alpha=0.05)
    assert j.decision == "fail"
    j = judge_slo(parse_slo("primary_share>=0.9"), samples, summary, alpha=0.05)
    assert j.decision == "pass"


# --- alerts proven live ----------------------------------------------------------------------


def test_the_live_copy_of_the_rules_changes_only_windows_and_holds() -> None:
    from harness.observe.live_rules import short_window_rules
    from harness.spec.stack import PrometheusSpec
    from harness.stack.render import alert_rules

    deployed = alert_rules(PrometheusSpec())
    short = short_window_rules(deployed, "15s", "5s")
    (group,) = short["groups"]
    assert group["name"] == "llm_alerts_gate_live"
    for before, after in zip(deployed["groups"][0]["rules"], group["rules"], strict=True):
        assert after["alert"] == before["alert"] and after["labels"] == before["labels"]
        assert after["for"] == "5s"
        assert "[5m]" not in after["expr"]
        assert after["expr"] == before["expr"].replace("[5m]", "[15s]")
    assert "> 0.05" in group["rules"][0]["expr"]  # thresholds untouched


def test_pii_is_proven_only_by_placeholders_in_live_answers() -> None:
    from harness.verdict.practices import PiiAnswers, carries, judge_pii

    def asked(kind: str, planted: str, plain: str, streamed: str | None = None) -> PiiAnswers:
        return PiiAnswers(kind, planted, plain, plain if streamed is None else streamed)

    filtered = [
        asked("email", "jane.doe@example.com", "[EMAIL]"),
        asked("phone", "555-123-4567", "[PHONE]"),
        asked("ssn", "123-45-6789", "[SSN]"),
    ]
    assert judge_pii(filtered, 6)[0] == "pass"
    leaked = judge_pii([filtered[0], asked("phone", "555-123-4567", "[PHONE]", "555-123-4567")], 6)
    assert leaked == ("fail", ["the streamed answer leaks the planted phone '555-123-4567'"])
    # A value the model made up is PII too: unfiltered, it is a leak.
    made_up = asked("email", "jane.doe@example.com", "jane.doe@example.net", "[EMAIL]")
    assert judge_pii([made_up], 6)[1] == [
        "the plain answer leaks an unfiltered email 'jane.doe@example.net'"
    ]
    outcome, reasons = judge_pii([asked("email", "jane.doe@example.com", "Sure!")], 6)
    assert outcome == "skipped"
    assert reasons == [
        "no live answer repeated the planted PII in 6 prompts per kind, so its "
        "filtering could not be seen"
    ]
    assert judge_pii([filtered[0], asked("ssn", "123-45-6789", "I cannot.")], 6)[0] == "warn"
    # What stops the probe's retries: the value came back, filtered or not.
    assert carries("[SSN]", "ssn") and carries("it is 555-123-4567", "phone")
    assert not carries("Sure! Here you go.", "email") and not carries("[PHONE]", "ssn")


def test_every_latency_percentile_gets_a_bound_e2e_included() -> None:
    rng = np.random.default_rng(3)
    samples = samples_with_ttft(rng.lognormal(np.log(200), 0.3, 300))
    summary = summarize(samples, RunContext(start_s=0, duration_s=300, open_loop=True))
    for expr in ("e2e_p95_ms<=5000", "ttft_p50_ms<=5000", "tpot_p95_ms<=5000"):
        j = judge_slo(parse_slo(expr), samples, summary, alpha=0.05)
        assert j.upper is not None and "point estimate" not in j.reason, (expr, j.reason)


def test_tokens_sent_together_by_the_gateway_are_not_a_buffered_stream() -> None:
    policy = StreamingPolicy()
    batched = [0.1006, 0.1006, 0.1007, 0.1110, 0.1110, 0.1162]  # seen: 6 chunks in 3 writes
    assert judge_streaming(batched, 0.118, policy)[0] == []
    fast = [0.122 + 0.005 * i for i in range(8)]  # slow first token, then 5 ms a token
    assert judge_streaming(fast, 0.157, policy)[0] == []
    at_the_end = [0.3970] * 9  # gzip behind a buffering proxy, as measured
    assert "the stream is buffered" in judge_streaming(at_the_end, 0.398, policy)[0][0]


def test_a_hit_that_is_not_faster_than_its_miss_fails_the_cache_check() -> None:
    from harness.verdict.practices import judge_cache

    fast = judge_cache(["miss", "hit", "hit", "hit"], [0.400, 0.004, 0.003, 0.200], 10)
    assert fast[0] == [] and fast[1]["hit_ms"] == 4.0  # the median ignores the one slow hit
    labelled_only = judge_cache(["miss", "hit", "hit", "hit"], [0.400, 0.350, 0.380, 0.390], 10)
    assert "1.1x faster, policy at least 10x" in labelled_only[0][0]
    off = judge_cache(["miss", "miss", "miss", "miss"], [0.4, 0.4, 0.4, 0.4], 10)
    assert off[0][0].startswith("X-Cache was ['miss', 'miss', 'miss', 'miss']")


def test_the_built_in_defaults_are_the_default_profiles_slos() -> None:
    from harness.paths import PROJECT_ROOT
    from harness.spec.loader import load_yaml_model

    profile = load_yaml_model(GateSpec, PROJECT_ROOT / "reports" / "profiles" / "default.yaml")
    assert GateSpec().slos == profile.slos
    assert GateSpec().confidence == profile.confidence
