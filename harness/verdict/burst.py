"""What a traffic burst must show: refused over its key's budget, every refusal with Retry-After,
never more admitted in a minute than the budget, and the load's own key left alone."""

from __future__ import annotations

import heapq
from collections.abc import Sequence

from harness.faults.burst import BurstFigures
from harness.measure.summary import LoadSummary
from harness.verdict.checks import CheckResult


def burst_checks(
    title: str, fig: BurstFigures, per_minute: int, phases: dict[str, LoadSummary]
) -> list[CheckResult]:
    """The burst's checks, exact counts over its answers and the load's requests."""
    sent = f"{fig.sent} burst requests: {fig.admitted} admitted, {fig.refused} refused (429)"
    refused: list[str] = []
    if fig.refused == 0:
        refused.append(f"no 429 among {sent.split(':')[0]}, budget {per_minute}/minute")
    if fig.sent <= per_minute:
        refused.append(f"only {fig.sent} sent, not more than the budget {per_minute}/minute")
    if fig.other:
        refused.append(
            "unexpected statuses "
            + ", ".join(f"{s or 'no answer'} x{n}" for s, n in fig.other.items())
        )
    figures: dict[str, float | int | str | None] = {
        "sent": fig.sent,
        "admitted": fig.admitted,
        "refused": fig.refused,
        "budget_per_minute": per_minute,
    }
    checks = [
        CheckResult.from_reasons(
            f"{title}: burst refused over its budget", "chaos", refused, figures, sent
        )
    ]

    retry: list[str] = []
    if fig.retry_after_share is None:
        retry.append("no 429 to judge")
    elif fig.retry_after_share < 1:
        missing = fig.refused - round(fig.retry_after_share * fig.refused)
        retry.append(f"{missing} of {fig.refused} 429s without a Retry-After of whole seconds")
    given = fig.retry_after_s
    checks.append(
        CheckResult.from_reasons(
            f"{title}: every 429 carried Retry-After",
            "chaos",
            retry,
            {
                "refused": fig.refused,
                "retry_after_share": fig.retry_after_share,
                "retry_after_min_s": given[0] if given else None,
                "retry_after_max_s": given[1] if given else None,
            },
            f"{fig.refused} of {fig.refused} with Retry-After"
            + (f" ({given[0]}-{given[1]} s)" if given else ""),
        )
    )

    checks.append(budget_check(title, fig, per_minute))
    # Per-key limiting: the load's requests (another key) are not refused while the burst is.
    load_refused = {p: s.counts.by_status.get("429", 0) for p, s in phases.items()}
    n = sum(s.counts.total for s in phases.values())
    refused_load = [
        f"{k} of the load's requests meant for {p} were refused (429)"
        for p, k in load_refused.items()
        if k
    ]
    checks.append(
        CheckResult.from_reasons(
            f"{title}: the load's own key not refused",
            "chaos",
            refused_load,
            {"load_requests": n, "load_refused": sum(load_refused.values())},
            f"0 of {n} of the load's requests refused",
        )
    )
    return checks


def budget_check(title: str, fig: BurstFigures, per_minute: int) -> CheckResult:
    """At most the budget in any clock minute. The client knows each decision's time only
    within its round trip: a minute fails on the admissions it surely holds, and passes when the
    ones across its turns can be placed within the budget; otherwise it is undecided."""
    minutes = fig.per_minute_text()
    measured: dict[str, float | int | str | None] = {
        "most_admitted_per_minute": max(
            (n.surely for n in fig.admitted_per_minute.values()), default=0
        ),
        "budget_per_minute": per_minute,
        "most_admitted_in_60s": fig.most_admitted_in_60s,
        "admitted_per_minute": minutes,
    }
    over = [
        f"{n.surely} admitted in the minute from {m} UTC, budget {per_minute}"
        for m, n in fig.admitted_per_minute.items()
        if n.surely > per_minute
    ]
    summary = f"admitted per clock minute {minutes}; budget {per_minute}"
    if over:
        outcome, decision, reasons = "fail", "fail", over
    elif fits_budget(fig.admitted_spans, per_minute):
        outcome, decision, reasons = "pass", "pass", [summary]
    else:
        outcome, decision = "warn", "inconclusive"
        reasons = [
            f"{summary}: the admissions answered across a minute's turn cannot all be placed "
            "within it, nor shown over it (a decision's time is known only within its round "
            "trip): inconclusive"
        ]
    return CheckResult(
        name=f"{title}: admitted within the budget per minute",
        category="chaos",
        outcome=outcome,
        reasons=reasons,
        measured={**measured, "decision": decision},
    )


def fits_budget(spans: Sequence[tuple[int, int]], budget: int) -> bool:
    """Whether every admission can be given one minute of its span with no minute given more
    than `budget`: minute by minute, the spans that end soonest first (optimal for intervals)."""
    order = sorted(spans)
    waiting: list[int] = []  # the last minutes of the spans not yet placed
    i = 0
    minute = order[0][0] if order else 0
    while i < len(order) or waiting:
        if not waiting and order[i][0] > minute:
            minute = order[i][0]
        while i < len(order) and order[i][0] <= minute:
            heapq.heappush(waiting, order[i][1])
            i += 1
        for _ in range(min(budget, len(waiting))):
            heapq.heappop(waiting)
        if waiting and waiting[0] <= minute:
            return False
        minute += 1
    return True
