"""Evidence under a check: kept through report.json and shown in the HTML under that check."""

from __future__ import annotations

from harness.observe.logs import LogLine, RequestEvidence
from harness.report.model import RunReport
from harness.report.render_html import render_html
from harness.report.render_text import render_markdown
from harness.verdict.checks import CheckResult

EVIDENCE = RequestEvidence(
    request_id="load-0-7",
    status=503,
    outcome="status 503",
    lines=[
        LogLine(
            time="2026-11-30T15:07:35.805651456Z",
            layer="gateway",
            fields={"status": "503", "error": "breaker_open", "replica": "gateway-1"},
        ),
        LogLine(
            time="2026-11-30T15:07:35.806Z",
            layer="nginx",
            fields={"status": "503", "upstream": "127.0.0.1:4000"},
        ),
    ],
)


def _report() -> RunReport:
    failed = CheckResult(
        name="SLO ttft_p95_ms<=500", category="slo", outcome="fail", evidence=[EVIDENCE]
    )
    passed = CheckResult(name="response cache", category="cache", outcome="pass")
    return RunReport(checks=[failed, passed], outcome="failed")


def test_evidence_survives_report_json() -> None:
    again = RunReport.model_validate_json(_report().model_dump_json())
    assert again.checks[0].evidence == [EVIDENCE]
    assert again.checks[0].evidence[0].layers == ["gateway", "nginx"]


def test_html_shows_each_request_and_its_lines_under_the_failed_check() -> None:
    page = render_html(_report())
    failed_at = page.index("SLO ttft_p95_ms&lt;=500")
    evidence_at = page.index("Evidence: 1 failed, degraded or fallback requests")
    assert failed_at < evidence_at < page.index("response cache")
    assert "<code>load-0-7</code> &middot; status 503 &middot; 2 lines (gateway, nginx)" in page
    assert "status=503 error=breaker_open" in page and ">gateway gateway-1<" in page
    assert ">15:07:35.805651<" in page


def test_the_summary_lists_each_traced_request_with_its_layers() -> None:
    md = render_markdown(_report())
    assert "## Failed, degraded and fallback requests (lines in report.html)" in md
    # A load step's request has no phase; the check it sits under read it.
    assert "| - | load-0-7 | status 503 | SLO ttft_p95_ms<=500 | 1 gateway, 1 nginx |" in md


def test_an_experiments_request_names_its_phase_and_the_checks_that_read_it() -> None:
    reading = ["x: during the fault, fallback_share>=0.9", "x: load kept its schedule"]
    ev = EVIDENCE.model_copy(update={"phase": "during", "checks": reading})
    check = CheckResult(name=reading[0], category="chaos", outcome="pass", evidence=[ev])
    report = RunReport(checks=[check], outcome="passed")
    md = render_markdown(report)
    assert (
        "| during | load-0-7 | status 503 | x: during the fault, fallback_share>=0.9; load "
        "kept its schedule | 1 gateway, 1 nginx |"
    ) in md
    page = render_html(report)
    assert (
        "2 lines (gateway, nginx) &middot; during the fault &middot; read by x: during the "
        "fault, fallback_share&gt;=0.9; load kept its schedule</summary>"
    ) in page
    again = RunReport.model_validate_json(report.model_dump_json())
    assert again.checks[0].evidence[0].phase == "during"
