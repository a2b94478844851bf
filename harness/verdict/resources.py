"""Resource usage during the load step against the policy's ceilings (PRACTICES.md's checklist:
measure resource usage). Without ceilings the check reports the figures and passes on evidence
that they were measured; with ceilings, a service over one fails the check by name."""

from __future__ import annotations

from collections.abc import Sequence

from harness.observe.resources import ServiceUsage
from harness.spec.policy import ResourcePolicy
from harness.verdict.checks import CheckResult

NAME = "resource usage during load"


def judge_resources(usage: Sequence[ServiceUsage], policy: ResourcePolicy) -> CheckResult:
    measured = [u for u in usage if u.samples]
    if not measured:
        return CheckResult(
            name=NAME,
            category="resources",
            outcome="skipped",
            reasons=["no host PIDs to sample (containers)"],
        )
    failures: list[str] = []
    for u in measured:
        cpu, rss = u.cpu_percent_mean, u.rss_mb_max
        if policy.cpu_percent_max is not None and cpu is not None and cpu > policy.cpu_percent_max:
            failures.append(
                f"{u.service}: mean CPU {cpu:.0f}% over the policy's {policy.cpu_percent_max:g}%"
            )
        if policy.rss_mb_max is not None and rss is not None and rss > policy.rss_mb_max:
            failures.append(
                f"{u.service}: peak memory {rss:.0f} MB over the policy's {policy.rss_mb_max:g} MB"
            )
    busiest = sorted(measured, key=lambda u: u.cpu_percent_mean or 0.0, reverse=True)[:3]
    rss_total = sum(u.rss_mb_max or 0.0 for u in measured)
    ceilings = (
        f"; ceilings: CPU {policy.cpu_percent_max or 'none'}%, memory "
        f"{policy.rss_mb_max or 'none'} MB per service"
    )
    summary = (
        "busiest: "
        + ", ".join(f"{u.service} {u.cpu_percent_mean}% CPU" for u in busiest)
        + f"; peak memory of all services {rss_total:.0f} MB"
        + ceilings
    )
    return CheckResult(
        name=NAME,
        category="resources",
        outcome="fail" if failures else "pass",
        reasons=failures or [summary],
        measured={
            "rss_mb_total": round(rss_total, 1),
            "services": len(measured),
            "cpu_percent_max_service": max((u.cpu_percent_mean or 0.0) for u in measured),
            "rss_mb_max_service": max((u.rss_mb_max or 0.0) for u in measured),
        },
    )
