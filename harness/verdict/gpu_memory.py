"""Judging GPUMemoryHigh on real data (`harness gpu-check` on a GPU machine): the deployed rule,
evaluated by a real Prometheus on what the NVML exporter reads from the card, stays quiet while
the card is below the threshold, fires once a process has filled the card above it, and resolves
once the memory is freed (`harness/chaos/gpu_memory.py` measures)."""

from __future__ import annotations

from dataclasses import dataclass

from harness.verdict.checks import CheckResult

NAME, CATEGORY = "GPUMemoryHigh fires on real GPU memory", "monitoring"


@dataclass(frozen=True)
class GpuAlertEvidence:
    threshold: float  # the deployed rule's share of the card
    hold: str  # the rule's `for`, as loaded for the check
    gpus: int  # cards the exporter served figures for
    # The fullest card's share in use before the fill (None: Prometheus had no figure for it),
    # and the alert's state then ("inactive", "pending" or "firing").
    idle_ratio: float | None
    idle_state: str
    # The share the filled card reached in Prometheus (None: no figure) and what filled it.
    filled_ratio: float | None
    filler: str
    # Seconds from the figure crossing the threshold to the alert firing (None: not within
    # fire_within_s), and from the memory freed to the alert gone (None: not within bound).
    fired_after_s: float | None
    fire_within_s: float
    resolved_after_s: float | None
    resolve_within_s: float


def _pct(share: float) -> str:
    return f"{share * 100:.1f}%"


def judge_gpu_memory_alert(ev: GpuAlertEvidence) -> CheckResult:
    failures: list[str] = []
    if ev.idle_ratio is None:
        failures.append(
            "Prometheus got no llm_gpu_memory_used / llm_gpu_memory_total from the NVML "
            "exporter: the rule has nothing to read"
        )
    elif ev.idle_ratio >= ev.threshold:
        failures.append(
            f"the card was {_pct(ev.idle_ratio)} full before the fill, at or above the "
            f"threshold ({_pct(ev.threshold)}): a firing alert would prove nothing; free the card"
        )
    elif ev.idle_state == "firing":
        failures.append(
            f"GPUMemoryHigh fired with the card {_pct(ev.idle_ratio)} full, below its threshold"
        )
    if ev.idle_ratio is not None:
        if ev.filled_ratio is None or ev.filled_ratio <= ev.threshold:
            reached = "no figure" if ev.filled_ratio is None else _pct(ev.filled_ratio)
            failures.append(
                f"the fill ({ev.filler}) reached {reached} of the card in Prometheus, not above "
                f"the threshold ({_pct(ev.threshold)})"
            )
        elif ev.fired_after_s is None:
            failures.append(
                f"GPUMemoryHigh did not fire within {ev.fire_within_s:g} s of the card at "
                f"{_pct(ev.filled_ratio)} (threshold {_pct(ev.threshold)}, for {ev.hold})"
            )
        elif ev.resolved_after_s is None:
            failures.append(
                f"GPUMemoryHigh still fired {ev.resolve_within_s:g} s after the memory was freed"
            )
    measured: dict[str, float | int | str | None] = {
        "threshold": ev.threshold,
        "hold": ev.hold,
        "gpus": ev.gpus,
        "idle_ratio": ev.idle_ratio,
        "idle_state": ev.idle_state,
        "filled_ratio": ev.filled_ratio,
        "filler": ev.filler,
        "fired_after_s": ev.fired_after_s,
        "resolved_after_s": ev.resolved_after_s,
    }
    note = ""
    if not failures and ev.filled_ratio is not None and ev.idle_ratio is not None:
        note = (
            f"quiet at {_pct(ev.idle_ratio)} of the card; fired {ev.fired_after_s:.1f} s after "
            f"the fill ({ev.filler}) reached {_pct(ev.filled_ratio)} (threshold "
            f"{_pct(ev.threshold)}, for {ev.hold}); resolved {ev.resolved_after_s:.1f} s after "
            "the memory was freed"
        )
    return CheckResult.from_reasons(NAME, CATEGORY, failures, measured, note)
