from pathlib import Path

from harness.measure.history import HistoryRecord, append_history, figures_of_summary, read_history
from harness.verdict.baseline import compare_with_history


def record(ttft: float, tps: float, outcome: str = "passed") -> HistoryRecord:
    return HistoryRecord(
        name="nightly",
        started_at="2026-11-01T00:00:00Z",
        outcome=outcome,
        figures={"ttft_p95_ms": ttft, "output_tokens_per_second": tps},
    )


def compare(current: dict[str, float | None], history: list[HistoryRecord]):  # type: ignore[no-untyped-def]
    return compare_with_history(
        current, history, window=7, min_runs=3, max_regression_pct=20, outcome_on_regression="fail"
    )


def test_too_little_history_skips() -> None:
    check = compare({"ttft_p95_ms": 100.0}, [record(100, 50)] * 2)
    assert check.outcome == "skipped" and "3 needed" in check.reasons[0]


def test_every_regression_is_named_with_numbers() -> None:
    history = [record(100, 50), record(110, 52), record(90, 48)]
    check = compare({"ttft_p95_ms": 130.0, "output_tokens_per_second": 30.0}, history)
    assert check.outcome == "fail"
    assert len(check.reasons) == 2
    assert "ttft_p95_ms = 130 vs median 100" in check.reasons[0] and "+30.0%" in check.reasons[0]
    assert "output_tokens_per_second = 30 vs median 50" in check.reasons[1]


def test_within_allowance_and_improvements_pass() -> None:
    history = [record(100, 50), record(100, 50), record(100, 50)]
    check = compare({"ttft_p95_ms": 115.0, "output_tokens_per_second": 80.0}, history)
    assert check.outcome == "pass"


def test_failed_runs_do_not_form_the_baseline() -> None:
    history = [record(100, 50)] * 3 + [record(1000, 5, outcome="failed")] * 5
    assert compare({"ttft_p95_ms": 500.0}, history).outcome == "fail"


def test_regressed_runs_do_not_form_the_baseline() -> None:
    """A run that only warned of its regression still passed; it must not become the normal."""
    slow = record(130, 50).model_copy(update={"regressed": True})
    history = [record(100, 50)] * 3 + [slow] * 7
    check = compare({"ttft_p95_ms": 130.0}, history)
    assert check.outcome == "fail" and "vs median 100" in check.reasons[0]


def test_history_file_round_trip_skips_bad_lines(tmp_path: Path) -> None:
    path = tmp_path / "h" / "nightly.jsonl"
    append_history(path, record(100, 50))
    with path.open("a") as f:
        f.write("not json\n")
    append_history(path, record(120, 40))
    assert [r.figures["ttft_p95_ms"] for r in read_history(path)] == [100, 120]
    assert read_history(tmp_path / "missing.jsonl") == []


def test_figures_from_a_load_summary() -> None:
    from load_report_fixture import load_report

    load = load_report([10.0] * 19 + [12.5])
    m = figures_of_summary(load.summary)
    assert m["ttft_p50_ms"] == 10 and m["ttft_p95_ms"] == load.summary.latency.ttft_ms.p95
    assert m["e2e_p95_ms"] == load.summary.latency.e2e_ms.p95
    assert m["output_tokens_per_second"] == load.summary.throughput.output_tokens_per_second
    assert figures_of_summary(None)["ttft_p95_ms"] is None


def test_trend_is_the_last_runs_then_this_one_and_renders() -> None:
    from harness.measure.history import trend
    from harness.report.history_figures import history_rows, series
    from harness.report.model import RunReport
    from harness.report.render_html import render_html
    from harness.report.render_text import render_markdown

    history = [record(100 + i, 50, outcome="failed" if i == 3 else "passed") for i in range(40)]
    runs = trend(history, record(180, 40), last=30)
    assert len(runs) == 31 and runs[0].figures["ttft_p95_ms"] == 110
    assert runs[-1].current is True and runs[-1].outcome == "this run"
    assert series(runs, "ttft_p95_ms")[-2:] == [139.0, 180.0]
    assert series(runs, "e2e_p95_ms") == [None] * 31
    rows = history_rows(runs, last=3)
    assert [r[2] for r in rows] == ["this run", "passed", "passed"]
    assert rows[0][4] == "180.0" and rows[0][3] == "-"  # ttft_p95_ms known, ttft_p50_ms not
    report = RunReport(name="nightly", history=runs)
    page = render_html(report)
    assert "<h2>History</h2>" in page and "30 runs ago" in page and "this run" in page
    assert page.count("<circle") == 31 + 31  # ttft_p95 and tokens/s points; unknown ones skipped
    md = render_markdown(report)
    assert "## History (newest first)" in md and md.count("| this run |") == 1


def test_only_runs_on_the_same_stack_are_compared() -> None:
    from harness.measure.history import same_stack

    sim, ref, legacy = record(40, 12), record(900, 26), record(950, 25)
    sim.stack, ref.stack = "simulated (local)", "reference (local)"
    assert same_stack([sim, ref, legacy], "reference (local)") == [ref, legacy]
    check = compare({"ttft_p95_ms": 1000.0}, same_stack([sim] * 5 + [ref] * 3, "reference (local)"))
    assert check.outcome == "pass" and check.measured["baseline_runs"] == 3
