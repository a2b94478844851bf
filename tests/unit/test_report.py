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
    from load_report_fixture import load_report

    from harness.measure.stats import Distribution

    report.load = load_report([80.0] * 10)
    report.load.summary.latency.ttft_ms = Distribution(
        count=10, p50=80.0, p90=95.0, p95=99.0, p99=120.0
    )
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


def test_experiment_section_plots_outcomes_fault_window_and_alerts() -> None:
    from harness.data.samples import Sample
    from harness.measure.summary import RunContext, summarize
    from harness.report.experiment_figures import phase_rows
    from harness.report.experiment_journal import ExperimentJournal

    def sample(i: int, status: int, served: str) -> Sample:
        return Sample(
            worker=0,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id="p",
            repeated=False,
            intended_s=float(i),
            sent_s=float(i),
            e2e_ms=150.0,
            status=status,
            error=None if status == 200 else "status",
            ttft_ms=50.0,
            output_tokens=4,
            output_chunks=4,
            x_served_by=served,
        )

    def phase(samples: list[Sample]) -> object:
        return summarize(samples, RunContext(start_s=0, duration_s=4, open_loop=True))

    experiment = ExperimentJournal.model_validate(
        {
            "title": "pools down",
            "file": "chaos/x.yaml",
            "phases": {
                "before": phase([sample(i, 200, "primary") for i in range(4)]),
                "during": phase([sample(i, 503, "degraded") for i in range(2)]),
            },
            "timeline": {
                "fault_s": [2.0, 3.0],
                "alerts": [{"alert": "HighErrorRate", "status": "firing", "t_s": 2.5}],
                "seconds": [{"primary": 2}, {"primary": 2}, {"degraded": 2}, {}],
            },
        }
    )
    assert phase_rows(experiment) == [
        ("before", "4", "0%", "100%", "0%", "0%", "150"),
        ("during", "2", "100%", "0%", "0%", "100%", "-"),
    ]
    page = render_html(RunReport(name="chaos", outcome="passed", experiments=[experiment]))
    assert "<h2>Chaos experiments</h2>" in page and "chaos/x.yaml" in page
    assert "HighErrorRate firing at 2.5 s" in page and "fault 2.0-3.0 s" in page
    assert page.count("<title>") == 1 + 3  # the page's, and one per non-empty bar segment
    assert "<td>during</td><td>2</td><td>100%</td>" in page
    from harness.report.render_text import render_markdown

    md = render_markdown(RunReport(name="chaos", outcome="passed", experiments=[experiment]))
    assert md.startswith("# Chaos run: PASSED") and "## Experiment: pools down" in md
    assert "| during | 2 | 100% | 0% | 0% | 100% | - |" in md
    # A journal written before fates were kept shows no fate table.
    assert "the fate of each request" not in md and "The fate of each request" not in page


def test_experiment_section_counts_the_fate_of_each_request() -> None:
    from harness.data.samples import STREAM_ENDED_SILENTLY, Sample
    from harness.measure.fates import fate_table
    from harness.report.experiment_figures import FATE_COLUMNS, fate_rows
    from harness.report.experiment_journal import ExperimentJournal
    from harness.report.render_text import render_markdown

    def sample(i: int, **kw: object) -> Sample:
        base: dict[str, object] = dict(
            worker=0,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id="p",
            repeated=False,
            intended_s=float(i),
            sent_s=float(i),
            e2e_ms=1500.0,
            status=200,
            x_served_by="primary",
        )
        return Sample(**{**base, **kw})  # type: ignore[arg-type]

    samples = [
        sample(0),
        sample(1, error="incomplete", error_detail=STREAM_ENDED_SILENTLY),
        sample(2, status=429, error="http", retry_after="1"),
        sample(3, status=429, error="http"),
        sample(5, x_served_by="fallback"),
    ]
    fates = fate_table(samples, 0.0, 2.0, 4.0)
    experiment = ExperimentJournal(title="cut", fates=fates)
    again = ExperimentJournal.model_validate_json(experiment.model_dump_json())
    assert again.fates == fates
    rows = fate_rows(again)
    assert FATE_COLUMNS == (
        "requests",
        "total",
        "completed",
        "failed_over",
        "error_in_stream",
        "cut_silently",
        "refused",
        "hung",
        "failed",
    )
    assert [r[0] for r in rows] == [
        "before the fault",
        "during",
        "after",
        "in flight when it started",
        "in flight when it ended",
        "all",
    ]
    # Sent at 1 s, done at 2.5 s: in flight when the fault began, counted in "during".
    assert rows[1] == ("during", "3", "0", "0", "0", "1", "2 (1 Retry-After)", "0", "0")
    assert rows[3] == ("in flight when it started", "1", "0", "0", "0", "1", "0", "0", "0")
    assert rows[5][:3] == ("all", "5", "1")
    md = render_markdown(RunReport(name="chaos", outcome="failed", experiments=[experiment]))
    assert "## Experiment: cut: the fate of each request" in md
    assert "| during | 3 | 0 | 0 | 0 | 1 | 2 (1 Retry-After) | 0 | 0 |" in md
    page = render_html(RunReport(name="chaos", outcome="failed", experiments=[experiment]))
    assert "<p>The fate of each request</p>" in page and "<th>cut_silently</th>" in page


