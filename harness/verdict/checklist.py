"""The deployment checklist of PRACTICES.md (section 9), item by item: which of a run's checks
prove it, and whether they passed. Items a gate cannot prove (how a release is rolled out, what
happens after it) are listed as outside the gate rather than left out, so the table is complete;
blue-green and the canary are proven by a rollout's checks (`harness rollout`, or a gate profile's
rollout step).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from harness.verdict.checks import CheckResult

Status = Literal["proven", "warning", "failed", "not checked", "outside the gate"]


@dataclass(frozen=True)
class Item:
    stage: str
    text: str
    proves: Callable[[CheckResult], bool] | None  # None: not something a gate run can prove
    # What the item needs beyond any one check (None: nothing); returns what is missing.
    missing: Callable[[Sequence[CheckResult]], str | None] | None = None


def _category(*names: str) -> Callable[[CheckResult], bool]:
    return lambda c: c.category in names


def _latency(c: CheckResult) -> bool:
    return c.category == "slo" and "error_rate" not in c.name


def _percentiles_judged(checks: Sequence[CheckResult]) -> str | None:
    """p50, p95 and p99 must each be judged by a latency SLO that ran."""
    names = [c.name for c in checks if _latency(c) and c.outcome != "skipped"]
    absent = [p for p in ("p50", "p95", "p99") if not any(f"_{p}_" in n for n in names)]
    return f"no latency SLO on {', '.join(absent)}" if absent else None


def _error_rates(c: CheckResult) -> bool:
    return "error_rate" in c.name or (c.category == "alerts" and "HighErrorRate" in c.name)


def _blue_green(c: CheckResult) -> bool:
    return c.category == "rollout" and (
        c.name.startswith("blue-green") or "(green)" in c.name or "(blue)" in c.name
    )


def _canary(c: CheckResult) -> bool:
    return c.category == "rollout" and c.name.startswith(("canary:", "step to", "rollback"))


def _baseline_compared(c: CheckResult) -> bool:
    return c.category == "regression" or (c.category == "rollout" and c.name.startswith("canary:"))


CHECKLIST: tuple[Item, ...] = (
    Item("pre-deployment", "Load testing (expected QPS)", _category("load")),
    Item("pre-deployment", "Benchmark latency (p50, p95, p99)", _latency, _percentiles_judged),
    Item("pre-deployment", "Measure resource usage (GPU, RAM, CPU)", _category("resources")),
    Item("pre-deployment", "Test error handling", _category("chaos", "resilience", "rate-limit")),
    Item("pre-deployment", "Validate monitoring/alerts", _category("monitoring", "alerts")),
    Item(
        "pre-deployment", "Security audit (input validation, authentication)", _category("security")
    ),
    # Proven by a rollout (blue_green / canary): `harness rollout`, or a gate's rollout step.
    Item("deployment", "Blue-green deployment (zero downtime)", _blue_green),
    Item("deployment", "Gradual rollout (canary 5% -> 50% -> 100%)", _canary),
    Item("deployment", "Monitor error rates", _error_rates),
    Item("deployment", "Compare latency to baseline", _baseline_compared),
    Item("post-deployment", "User feedback collection", None),
    Item("post-deployment", "A/B test new model versions", None),
    Item("post-deployment", "Cost tracking", _category("cost")),
    Item("post-deployment", "Incident postmortems", None),
)


class ChecklistRow(BaseModel):
    stage: str
    item: str
    status: Status
    checks: list[str]  # names of the checks that bear on it, skipped ones included
    note: str = ""  # why an item with passing checks is still not proven

    def proven_by(self) -> str:
        """The check names for a person: an experiment's checks ("title: expectation") become
        one "title (N checks)"."""
        groups: dict[str, list[str]] = {}
        for name in self.checks:
            groups.setdefault(name.split(": ", 1)[0] if ": " in name else name, []).append(name)
        text = ", ".join(
            names[0] if len(names) == 1 else f"{key} ({len(names)} checks)"
            for key, names in groups.items()
        )
        return f"{text} ({self.note})" if self.note else text


def checklist(checks: Sequence[CheckResult]) -> list[ChecklistRow]:
    rows = []
    for item in CHECKLIST:
        if item.proves is None:
            rows.append(
                ChecklistRow(stage=item.stage, item=item.text, status="outside the gate", checks=[])
            )
            continue
        mine = [c for c in checks if item.proves(c)]
        ran = [c for c in mine if c.outcome != "skipped"]
        status: Status
        gap = item.missing(ran) if item.missing and ran else None
        if any(c.outcome in ("fail", "error") for c in ran):
            status = "failed"
        elif any(c.outcome == "warn" for c in ran):
            status = "warning"
        elif ran and gap is None:
            status = "proven"
        else:
            status = "not checked"
        rows.append(
            ChecklistRow(
                stage=item.stage,
                item=item.text,
                status=status,
                checks=[c.name for c in mine],
                note=gap or "",
            )
        )
    return rows
