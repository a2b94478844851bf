"""The journal of one chaos experiment as the report keeps it: the experiment as written, when
the fault began and ended, each phase's summary, the fate of its requests per phase, the
per-second outcomes with the alert notifications, and the checks. Stored output: lenient, so
older reports still load."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from harness.measure.fates import FateTable
from harness.measure.recovery import Recovery
from harness.measure.summary import LoadSummary
from harness.verdict.checks import CheckResult

_LENIENT = ConfigDict(extra="ignore")


class AlertMark(BaseModel):
    """An alert notification on the experiment's clock (seconds since its load started)."""

    model_config = _LENIENT
    alert: str | None = None
    status: str
    t_s: float


class Timeline(BaseModel):
    model_config = _LENIENT
    fault_s: list[float] = Field(default_factory=list)  # [start, end]
    alerts: list[AlertMark] = Field(default_factory=list)
    # Per second the requests were meant for: how many ended each way (primary, fallback, ...).
    seconds: list[dict[str, int]] = Field(default_factory=list)


class ExperimentJournal(BaseModel):
    model_config = _LENIENT
    file: str = ""
    title: str
    # The experiment as written (input, kept verbatim so the run can be repeated).
    experiment: dict[str, Any] = Field(default_factory=dict)
    fault_start_s: float | None = None
    fault_end_s: float | None = None
    # When the fault's window said it should end; fault_start_s and fault_end_s are when it
    # actually began (apply started) and ended (undo finished).
    fault_planned_end_s: float | None = None
    phases: dict[str, LoadSummary] = Field(default_factory=dict)
    timeline: Timeline = Timeline()
    checks: list[CheckResult] = Field(default_factory=list)
    # What became of each request (harness/measure/fates.py); None in reports before it was kept.
    fates: FateTable | None = None
    # Time to fail over and to recover, goodput lost (None: a report from before they were kept).
    recovery: Recovery | None = None