def test_recovery_figures_render_in_text_and_html() -> None:
    from harness.measure.recovery import Recovery, SteadyState
    from harness.report.experiment_figures import recovery_rows
    from harness.report.experiment_journal import ExperimentJournal
    from harness.report.render_text import render_markdown

    steady = SteadyState(
        requests=9, misses=0, miss_rate=0.0, first_answer_p95_ms=58.6, bound_ms=500.0
    )
    recovered = Recovery(
        failover_s=0.39,
        served_by_seen=True,
        steady=steady,
        recover_s=0.36,
        observed_s=11.4,
        after_requests=11,
        recovered_requests=11,
        recovered_misses=0,
        recovered_miss_rate_upper=0.238,
        affected_requests=21,
        affected_misses=0,
        expected_misses=0.0,
        goodput_lost=0.0,
        goodput_lost_share=0.0,
    )
    experiment = ExperimentJournal(title="primary down", recovery=recovered)
    assert recovery_rows(experiment) == [
        ("time to fail over", "0.4 s", "fault start to the first fallback or degraded answer"),
        (
            "time to recover",
            "0.4 s",
            "11 requests from then to the end, 0 missing (miss rate "
            "<= 24% at 95%); no error, first answer within 500 ms; at most 0 misses in any 5 "
            "requests",
        ),
        (
            "goodput lost",
            "0.0 (0%)",
            "0 of 21 requests during and after the fault missed, 0.0 expected",
        ),
        ("steady state", "9 requests before the fault", "first answer p95 59 ms, 0 missing (0%)"),
    ]
    censored = recovered.model_copy(
        update={
            "recover_s": None,
            "censored": True,
            "failover_s": None,
            "served_by_seen": False,
        }
    )
    rows = recovery_rows(ExperimentJournal(title="t", recovery=censored))
    assert rows[0][1] == "- (no X-Served-By header)"
    assert rows[1][:2] == ("time to recover", "not recovered within the 11 s observed")
    md = render_markdown(RunReport(name="chaos", outcome="passed", experiments=[experiment]))
    assert "## Recovery: primary down" in md and "| time to recover | 0.4 s |" in md
    page = render_html(RunReport(name="chaos", outcome="passed", experiments=[experiment]))
    assert "<td>time to recover</td><td>0.4 s</td>" in page
    # A journal stored before the figures were kept renders without them.
    old = ExperimentJournal.model_validate({"title": "old"})
    assert recovery_rows(old) == [] and "Recovery" not in render_markdown(
        RunReport(name="chaos", outcome="passed", experiments=[old])
    )


def test_the_checklist_says_what_each_item_rests_on() -> None:
    from harness.verdict.checklist import CHECKLIST, ChecklistRow, checklist

    got = {
        r.item: (r.status, r.checks)
        for r in checklist(
            [
                CheckResult(name="SLO ttft_p95_ms<=500", category="slo", outcome="pass"),
                CheckResult(name="SLO error_rate<=0.01", category="slo", outcome="fail"),
                CheckResult(name="cost accounting", category="cost", outcome="pass"),
                CheckResult(name="no regression", category="regression", outcome="warn"),
                CheckResult(name="response cache", category="security", outcome="skipped"),
            ]
        )
    }
    assert len(got) == len(CHECKLIST)
    # A p95 alone does not prove "p50, p95, p99".
    assert got["Benchmark latency (p50, p95, p99)"] == ("not checked", ["SLO ttft_p95_ms<=500"])
    assert got["Monitor error rates"] == ("failed", ["SLO error_rate<=0.01"])
    assert got["Cost tracking"] == ("proven", ["cost accounting"])
    assert got["Compare latency to baseline"][0] == "warning"
    assert got["Security audit (input validation, authentication)"] == (
        "not checked",
        ["response cache"],
    )
    # A gate run does not roll out: the rollout's items are left for `harness rollout`.
    assert got["Gradual rollout (canary 5% -> 50% -> 100%)"] == ("not checked", [])
    assert got["User feedback collection"] == ("outside the gate", [])
    row = ChecklistRow(
        stage="s",
        item="i",
        status="proven",
        checks=[
            "pools down: before the fault, error_rate<=0.01",
            "pools down: alert X fires",
            "rate limit per API key",
            "other: one",
        ],
    )
    assert row.proven_by() == "pools down (2 checks), rate limit per API key, other: one"
    page = render_html(RunReport(checks=[CheckResult(name="c", category="cost", outcome="pass")]))
    assert "Deployment checklist" in page and "<td>Cost tracking</td>" in page


def test_harness_report_renders_a_stored_report_again_with_its_exit_code(tmp_path: Path) -> None:
    import subprocess
    import sys

    run = tmp_path / "run"
    write_reports(RunReport(name="t", outcome="failed", checks=checks(), duration_s=1.5), run)
    for name in ("summary.md", "report.html", "junit.xml"):
        (run / name).unlink()
    r = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(run)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 1, r.stderr
    assert r.stdout.startswith("# Deploy gate: FAILED") and "ttft_p95_ms = 812" in r.stdout
    assert all((run / n).is_file() for n in ("summary.md", "report.html", "junit.xml"))

    bad = tmp_path / "bad.json"
    bad.write_text('{"checks": [{"name": "x", "category": "slo"}]}')
    r = subprocess.run(
        [sys.executable, "-m", "harness", "report", str(bad)],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert r.returncode == 2
    assert "bad.json" in r.stderr and "checks.0.outcome" in r.stderr
