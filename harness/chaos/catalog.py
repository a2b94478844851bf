"""`harness chaos list`: each experiment file with its title, fault and expectations."""

from __future__ import annotations

from pathlib import Path

from harness.paths import PROJECT_ROOT
from harness.spec.experiment import ExperimentSpec

DEFAULT_DIR = PROJECT_ROOT / "chaos"


def experiment_files(paths: list[Path]) -> list[Path]:
    """The files named, and the *.yaml files of the folders named (default: chaos/)."""
    out: list[Path] = []
    for p in paths or [DEFAULT_DIR]:
        out += sorted(p.glob("*.yaml")) if p.is_dir() else [p]
    return out


def fault_line(exp: ExperimentSpec) -> str:
    fault = exp.fault
    params = ", ".join(
        f"{k}={v}"
        for k, v in fault.model_dump(mode="json").items()
        if k not in ("kind", "targets") and v is not None
    )
    return (
        f"{fault.kind} on {', '.join(fault.targets)}"
        + (f" ({params})" if params else "")
        + f", from {exp.fault_at_s:g}s for {exp.fault_for_s:g}s"
    )


def describe(path: Path, exp: ExperimentSpec) -> list[str]:
    lines = [f"{path.name}: {exp.title}", f"  fault:  {fault_line(exp)}"]
    load = exp.load
    lines.append(f"  load:   {load.name}, {load.duration_s:g}s")
    for phase in ("before", "during", "after"):
        exprs = getattr(exp.expect, phase)
        if exprs:
            lines.append(f"  {phase + ':':7} {', '.join(exprs)}")
    for a in exp.expect.alerts:
        resolves = (
            f", resolves within {a.resolves_within_s:g}s of its end"
            if a.resolves_within_s is not None
            else ""
        )
        lines.append(
            f"  alert:  {a.alert} fires within {a.fires_within_s:g}s of the fault's start{resolves}"
        )
    if (within := exp.expect.recovers_within_s) is not None:
        lines.append(f"  recovery: back to the steady state within {within:g}s of the fault's end")
    if (lost := exp.expect.max_goodput_lost) is not None:
        lines.append(f"  goodput: at most {lost:.0%} lost during and after the fault")
    if exp.live_rules is not None:
        lines.append(
            f"  rules:  live copies, {exp.live_rules.window} windows, held {exp.live_rules.hold}"
        )
    if exp.stack_overrides:
        lines.append(f"  stack:  overrides {exp.stack_overrides}")
    return lines
