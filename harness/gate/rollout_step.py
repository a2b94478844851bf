"""A rollout as the gate's last step (`rollout: {profile: FILE}` in a gate profile).

The gate's stack is the candidate; the running version is the one `harness gate --baseline`
names. The gate's own stack is stopped first: the rollout brings both versions up fresh, side by
side, so neither carries state the other lacks (a warm cache, a breaker the probes opened, a key
budget the rate-limit probe spent) into a comparison of the two. Its checks, journal and samples
go into the gate's report and count for its verdict like any other step's.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from harness.errors import is_stack_side
from harness.events import CheckDecided, EventBus, StepStarted
from harness.measure.sample_file import SAMPLE_FILE, write_sample_file
from harness.report.model import RunReport
from harness.rollout.run import run_rollout
from harness.spec.rollout import RolloutSpec
from harness.spec.stack import StackSpec
from harness.verdict.checks import CheckResult

# The rollout's run folder inside the gate's (its stacks, split front, load and samples).
ROLLOUT_DIR = "rollout"


@dataclass(frozen=True)
class RolloutPlan:
    """A gate's rollout step, its inputs checked (`gate/prepare.py`)."""

    spec: RolloutSpec
    baseline: StackSpec
    candidate: StackSpec
    source: Path  # the rollout profile


def run_rollout_step(
    plan: RolloutPlan,
    report: RunReport,
    out_dir: Path,
    bus: EventBus,
    provider: str | None = None,
    allow_remote: bool = False,
) -> None:
    """Roll out the candidate from the baseline, unless a check of the gate already failed (a
    rejected candidate takes no traffic). Interrupted: traffic is back on the baseline and both
    versions stopped (`run_rollout`), the checks so far kept, and the interruption raised again."""
    title = f"rollout ({plan.spec.strategy})"
    bus.emit(StepStarted(title))

    def add(check: CheckResult) -> None:
        report.checks.append(check)
        bus.emit(CheckDecided(check))

    failed = [c.name for c in report.checks if c.outcome in ("fail", "error")]
    if failed:
        more = f" and {len(failed) - 3} more" if len(failed) > 3 else ""
        why = f"not started: the candidate already failed {', '.join(failed[:3])}{more}"
        add(CheckResult(name=title, category="rollout", outcome="skipped", reasons=[why]))
        return
    bus.note(f"rollout from the baseline ({plan.baseline.name}) to the candidate ({plan.source})")
    try:
        result = run_rollout(
            plan.spec,
            plan.baseline,
            plan.candidate,
            out_dir / ROLLOUT_DIR,
            provider=provider,
            progress=bus.note,
            allow_remote=allow_remote,
        )
    except Exception as exc:  # a version that would not start is evidence, as in experiments
        if not is_stack_side(exc):
            raise
        add(
            CheckResult(
                name=title,
                category="rollout",
                outcome="error",
                reasons=[f"{type(exc).__name__}: {exc}"],
            )
        )
        return
    report.rollout = result.journal
    for check in result.checks:
        add(check)
    if result.samples:
        write_sample_file(out_dir / ROLLOUT_DIR / SAMPLE_FILE, result.samples)
    if result.interrupted:
        raise KeyboardInterrupt
