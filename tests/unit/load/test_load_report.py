"""The load report: outcome names, JSON round trip (lenient on read), console rendering."""

from __future__ import annotations

import json
from pathlib import Path

from harness.data.samples import Sample
from harness.load.report import LoadReport, render
from harness.measure.summary import RunContext, WorkerAccount, summarize
from harness.provenance import host_info, now_iso
from harness.verdict.load_run import run_outcome, run_verdict

T0 = 1_000.0


def report(slos: tuple[str, ...] = (), lag_s: float = 0.0, n: int = 10) -> LoadReport:
    """n requests, one a second; judged as `harness load` judges (10 are too few to show an
    error rate under 1%, 300 are enough)."""
    samples = [
        Sample(
            worker=0,
            seq=i,
            kind="chat",
            tenant="default",
            prompt_id="p",
            repeated=False,
            intended_s=T0 + i,
            sent_s=T0 + i + lag_s * i,
            e2e_ms=120.0,
            ttft_ms=30.0,
            token_gaps_ms=[10.0] * 9,
            output_tokens=10,
            output_chunks=10,
            status=200,
            x_served_by="primary",
            x_cache="miss",
        )
        for i in range(n)
    ]
    ctx = RunContext(
        start_s=T0,
        duration_s=n,
        open_loop=True,
        arrival="constant",
        expected_requests=n,
        slos=slos,
        workers=[WorkerAccount(0, T0, T0 + n)],
    )
    summary = summarize(samples, ctx)
    checks, outcome = run_verdict(samples, summary, ctx)
    return LoadReport(
        started_at=now_iso(),
        host=host_info(),
        config={"name": "unit"},
        target={"url": "http://x"},
        model="m",
        outcome=outcome,
        summary=summary,
        checks=checks,
        samples_dir="s",
        locust_log="l",
    )


def test_outcomes_have_fixed_names() -> None:
    assert report(n=300).outcome == "passed"
    # 0 errors in 10: the default error-rate check is undecided, reported and not gating; an
    # SLO the user gave that 10 requests cannot decide has not passed.
    assert report().outcome == "passed"
    assert report(slos=("ttft_p95_ms<=500",)).outcome == "inconclusive"
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
    assert "CHECK INCONCLUSIVE  error_rate = 0, 95% bounds [0, 0.2589] straddle 0.01" in text
    assert (
        "not decided on 10 requests (default checks: they fail the run only when decided "
        "against it): error_rate<=0.01, achieved_ratio>=0.9" in text
    )
    assert "INCONCLUSIVE: " not in text  # no SLO of the user's is undecided
    passed = render(report(n=300))
    assert "CHECK PASS  error_rate = 0, 95% upper bound 0.009936 <= 0.01 (n=300): pass" in passed
    assert "CHECK PASS  achieved_ratio = 1 meets >= 0.9 (n=300; a point estimate" in passed
    assert "300.00 req/s" not in passed and "achieved 1.00 req/s over the 300s schedule" in passed
    assert "INCONCLUSIVE" not in passed


def test_a_failed_default_check_fails_the_run() -> None:
    r = report(n=300)
    failing = r.checks[0].model_copy(update={"decision": "fail", "passed": False})
    assert run_outcome(r.summary, [failing, *r.checks[1:]]) == "failed"


def test_checks_read_back_with_their_decision_n_and_bounds(tmp_path: Path) -> None:
    r = report(slos=("ttft_p95_ms<=500",), n=100)
    p = tmp_path / "r.json"
    r.write(p)
    stored = json.loads(p.read_text())
    assert "slo_checks" not in stored["summary"] and "default_checks" not in stored["summary"]
    first = stored["checks"][0]
    assert first["expr"] == "ttft_p95_ms<=500" and first["decision"] == "pass"
    assert first["n"] == 100 and first["upper"] == 30.0 and first["alpha"] == 0.05
    assert LoadReport.read(p).checks == r.checks


def test_a_report_written_before_the_checks_left_the_summary_still_reads(
    tmp_path: Path,
) -> None:
    """Older reports kept the checks in the summary, with `passed` and `observed`."""
    data = json.loads(report().model_dump_json())
    del data["checks"]
    data["summary"]["slo_checks"] = [
        {
            "expr": "ttft_p95_ms<=500",
            "observed": 30.0,
            "passed": True,
            "reason": "ttft_p95_ms = 30 meets <= 500",
            "default": False,
        },
    ]
    data["summary"]["default_checks"] = [
        {
            "expr": "error_rate<=0.01",
            "observed": 0.02,
            "passed": False,
            "reason": "error_rate = 0.02 violates <= 0.01 (default check: ...)",
            "default": True,
        },
    ]
    data["outcome"] = "failed"
    p = tmp_path / "old.json"
    p.write_text(json.dumps(data))
    old = LoadReport.read(p)
    assert [(c.expr, c.decision, c.passed, c.estimate, c.default) for c in old.checks] == [
        ("ttft_p95_ms<=500", "pass", True, 30.0, False),
        ("error_rate<=0.01", "fail", False, 0.02, True),
    ]
    assert old.checks[0].n is None and old.checks[0].upper is None  # not stored then
    assert run_outcome(old.summary, old.checks) == "failed"
    assert "SLO PASS  ttft_p95_ms = 30 meets <= 500" in render(old)
    assert "CHECK FAIL  error_rate = 0.02 violates" in render(old)


def test_served_by_shares_are_of_the_requests_answered() -> None:
    r = report()
    served = r.summary.served.model_copy(update={"counts": {"degraded": 3, "primary": 1}})
    summary = r.summary.model_copy(update={"served": served})
    text = render(r.model_copy(update={"summary": summary}))
    assert "served by: degraded 75.0%, primary 25.0%" in text
