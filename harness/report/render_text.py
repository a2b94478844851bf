"""Markdown summary and JUnit XML renderings of a RunReport."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from xml.etree import ElementTree as ET

from harness.measure.breakdown import breakdown_rows
from harness.report.breakdown_figures import BREAKDOWN_COLUMNS, breakdown_note, breakdown_of
from harness.report.evidence import EVIDENCE_COLUMNS, evidence_rows
from harness.report.experiment_figures import (
    FATE_COLUMNS,
    PHASE_COLUMNS,
    RECOVERY_COLUMNS,
    fate_rows,
    phase_rows,
    recovery_rows,
)
from harness.report.history_figures import HISTORY_COLUMNS, history_rows
from harness.report.load_figures import load_highlights
from harness.report.model import RunReport
from harness.report.rollout_figures import (
    CAPACITY_COLUMNS,
    SCALE_COLUMNS,
    capacity_rows,
    decided_looks,
    look_columns,
    look_rows,
    move_columns,
    move_rows,
    scale_rows,
    stopped_line,
)
from harness.report.rollout_journal import RolloutJournal
from harness.report.verdict_figures import CONFIDENCE_COLUMNS, calibration_line, confidence_rows

_ICON = {"pass": "PASS", "warn": "WARN", "fail": "FAIL", "error": "ERROR", "skipped": "SKIP"}


def _section(title: str, columns: Sequence[str], rows: Iterable[Sequence[object]]) -> list[str]:
    """A Markdown section: a heading and a table (cells' pipes and newlines escaped)."""

    def cell(v: object) -> str:
        return str(v).replace("|", "\\|").replace("\n", " ")

    return [
        "",
        f"## {title}",
        "",
        "| " + " | ".join(columns) + " |",
        "|---" * len(columns) + "|",
        *("| " + " | ".join(cell(v) for v in row) + " |" for row in rows),
    ]


def _rollout(journal: RolloutJournal) -> list[str]:
    """Where the rollout stopped, its moves, the autoscaler's scale events, and the looks that
    decided a step (and the last)."""
    lines = ["", "## Rollout", "", f"- {stopped_line(journal)}"]
    if journal.target_basis:
        lines.append(f"- {journal.target_basis}")
        lines += _section(
            "Rollout: capacity of one replica", CAPACITY_COLUMNS, capacity_rows(journal)
        )
    if journal.moves:
        lines += _section("Rollout: traffic moves", move_columns(journal), move_rows(journal))
    if journal.scale_events:
        # Each step's time after the one before it: which step made the replica late.
        lines += _section("Rollout: scale events", SCALE_COLUMNS, scale_rows(journal))
    if looks := decided_looks(journal.looks):
        # Every figure as effect [low, high] vs its margin; holds before a decision are left out.
        lines += _section("Rollout: canary decisions", look_columns(looks), look_rows(looks))
    return lines


def render_markdown(report: RunReport) -> str:
    counts = report.counts()
    lines = [
        f"# {report.kind_title}: {report.outcome.upper()}",
        "",
        f"- run: `{report.name}` started {report.started_at}, {report.duration_s or 0:.1f} s",
        f"- harness {report.harness_version}, commit `{(report.git_sha or 'unknown')[:12]}`"
        + (" (uncommitted changes)" if report.git_dirty else ""),
        "- checks: " + ", ".join(f"{n} {k}" for k, n in sorted(counts.items())),
    ]
    if report.startup_seconds is not None:
        lines.append(f"- stack up in {report.startup_seconds:.1f} s")
    if (cal := calibration_line(report)) is not None:
        lines.append(f"- {cal}")
    if report.crash:
        lines.append(f"- the harness crashed (not a verdict): traceback in `{report.crash}`")
    if report.errors:
        lines += ["", "## Errors", ""] + [f"- {e}" for e in report.errors]
    lines += _section(
        "Checks",
        ("outcome", "check", "category", "details"),
        ((_ICON[c.outcome], c.name, c.category, "; ".join(c.reasons)) for c in report.checks),
    )
    if traced := list(evidence_rows(report.checks)):
        lines += _section(
            "Failed, degraded and fallback requests (lines in report.html)",
            EVIDENCE_COLUMNS,
            traced,
        )
    if report.rollout is not None:
        lines += _rollout(report.rollout)
    if rows := confidence_rows(report):
        lines += _section("How sure (95% confidence bounds)", CONFIDENCE_COLUMNS, rows)
    lines += _section(
        "Deployment checklist (PRACTICES.md)",
        ("stage", "item", "status", "proven by"),
        ((r.stage, r.item, r.status, r.proven_by()) for r in report.checklist),
    )
    if report.resources:
        lines += _section(
            "Resources during the load",
            ("service", "CPU % mean", "CPU % max", "peak RSS MB"),
            (
                (r.service, r.cpu_percent_mean, r.cpu_percent_max, r.rss_mb_max)
                for r in report.resources
            ),
        )
    figures = load_highlights(report.load)
    if figures:
        lines += _section("Load", ("figure", "value"), figures)
    if (breakdown := breakdown_of(report.load)) is not None:
        lines += _section(
            "Where the time to first token went", BREAKDOWN_COLUMNS, breakdown_rows(breakdown)
        )
        lines += ["", breakdown_note(breakdown)]
    for exp in report.experiments:
        rows = phase_rows(exp)
        if rows:
            lines += _section(f"Experiment: {exp.title}", PHASE_COLUMNS, rows)
        if fates := fate_rows(exp):
            lines += _section(
                f"Experiment: {exp.title}: the fate of each request", FATE_COLUMNS, fates
            )
        if recovery := recovery_rows(exp):
            lines += _section(f"Recovery: {exp.title}", RECOVERY_COLUMNS, recovery)
    if report.history:
        lines += _section("History (newest first)", HISTORY_COLUMNS, history_rows(report.history))
    return "\n".join(lines) + "\n"


def render_junit(report: RunReport) -> str:
    suite = ET.Element(
        "testsuite",
        name=f"deploy-gate.{report.kind}.{report.name}",
        tests=str(len(report.checks)),
        failures=str(sum(c.outcome == "fail" for c in report.checks)),
        errors=str(sum(c.outcome == "error" for c in report.checks) + len(report.errors)),
        skipped=str(sum(c.outcome == "skipped" for c in report.checks)),
        time=f"{report.duration_s or 0:.3f}",
        timestamp=report.started_at,
    )
    for c in report.checks:
        case = ET.SubElement(
            suite,
            "testcase",
            classname=f"gate.{c.category}",
            name=c.name,
            time=f"{c.duration_s:.3f}",
        )
        text = "\n".join(c.reasons)
        if c.outcome == "fail":
            ET.SubElement(case, "failure", message=(c.reasons or ["failed"])[0]).text = text
        elif c.outcome == "error":
            ET.SubElement(case, "error", message=(c.reasons or ["error"])[0]).text = text
        elif c.outcome == "skipped":
            ET.SubElement(case, "skipped", message=text)
        elif c.outcome == "warn":
            ET.SubElement(case, "system-out").text = "WARN: " + text
    for e in report.errors:
        case = ET.SubElement(suite, "testcase", classname="gate.run", name="run")
        ET.SubElement(case, "error", message=e.splitlines()[0] if e else "error").text = e
    ET.indent(suite)
    return (
        '<?xml version="1.0" encoding="utf-8"?>\n' + ET.tostring(suite, encoding="unicode") + "\n"
    )
