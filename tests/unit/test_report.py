import json
from pathlib import Path
from xml.etree import ElementTree as ET

from harness.report.model import SCHEMA_VERSION, RunReport
from harness.report.render_html import render_html, svg_line_chart
from harness.report.write import write_reports
from harness.verdict.checks import CheckResult, overall_outcome


def checks() -> list[CheckResult]:
    return [
        CheckResult(name="streamed completion", category="stack", outcome="pass", reasons=["ok"]),
        CheckResult.from_reasons(
            "slo",
            "slo",
            ["ttft_p95_ms = 812 violates <= 500", "error_rate = 0.02 violates <= 0.01"],
        ),
        CheckResult(name="cache", category="cache", outcome="skipped", reasons=["disabled"]),
    ]


def test_overall_outcome_is_the_worst_check() -> None:
    assert overall_outcome(checks()) == "fail"
    assert overall_outcome([checks()[0], checks()[2]]) == "pass"
    assert overall_outcome([]) == "error"
    warn = CheckResult(name="w", category="x", outcome="warn")
    assert overall_outcome([checks()[0], warn]) == "warn"


def test_from_reasons_keeps_every_violation() -> None:
    c = checks()[1]
    assert c.outcome == "fail" and len(c.reasons) == 2


def test_every_rendering_is_written_and_consistent(tmp_path: Path) -> None:
    report = RunReport(name="t", outcome="failed", checks=checks(), duration_s=1.5)
    report.load = {
        "outcome": "passed",
        "summary": {
            "counts": {"total": 10, "ok": 10, "errors": 0, "error_rate": 0.0},
            "latency": {
                "ttft_ms": {"count": 10, "p50": 80.0, "p90": 95.0, "p95": 99.0, "p99": 120.0}
            },
            "validity": {"valid": True, "reasons": []},
            "timeseries": [
                {"t_s": 0, "sent": 1, "completed": 1, "ttft_p95_ms": 100.0},
                {"t_s": 1, "sent": 2, "completed": 2, "ttft_p95_ms": 150.0},
            ],
        },
    }
    paths = write_reports(report, tmp_path)
    data = json.loads(paths["json"].read_text())
    assert data["schema_version"] == SCHEMA_VERSION and data["outcome"] == "failed"
    assert RunReport.model_validate(data).checks[1].reasons == checks()[1].reasons

    suite = ET.parse(paths["junit"]).getroot()
    assert (
        suite.get("tests") == "3" and suite.get("failures") == "1" and suite.get("skipped") == "1"
    )
    failure = suite.find("testcase[@name='slo']/failure")
    assert failure is not None and "error_rate" in (failure.text or "")

    md = paths["markdown"].read_text()
    assert md.startswith("# Deploy gate: FAILED") and "ttft_p95_ms = 812" in md
    assert "| TTFT ms p50/p90/p95/p99 | 80 / 95 / 99 / 120 |" in md

    page = paths["html"].read_text()
    assert "<svg" in page and "FAILED" in page


def test_stored_reports_with_unknown_fields_still_load() -> None:
    data = RunReport(name="t").model_dump()
    data["field_from_the_future"] = 1
    assert RunReport.model_validate(data).name == "t"


def test_chart_without_data_renders_nothing() -> None:
    assert svg_line_chart("x", [], {"a": []}) == ""
    assert "<polyline" in svg_line_chart("x", [0, 1], {"a": [1.0, 2.0]})


def test_html_escapes_untrusted_text() -> None:
    r = RunReport(name="<script>", checks=[CheckResult(name="<b>", category="x", outcome="pass")])
    page = render_html(r)
    assert "<script>" not in page.split("<style>")[0] + page.split("</style>")[1]
