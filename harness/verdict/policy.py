"""Policy against candidate: the practice settings a candidate stack declares, judged by the gate
profile's policy. A candidate that disables or weakens a practice fails with the difference named;
a stricter one passes. (The probes then prove, with requests, that the stack does what it says.)
"""

from __future__ import annotations

import re

from harness.spec.policy import Policy
from harness.spec.stack import StackSpec
from harness.verdict.checks import CheckResult

NAME = "candidate's practices meet the policy"
_UNITS_S = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}


def duration_s(text: str) -> float:
    """A Prometheus duration such as '5m' or '1h30m' in seconds."""
    parts = re.findall(r"(\d+(?:\.\d+)?)(ms|s|m|h|d)", text)
    if not parts or "".join(n + u for n, u in parts) != text.strip():
        raise ValueError(f"not a Prometheus duration: {text!r}")
    return sum(float(n) * _UNITS_S[u] for n, u in parts)


def policy_differences(policy: Policy, stack: StackSpec) -> list[str]:
    """Every way the candidate's declared settings fall short of the policy, each named with both
    values. Empty: nothing the candidate declares is weaker than the policy."""
    s = stack.gateway.settings
    out: list[str] = []

    def weaker(what: str, candidate: object, wanted: object) -> None:
        out.append(f"{what}: candidate {candidate}, policy {wanted}")

    if not s.auth.enabled or s.auth.allow_anonymous:
        weaker("authentication", "off" if not s.auth.enabled else "allows anonymous", "required")
    if not s.rate_limit.enabled:
        weaker("rate limit", "disabled", f"{policy.rate_limit_per_minute}/min per key")
    elif s.rate_limit.requests_per_minute > policy.rate_limit_per_minute:
        weaker(
            "rate limit",
            f"allows {s.rate_limit.requests_per_minute}/min per key",
            f"{policy.rate_limit_per_minute}/min",
        )
    b, pb = s.breaker, policy.breaker
    if b.failure_threshold > pb.failure_threshold:
        weaker(
            "circuit breaker",
            f"opens after {b.failure_threshold} failures",
            f"at most {pb.failure_threshold}",
        )
    if b.recovery_timeout_s < pb.recovery_timeout_s:
        weaker(
            "circuit breaker",
            f"retries the pool after {b.recovery_timeout_s:g} s",
            f"not before {pb.recovery_timeout_s:g} s",
        )
    f, pf = s.fallback, policy.fallback
    if not f.enabled:
        weaker("fallback", "disabled", f"after {pf.timeout_s:g} s")
    else:
        if f.primary_timeout_s > pf.timeout_s:
            weaker(
                "fallback",
                f"waits {f.primary_timeout_s:g} s for the primary",
                f"at most {pf.timeout_s:g} s",
            )
        if f.fallback_max_tokens > pf.max_tokens:
            weaker(
                "fallback budget",
                f"{f.fallback_max_tokens} tokens",
                f"at most {pf.max_tokens}",
            )
    if s.validation.max_prompt_chars > policy.max_prompt_chars:
        weaker(
            "maximum prompt length",
            f"{s.validation.max_prompt_chars} chars",
            f"at most {policy.max_prompt_chars}",
        )
    out += _injection_differences(policy, stack)
    if policy.pii_kinds and not s.pii.enabled:
        weaker("PII filtering", "disabled", "filters " + ", ".join(policy.pii_kinds))
    c, pc = s.cache, policy.cache
    if not c.enabled:
        weaker("response cache", "disabled", f"TTL {pc.ttl_s} s")
    elif c.ttl_s > pc.ttl_s:
        weaker("cache TTL", f"{c.ttl_s} s", f"at most {pc.ttl_s} s")
    out += _alert_differences(policy, stack)
    return out


def _injection_differences(policy: Policy, stack: StackSpec) -> list[str]:
    """Every policy pattern the candidate does not flag (compared as the gateway matches them,
    case-insensitively), and a candidate that lets through what the policy refuses."""
    v, pi = stack.gateway.settings.validation, policy.injection
    declared = {p.lower() for p in v.injection_patterns}
    missing = [p for p in pi.patterns if p.lower() not in declared]
    out: list[str] = []
    if missing:
        out.append(
            "prompt-injection patterns: candidate does not flag "
            f"{', '.join(map(repr, missing))}, policy flags {', '.join(map(repr, pi.patterns))}"
        )
    if pi.action == "reject" and v.injection_policy != "reject":
        out.append(
            "prompt injection: candidate lets flagged prompts through (log), "
            "policy refuses them (reject)"
        )
    return out


def _alert_differences(policy: Policy, stack: StackSpec) -> list[str]:
    p, pa = stack.prometheus, policy.alerts
    out: list[str] = []
    if p.error_rate_threshold > pa.max_error_rate_threshold:
        out.append(
            f"HighErrorRate threshold: candidate {p.error_rate_threshold:g}, "
            f"policy at most {pa.max_error_rate_threshold:g}"
        )
    if p.slow_p95_seconds > pa.max_slow_p95_seconds:
        out.append(
            f"SlowResponse threshold: candidate {p.slow_p95_seconds:g} s, "
            f"policy at most {pa.max_slow_p95_seconds:g} s"
        )
    if p.gpu_memory_ratio > pa.max_gpu_memory_ratio:
        out.append(
            f"GPUMemoryHigh threshold: candidate {p.gpu_memory_ratio:g}, "
            f"policy at most {pa.max_gpu_memory_ratio:g}"
        )
    # The reference rules' production timing (PRACTICES.md); a candidate may fire sooner. A
    # longer window averages a burst of errors away.
    for what, value, limit in (
        ("HighErrorRate window", p.error_rate_window, "5m"),
        ("HighErrorRate `for`", p.error_rate_for, "2m"),
        ("SlowResponse window", p.slow_window, "5m"),
        ("SlowResponse `for`", p.slow_for, "5m"),
        ("GPUMemoryHigh `for`", p.gpu_memory_for, "5m"),
    ):
        if duration_s(value) > duration_s(limit):
            out.append(f"{what}: candidate {value}, policy at most {limit}")
    return out


def judge_policy(policy: Policy, stack: StackSpec) -> CheckResult:
    diffs = policy_differences(policy, stack)
    return CheckResult.from_reasons(
        NAME,
        "policy",
        diffs,
        {"differences": len(diffs)},
        "every declared practice is at least as strict as the policy",
    )
