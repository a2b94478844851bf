"""RunReport: describes a run well enough to rerun it (versions, commit, host, full spec)."""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, computed_field, model_validator

from harness import __version__
from harness.clients.webhook import WebhookPayload
from harness.events import EventRecord
from harness.load.report import LoadReport
from harness.measure.calibration import Calibration
from harness.measure.history import HistoryRecord
from harness.observe.resources import ServiceUsage
from harness.provenance import HostInfo, git_dirty, git_sha, host_info, now_iso
from harness.report.experiment_journal import ExperimentJournal
from harness.report.rollout_journal import RolloutJournal
from harness.stack.provider import Endpoints
from harness.verdict.checklist import ChecklistRow, checklist
from harness.verdict.checks import CheckResult

SCHEMA_VERSION = 1
RunOutcome = Literal["passed", "failed", "error", "interrupted", "running"]


class Look(BaseModel):
    """One look at the gate's load step: how long it had run, how many samples, the error rate
    allowed at this look, and what was still undecided."""

    model_config = ConfigDict(extra="ignore")
    look: int
    duration_s: float
    requests: int
    alpha: float
    undecided: list[str] = Field(default_factory=list)


class GateLoadReport(LoadReport):
    """The gate's load step: every look's samples summarized together, and the looks."""

    looks: list[Look] = Field(default_factory=list)


class RunReport(BaseModel):
    # Stored output: unknown fields from newer versions are ignored, so old readers still load it.
    model_config = ConfigDict(extra="ignore")

    schema_version: int = SCHEMA_VERSION
    harness_version: str = __version__
    git_sha: str | None = Field(default_factory=git_sha)
    git_dirty: bool | None = Field(default_factory=git_dirty)
    host: HostInfo = Field(default_factory=host_info)
    command: str = ""
    # What ran: a gate (`name` its profile's) or chaos experiments (`name` lists them).
    kind: Literal["gate", "chaos", "rollout"] = "gate"
    name: str = "gate"
    started_at: str = Field(default_factory=now_iso)
    finished_at: str | None = None
    duration_s: float | None = None
    outcome: RunOutcome = "running"
    exit_code: int | None = None
    errors: list[str] = Field(default_factory=list)
    # When the harness itself crashed (a defect of the tool, not a verdict): its traceback's file
    # in the run folder.
    crash: str | None = None
    stack_spec: dict[str, Any] = Field(default_factory=dict)
    gate_spec: dict[str, Any] = Field(default_factory=dict)
    # Where the stack's services listened (the API key redacted).
    endpoints: Endpoints | None = None
    startup_seconds: float | None = None
    # This machine's speed with the pinned llama.cpp build, when the profile's SLOs are relative.
    calibration: Calibration | None = None
    checks: list[CheckResult] = Field(default_factory=list)
    load: GateLoadReport | None = None
    alerts: list[WebhookPayload] = Field(default_factory=list)
    # CPU and peak memory of each service during the load step.
    resources: list[ServiceUsage] = Field(default_factory=list)
    # Journal of each chaos experiment: the experiment, fault times, phase summaries, checks.
    experiments: list[ExperimentJournal] = Field(default_factory=list)
    # A rollout's journal: its moves, canary looks and both versions over time.
    rollout: RolloutJournal | None = None
    # Key figures of the last runs in the history file and this one (last, `current`).
    history: list[HistoryRecord] = Field(default_factory=list)
    run_dir: str | None = None
    # Every step started and check decided, with seconds since the run began.
    events: list[EventRecord] = Field(default_factory=list)

    @computed_field  # type: ignore[prop-decorator]
    @property
    def checklist(self) -> list[ChecklistRow]:
        """PRACTICES.md's deployment checklist, item by item, from this run's checks."""
        return checklist(self.checks)

    @model_validator(mode="before")
    @classmethod
    def _kind_of_old_reports(cls, data: Any) -> Any:
        # Reports written before `kind` was kept named a chaos run "chaos: <titles>".
        if isinstance(data, dict) and "kind" not in data:
            data = {
                **data,
                "kind": "chaos" if str(data.get("name", "")).startswith("chaos") else "gate",
            }
        return data

    @property
    def kind_title(self) -> str:
        """What the report's heading calls the run."""
        return {"chaos": "Chaos run", "rollout": "Rollout"}.get(self.kind, "Deploy gate")

    def counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for c in self.checks:
            out[c.outcome] = out.get(c.outcome, 0) + 1
        return out
