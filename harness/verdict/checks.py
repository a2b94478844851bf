"""The result of one gate check, and how results combine into the gate's outcome."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from harness.observe.logs import RequestEvidence

Outcome = Literal["pass", "warn", "fail", "error", "skipped"]

# Worst first: the gate's outcome is its worst check's.
_SEVERITY: dict[str, int] = {"error": 4, "fail": 3, "warn": 2, "pass": 1, "skipped": 0}


class CheckResult(BaseModel):
    """One check: what was measured against what, and every reason it did not pass."""

    model_config = ConfigDict(extra="ignore")  # stored output: lenient

    name: str
    category: str  # "stack", "security", "cache", "slo", "resilience", "monitoring", ...
    outcome: Outcome
    reasons: list[str] = Field(default_factory=list)
    measured: dict[str, float | int | str | None] = Field(default_factory=dict)
    duration_s: float = 0.0
    # Failed, degraded or fallback requests of the step this check judged, with their log lines.
    evidence: list[RequestEvidence] = Field(default_factory=list)

    @classmethod
    def from_reasons(
        cls,
        name: str,
        category: str,
        failures: list[str],
        measured: dict[str, float | int | str | None] | None = None,
        passed_note: str = "",
    ) -> CheckResult:
        return cls(
            name=name,
            category=category,
            outcome="fail" if failures else "pass",
            reasons=failures or ([passed_note] if passed_note else []),
            measured=measured or {},
        )


def overall_outcome(results: list[CheckResult]) -> Outcome:
    if not results:
        return "error"
    worst = max(results, key=lambda r: _SEVERITY[r.outcome])
    return "pass" if worst.outcome in ("pass", "skipped") else worst.outcome


def stack_check(startup_s: float) -> CheckResult:
    """A stack that came up passes: bringing it up waits until every target is scraped, and
    raises (the gate's error) when it cannot."""
    return CheckResult(
        name="stack starts and every target is scraped",
        category="stack",
        outcome="pass",
        reasons=[f"up in {startup_s:.1f} s"],
        measured={"startup_s": round(startup_s, 2)},
    )


def coverage_check(results: list[CheckResult], key_checks: tuple[str, ...]) -> CheckResult:
    """A gate in which nothing was judged, or a key check was skipped or missing, cannot pass."""
    judged = [r for r in results if r.outcome != "skipped" and r.category != "stack"]
    failures: list[str] = []
    if not judged:
        failures.append("nothing was judged: every check was skipped or disabled")
    for key in key_checks:
        mine = [r for r in results if key in (r.name, r.category)]
        if not mine:
            failures.append(f"key check {key!r} did not run")
        elif all(r.outcome == "skipped" for r in mine):
            why = "; ".join(dict.fromkeys(reason for r in mine for reason in r.reasons))
            failures.append(f"key check {key!r} was skipped" + (f": {why}" if why else ""))
    return CheckResult.from_reasons(
        "key checks ran",
        "verdict",
        failures,
        {"judged": len(judged), "key_checks": len(key_checks)},
        f"{len(judged)} checks judged; key checks: {', '.join(key_checks) or 'none'}",
    )


def disabled(name: str, category: str) -> CheckResult:
    """A check the gate profile turned off: skipped, and said so."""
    return CheckResult(
        name=name, category=category, outcome="skipped", reasons=["disabled in the gate profile"]
    )


def unmet(name: str, category: str, why: str) -> CheckResult:
    """A check whose requirement the stack lacks: skipped with the reason, never passed (the
    profile's key checks decide whether that stops the gate from passing)."""
    return CheckResult(
        name=name,
        category=category,
        outcome="skipped",
        reasons=[f"cannot run on this stack: {why}"],
    )
