"""A chaos experiment's checks: each phase's expectations on the requests meant for it, the
experiment's own load keeping its schedule, no stream cut off silently, the alerts expected
notified (firing, resolved) and pending seen so in time. The runner (`harness/chaos/runner.py`)
measures; these judge what it measured."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from harness.measure.fates import FateTable
from harness.measure.recovery import Recovery
from harness.measure.summary import LoadSummary, RunContext
from harness.observe.alert_states import AlertStates
from harness.spec.experiment import ExperimentSpec
from harness.spec.slo import parse_slo
from harness.verdict.checks import CheckResult, Outcome
from harness.verdict.slo import judge_estimate, judge_share
from harness.verdict.validity import judge_validity

# Fewer requests than this meant for a phase prove nothing about it.
MIN_PHASE_REQUESTS = 5
# Phase expectations are one look each: a share is judged at this one-sided error rate.
PHASE_ALPHA = 0.05


def phase_checks(exp: ExperimentSpec, summaries: dict[str, LoadSummary]) -> list[CheckResult]:
    """Each phase's expectations on its own requests: shares and error rates with binomial
    bounds (a phase too short to decide warns with how many requests would), other figures on
    the estimate; a phase with too few requests fails."""
    checks = []
    for phase, exprs in (
        ("before", exp.expect.before),
        ("during", exp.expect.during),
        ("after", exp.expect.after),
    ):
        summary = summaries.get(phase)
        n = summary.counts.total if summary is not None else 0
        for expr in exprs:
            name = phase_check_name(exp, phase, expr)
            if summary is None or n < MIN_PHASE_REQUESTS:
                checks.append(
                    CheckResult(
                        name=name,
                        category="chaos",
                        outcome="fail",
                        reasons=[
                            f"{n} requests meant for this phase, at least {MIN_PHASE_REQUESTS} "
                            "are needed to judge it"
                        ],
                        measured={"requests": n},
                    )
                )
                continue
            slo = parse_slo(expr)
            judged = judge_share(slo, summary, PHASE_ALPHA)
            if judged is None:
                # Not a share: judged on the estimate; one not measured fails the phase.
                est = judge_estimate(slo, summary)
                passed = est.decision == "pass"
                checks.append(
                    CheckResult(
                        name=name,
                        category="chaos",
                        outcome="pass" if passed else "fail",
                        reasons=[f"{est.reason} ({n} requests meant for this phase)"],
                        measured={"observed": est.estimate, "requests": n},
                    )
                )
                continue
            reasons = [f"{judged.reason} ({n} requests meant for this phase)"]
            if judged.decision == "inconclusive":
                reasons.append(
                    "too few requests to decide at 95% confidence"
                    + (f"; about {judged.samples_needed} would" if judged.samples_needed else "")
                )
            checks.append(
                CheckResult(
                    name=name,
                    category="chaos",
                    outcome="warn" if judged.decision == "inconclusive" else judged.decision,
                    reasons=reasons,
                    measured={
                        "observed": judged.estimate,
                        "requests": n,
                        "lower": judged.lower,
                        "upper": judged.upper,
                        "decision": judged.decision,
                    },
                )
            )
    return checks


def load_check(exp: ExperimentSpec, summary: LoadSummary, ctx: RunContext) -> CheckResult:
    """An experiment whose own load fell behind its schedule measured the client, not the stack."""
    v = summary.validity = judge_validity(summary, ctx)
    return CheckResult(
        name=f"{exp.title}: load kept its schedule",
        category="chaos",
        outcome="pass" if v.valid else "fail",
        reasons=[f"{summary.counts.total} requests as scheduled", *v.warnings]
        if v.valid
        else ["the experiment's load is invalid, its phases cannot be trusted", *v.reasons],
        measured={"requests": summary.counts.total},
    )


def pending_checks(exp: ExperimentSpec, states: AlertStates, since: float) -> list[CheckResult]:
    """Each alert expected pending: Prometheus showed it pending within the time allowed after
    the fault started, and not only after it fired."""
    out = []
    for want in exp.expect.alerts:
        if want.pending_within_s is None:
            continue
        name = f"{exp.title}: alert {want.alert} pending"
        pending = states.first(want.alert, "pending", since)
        firing = states.first(want.alert, "firing", since)
        ok = (
            pending is not None
            and since <= pending <= since + want.pending_within_s
            and (firing is None or pending <= firing)
        )
        if ok:
            assert pending is not None
            reason = f"pending {pending - since:.1f}s after the fault started" + (
                f", firing {firing - since:.1f}s after" if firing is not None else ""
            )
            measured = {"alert": want.alert, "pending_after_s": round(pending - since, 1)}
            out.append(
                CheckResult(
                    name=name,
                    category="alerts",
                    outcome="pass",
                    reasons=[reason],
                    measured=measured,
                )
            )
        else:
            seen = (
                "never seen pending"
                if pending is None
                else (f"first seen pending {pending - since:.1f}s after the fault started")
            )
            out.append(
                CheckResult(
                    name=name,
                    category="alerts",
                    outcome="fail",
                    reasons=[
                        f"{seen}; want pending within {want.pending_within_s:g}s, before firing "
                        f"({states.errors} failed polls of Prometheus)"
                    ],
                )
            )
    return out


@dataclass(frozen=True)
class AlertNotified:
    """When Alertmanager first notified an expected alert: seconds from the fault's start to
    "firing", and from its end to "resolved" (None: no such notification came while the runner
    waited, or resolution was not expected)."""

    firing_after_s: float | None
    resolved_after_s: float | None = None


def _notified_check(
    name: str, alert: str, status: str, within_s: float, after_s: float | None
) -> CheckResult:
    event = "started" if status == "firing" else "ended"
    if after_s is None or after_s > within_s:
        return CheckResult(
            name=name,
            category="alerts",
            outcome="fail",
            reasons=[f"no {status} notification within {within_s:g}s after the fault {event}"],
        )
    return CheckResult(
        name=name,
        category="alerts",
        outcome="pass",
        reasons=[f"{status} notification {after_s:.1f}s after the fault {event}"],
        measured={"alert": alert, f"{status}_after_s": round(after_s, 1)},
    )


def alert_checks(
    exp: ExperimentSpec, notified: Sequence[AlertNotified] | None
) -> list[CheckResult]:
    """Each expected alert notified firing within its time after the fault started, and resolved
    within its time after the fault ended where that is expected. `notified`: one per expected
    alert, in their order (None: the stack has no alert receiver, so none could be seen)."""
    if notified is None:
        return [
            CheckResult(
                name=f"{exp.title}: alert {want.alert}",
                category="alerts",
                outcome="error",
                reasons=["no alert receiver"],
            )
            for want in exp.expect.alerts
        ]
    checks = []
    for want, seen in zip(exp.expect.alerts, notified, strict=True):
        checks.append(
            _notified_check(
                f"{exp.title}: alert {want.alert} fires",
                want.alert,
                "firing",
                want.fires_within_s,
                seen.firing_after_s,
            )
        )
        if want.resolves_within_s is not None:
            checks.append(
                _notified_check(
                    f"{exp.title}: alert {want.alert} resolves",
                    want.alert,
                    "resolved",
                    want.resolves_within_s,
                    seen.resolved_after_s,
                )
            )
    return checks


def phase_check_name(exp: ExperimentSpec, phase: str, expr: str) -> str:
    return f"{exp.title}: {phase} the fault, {expr}"


# Checks of an experiment that read every request of its load, whatever its phase.
_WHOLE_LOAD = (
    "load kept its schedule",
    "no stream cut off silently",
    "the load's own key not refused",
)


def phase_readers(exp: ExperimentSpec, checks: list[CheckResult]) -> dict[str, list[str]]:
    """Per phase, the names of the checks (of `checks`) that read its requests: its own
    expectations, then those of the whole load."""
    present = {c.name for c in checks}
    wanted = {"before": exp.expect.before, "during": exp.expect.during, "after": exp.expect.after}
    out = {}
    for phase, exprs in wanted.items():
        names = [phase_check_name(exp, phase, e) for e in exprs]
        names += [f"{exp.title}: {w}" for w in _WHOLE_LOAD]
        out[phase] = [n for n in dict.fromkeys(names) if n in present]
    return out


def silent_truncation_checks(exp: ExperimentSpec, fates: FateTable) -> list[CheckResult]:
    """A stream that ended without a finish reason or [DONE] is a failure its client cannot see:
    any one fails (a count, nothing to sample). On by default; an experiment may opt out."""
    if not exp.expect.no_silent_truncation:
        return []
    every = fates.group("all")
    cut = every.counts.get("cut_silently", 0)
    name = f"{exp.title}: no stream cut off silently"
    measured: dict[str, float | int | str | None] = {
        "silent_truncations": cut,
        "requests": every.requests,
    }
    reason = f"{cut} of {every.requests} requests cut off silently"
    if cut:
        ids = ", ".join(every.ids.get("cut_silently", []))
        reason += (
            " (the stream ended cleanly with no finish reason, [DONE] or error event: a client "
            f"counts it a success), e.g. {ids}"
        )
    outcome: Outcome = "fail" if cut else "pass"
    return [
        CheckResult(
            name=name, category="chaos", outcome=outcome, reasons=[reason], measured=measured
        )
    ]


def _recovery_check(exp: ExperimentSpec, figures: Recovery | None, within_s: float) -> CheckResult:
    name = f"{exp.title}: recovers within {within_s:g}s"
    want = f"want back within the steady state within {within_s:g}s of the fault's end"
    if figures is None or figures.recover_s is None:
        # Censored or unmeasured: a recovery nobody saw never passes.
        why = figures.reason if figures is not None else "no recovery figures"
        return CheckResult(name=name, category="chaos", outcome="fail", reasons=[f"{why}; {want}"])
    got = figures.recover_s
    upper = figures.recovered_miss_rate_upper
    bound = "" if upper is None else f", miss rate <= {upper:.0%} at 95%"
    return CheckResult(
        name=name,
        category="chaos",
        outcome="pass" if got <= within_s else "fail",
        reasons=[
            f"back within the steady state {got:.1f}s after the fault ended "
            f"({figures.recovered_requests} requests from then, {figures.recovered_misses} "
            f"missing{bound}); {want}"
        ],
        measured={
            "recover_s": round(got, 2),
            "requests": figures.recovered_requests,
            "miss_rate_upper": upper,
        },
    )


def _goodput_check(exp: ExperimentSpec, figures: Recovery | None, most: float) -> CheckResult:
    name = f"{exp.title}: goodput lost <= {most:g}"
    want = f"want at most {most:.0%} of the requests during and after the fault lost"
    if figures is None or figures.goodput_lost is None or figures.goodput_lost_share is None:
        why = figures.reason if figures is not None else "no recovery figures"
        if figures is not None and figures.goodput_lost is not None:
            why = "no requests during or after the fault"
        return CheckResult(name=name, category="chaos", outcome="fail", reasons=[f"{why}; {want}"])
    share, n = figures.goodput_lost_share, figures.affected_requests
    return CheckResult(
        name=name,
        category="chaos",
        outcome="pass" if share <= most else "fail",
        reasons=[
            f"{figures.goodput_lost:.1f} of {n} requests lost ({share:.0%}): "
            f"{figures.affected_misses} missed the steady state, "
            f"{figures.expected_misses or 0:.1f} expected; {want}"
        ],
        measured={
            "goodput_lost": round(figures.goodput_lost, 2),
            "goodput_lost_share": round(share, 4),
            "requests": n,
        },
    )


def recovery_checks(exp: ExperimentSpec, figures: Recovery | None) -> list[CheckResult]:
    """The recovery an experiment expects: back within its steady state in time (a censored
    recovery fails, saying how long was observed), and no more good traffic lost than allowed.
    A figure that could not be measured fails: it never passes."""
    checks = []
    if exp.expect.recovers_within_s is not None:
        checks.append(_recovery_check(exp, figures, exp.expect.recovers_within_s))
    if exp.expect.max_goodput_lost is not None:
        checks.append(_goodput_check(exp, figures, exp.expect.max_goodput_lost))
    return checks


def key_expectations_decided(
    checks: Sequence[CheckResult], key_checks: Sequence[str]
) -> list[CheckResult]:
    """In a gate, an experiment's expectation the profile names key must end pass or fail: one
    left inconclusive (too few requests in its phase to decide) has not passed, so it fails with
    the sample it would have needed. Expectations not named key may stay warnings."""
    key = set(key_checks)
    out = []
    for c in checks:
        if c.name in key and c.category == "chaos" and c.measured.get("decision") == "inconclusive":
            c = c.model_copy(
                update={
                    "outcome": "fail",
                    "reasons": [
                        *c.reasons,
                        "a key expectation of the gate profile left inconclusive has not passed",
                    ],
                }
            )
        out.append(c)
    return out
