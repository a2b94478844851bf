"""The load step's checks: the SLOs and the policy's shares judged on every look's samples
together, whether the generator kept its schedule, and whether the stack kept up with it. The
gate's load step (`harness/gate/load_step.py`) runs the looks and asks these for the verdicts."""

from __future__ import annotations

from harness.data.samples import Sample
from harness.load.report import LoadReport
from harness.load.report import Outcome as LoadOutcome
from harness.measure.summary import LoadSummary
from harness.spec.gate import GateSpec
from harness.spec.slo import DEFAULT_CHECKS, Slo, parse_slo
from harness.verdict.checks import CheckResult, Outcome
from harness.verdict.load_run import judge_kept_up, kept_up_unjudged
from harness.verdict.slo import SloJudgement, judge_share, judge_slo

PRIMARY = "served by the primary pool"
# The default check's threshold for achieved / sent.
KEPT_UP = next(expr for expr, _ in DEFAULT_CHECKS if expr.startswith("achieved_ratio"))


def judge_all(
    gate: GateSpec,
    slos: list[Slo],
    samples: list[Sample],
    summary: LoadSummary,
    alpha: float,
    served_by: bool = True,
) -> dict[str, SloJudgement]:
    """Every aggregate SLO and the policy's shares (the primary pool's, and goodput when SLOs
    are per request) judged on the pooled samples at this look's error rate `alpha`."""
    out: dict[str, SloJudgement] = {}
    for slo in slos:
        if slo.scope == "aggregate":
            out[f"SLO {slo.expr}"] = judge_slo(slo, samples, summary, alpha)
    # The policy's shares, judged as any share SLO is.
    policy = gate.policy
    shares = {PRIMARY: f"primary_share>={policy.min_primary_share:g}"} if served_by else {}
    per_request = [s.expr for s in slos if s.scope == "request"]
    if per_request:
        shares = {
            "goodput: " + ", ".join(per_request): f"goodput>={policy.min_goodput:g}",
            **shares,
        }
    for name, expr in shares.items():
        judged = judge_share(parse_slo(expr), summary, alpha)
        assert judged is not None  # goodput and primary_share are proportions
        out[name] = judged
    return out


def warn_only(name: str, gate: GateSpec, written: dict[str, str]) -> bool:
    """Is this SLO (a check name, "SLO <absolute expr>") one the profile lets only warn?"""
    expr = name.removeprefix("SLO ")
    return written.get(expr, expr).replace(" ", "") in gate.confidence.warn_only


def slo_check(
    name: str, j: SloJudgement, gate: GateSpec, looks: int, written: dict[str, str]
) -> CheckResult:
    outcome: Outcome
    expr = name.removeprefix("SLO ")
    reasons = [j.reason]
    if written.get(expr, expr) != expr:  # relative to the calibration
        name = f"SLO {written[expr]}"
        reasons.append(f"{written[expr]} of the calibration is {expr}")
    if j.decision == "inconclusive":
        outcome = "warn" if warn_only(name, gate, written) else gate.confidence.inconclusive_is
        reasons.append(
            f"inconclusive after {looks} look(s) ({j.n} samples)"
            + (f"; about {j.samples_needed} would decide" if j.samples_needed else "")
        )
    else:
        outcome = j.decision
    category = "slo" if name.startswith(("SLO ", "goodput")) else "load"
    return CheckResult(
        name=name,
        category=category,
        outcome=outcome,
        reasons=reasons,
        measured={
            "decision": j.decision,
            "n": j.n,
            "estimate": j.estimate,
            "lower": j.lower,
            "upper": j.upper,
            "looks": looks,
        },
    )


def validity_check(gate: GateSpec, reports: list[LoadReport], pooled: LoadSummary) -> CheckResult:
    """Every look's generator kept its schedule; the rates said are the pooled summary's (all
    looks' schedule windows end to end), the figures the load table shows."""
    total = sum(r.summary.counts.total for r in reports)
    gen = pooled.generator
    measured: dict[str, float | int | str | None] = {
        "requests": total,
        "looks": len(reports),
        "offered_rate_rps": gen.offered_rate_rps,
        "sent_rate_rps": gen.sent_rate_rps,
        "achieved_rate_rps": gen.achieved_rate_rps,
        "send_lag_p99_ms": max(
            (
                p99
                for r in reports
                if (lag := r.summary.generator.send_lag_ms) and (p99 := lag.p99) is not None
            ),
            default=None,
        ),
    }
    invalid = [
        (i, r.summary.validity) for i, r in enumerate(reports, 1) if not r.summary.validity.valid
    ]
    if not invalid:
        warnings = [w for r in reports for w in r.summary.validity.warnings]
        offered = f" of {gen.offered_rate_rps:.2f} offered" if gen.offered_rate_rps else ""
        return CheckResult(
            name="load generator kept its schedule",
            category="load",
            outcome="pass",
            reasons=[
                f"{total} requests in {len(reports)} look(s), {gen.sent_rate_rps:.2f} req/s "
                f"sent{offered} over the {pooled.window.duration_s:g} s schedule window",
                *warnings,
            ],
            measured=measured,
        )
    return CheckResult(
        name="load generator kept its schedule",
        category="load",
        outcome="fail" if gate.invalid_load_is == "fail" else "warn",
        reasons=[
            "the run is invalid, its latencies cannot be trusted",
            *(f"look {i}: {reason}" for i, v in invalid for reason in v.reasons),
        ],
        measured=measured,
    )


def kept_up_check(summary: LoadSummary) -> CheckResult:
    """The stack answered what was sent within the schedule (achieved against sent over all looks
    on one clock, the default check's threshold): a stack that falls behind builds a backlog that
    the drain after the schedule shows."""
    name = "stack kept up with the offered rate"
    unjudged = kept_up_unjudged(summary)
    if unjudged is not None:
        return CheckResult(name=name, category="load", outcome="skipped", reasons=[unjudged])
    j = judge_kept_up(parse_slo(KEPT_UP), summary)
    outcome: Outcome = "pass" if j.decision == "pass" else "fail"
    g = summary.generator
    return CheckResult(
        name=name,
        category="load",
        outcome=outcome,
        reasons=[j.reason],
        measured={
            "achieved_ratio": j.estimate,
            "achieved_rate_rps": g.achieved_rate_rps,
            "sent_rate_rps": g.sent_rate_rps,
        },
    )


def load_outcome(reports: list[LoadReport], checks: list[CheckResult]) -> LoadOutcome:
    """The gate's load step as one load outcome (its pooled report's): invalid when a look was,
    failed when one of its checks failed, else passed (a check the profile lets only warn, or
    whose inconclusive end it lets warn, has not failed the gate)."""
    if any(not r.summary.validity.valid for r in reports):
        return "invalid"
    return "failed" if any(c.outcome == "fail" for c in checks) else "passed"
