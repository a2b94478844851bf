"""The gate's load step: one measured run against the stack's front door, judged by the SLOs."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.load.execute import measure_load
from harness.load.target import from_endpoints
from harness.spec.gate import GateSpec
from harness.stack import RunningStack
from harness.verdict.checks import CheckResult


def run_gate_load(
    gate: GateSpec, stack: RunningStack, run_dir: Path, progress: Callable[[str], None]
) -> tuple[list[CheckResult], dict[str, Any]]:
    """Run the profile's load with the gate's SLOs; one check for validity, one per SLO."""
    assert gate.load is not None
    slos = tuple(dict.fromkeys((*gate.load.slos, *gate.slos)))  # keep order, drop repeats
    spec = gate.load.model_copy(update={"slos": slos})
    report = measure_load(spec, from_endpoints(stack.endpoints), run_dir, progress)
    summary = report.summary
    checks: list[CheckResult] = []

    validity = summary.validity
    gen = summary.generator
    measured: dict[str, float | int | str | None] = {
        "requests": summary.counts.total,
        "offered_rate_rps": gen.offered_rate_rps,
        "achieved_rate_rps": gen.achieved_rate_rps,
        "send_lag_p99_ms": gen.send_lag_ms.p99 if gen.send_lag_ms else None,
    }
    if validity.valid:
        checks.append(CheckResult(
            name="load generator kept its schedule", category="load", outcome="pass",
            reasons=[f"{summary.counts.total} requests, {gen.achieved_rate_rps} req/s achieved "
                     f"of {gen.offered_rate_rps} offered", *validity.warnings],
            measured=measured,
        ))  # fmt: skip
    else:
        checks.append(CheckResult(
            name="load generator kept its schedule", category="load",
            outcome="fail" if gate.invalid_load_is == "fail" else "warn",
            reasons=["the run is invalid, its latencies cannot be trusted", *validity.reasons],
            measured=measured,
        ))  # fmt: skip
    for slo in summary.slo_checks:
        checks.append(CheckResult(
            name=f"SLO {slo.expr}", category="slo", outcome="pass" if slo.passed else "fail",
            reasons=[slo.reason], measured={"observed": slo.observed},
        ))  # fmt: skip
    progress("load checks:")
    for c in checks:
        progress(f"  {c.outcome.upper():5} {c.name}: {'; '.join(c.reasons)}")
    return checks, report.model_dump(mode="json")
