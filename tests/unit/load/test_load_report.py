"""The load report: outcome names, JSON round trip (lenient on read), console rendering."""

from __future__ import annotations

import json
from pathlib import Path

from harness.data.samples import Sample
from harness.load.report import LoadReport, outcome_of, render
from harness.measure.summary import RunContext, WorkerAccount, summarize
from harness.provenance import host_info, now_iso

T0 = 1_000.0


def report(slos: tuple[str, ...] = (), lag_s: float = 0.0) -> LoadReport:
    samples = [
        Sample(
            worker=0, seq=i, kind="chat", tenant="default", prompt_id="p", repeated=False,
            intended_s=T0 + i, sent_s=T0 + i + lag_s * i, e2e_ms=120.0, ttft_ms=30.0,
            token_gaps_ms=[10.0] * 9, output_tokens=10, output_chunks=10, status=200,
            x_served_by="primary", x_cache="miss",
        )
        for i in range(10)
    ]  # fmt: skip
    ctx = RunContext(
        start_s=T0, duration_s=10, open_loop=True, arrival="constant", expected_requests=10,
        slos=slos, workers=[WorkerAccount(0, T0, T0 + 10)],
    )  # fmt: skip
    summary = summarize(samples, ctx)
    return LoadReport(
        started_at=now_iso(), host=host_info(), config={"name": "unit"}, target={"url": "http://x"},
        model="m", outcome=outcome_of(summary), summary=summary, samples_dir="s", locust_log="l",
    )  # fmt: skip


def test_outcomes_have_fixed_names() -> None:
    assert report().outcome == "passed"
    assert report(slos=("ttft_p50_ms<=1",)).outcome == "failed"
    assert report(lag_s=0.5).outcome == "invalid"


def test_json_round_trip_ignores_unknown_fields(tmp_path: Path) -> None:
    r = report()
    p = tmp_path / "r.json"
    r.write(p)
    data = json.loads(p.read_text())
    assert data["schema_version"] == 1 and data["kind"] == "load" and data["harness_version"]
    data["added_in_a_later_version"] = {"x": 1}
    data["summary"]["latency"]["new_metric_ms"] = 3
    p.write_text(json.dumps(data))
    back = LoadReport.read(p)
    assert back.summary.latency.ttft_ms.p50 == r.summary.latency.ttft_ms.p50


def test_render_shows_percentiles_rates_and_reasons() -> None:
    text = render(report(slos=("ttft_p95_ms<=1", "ttft_ms<=100")))
    assert "FAILED" in text and "time to first token" in text and "ttft from intended" in text
    assert "SLO FAIL" in text and "meeting ttft_ms<=100" in text
    assert "served by: primary 100.0%" in text and "offered 1.00 req/s" in text
    assert "0 hits, 10 misses" in text
    invalid = render(report(lag_s=0.5))
    assert "INVALID: generator fell behind" in invalid


def test_an_interrupted_report_says_so_and_reads_back(tmp_path: Path) -> None:
    r = report()
    r.outcome = "interrupted"
    r.summary.validity.valid = False
    r.summary.validity.reasons = ["interrupted after 4.0s: a partial run"]
    text = render(r)
    assert "INTERRUPTED" in text and "PARTIAL: interrupted after 4.0s" in text
    assert "INVALID" not in text
    p = tmp_path / "r.json"
    r.write(p)
    assert LoadReport.read(p).outcome == "interrupted"


def test_render_names_both_inter_token_figures_the_drain_seed_and_default_checks() -> None:
    r = report()
    r.config = {"name": "unit", "seed": 4242}
    text = render(r)
    assert "inter-token latency" in text and "token gap (pooled)" in text
    assert "drain: 0 requests finished 0.0s after the window" in text
    assert "seed 4242 (--seed 4242" in text
    assert "CHECK PASS  error_rate = 0 meets <= 0.01 (default check" in text


def test_a_failed_default_check_fails_the_run() -> None:
    r = report()
    failing = r.summary.default_checks[0].model_copy(update={"passed": False})
    r.summary.default_checks = [failing]
    assert outcome_of(r.summary) == "failed"


def test_served_by_shares_are_of_the_requests_answered() -> None:
    r = report()
    served = r.summary.served.model_copy(update={"counts": {"degraded": 3, "primary": 1}})
    summary = r.summary.model_copy(update={"served": served})
    text = render(r.model_copy(update={"summary": summary}))
    assert "served by: degraded 75.0%, primary 25.0%" in text
