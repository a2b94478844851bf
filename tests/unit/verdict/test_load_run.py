"""`harness load`'s own checks, judged by the verdict as the gate judges: n, estimate and bounds,
pass / fail / inconclusive (not passed); and the gate's kept-up and schedule checks said with the
summary's named figures."""

from __future__ import annotations

import pytest
from scipy import stats

from harness.data.samples import Sample
from harness.exit_codes import EXIT_FAIL, exit_code
from harness.load.report import LoadCheck
from harness.measure.summary import LoadSummary, RunContext, WorkerAccount, summarize
from harness.spec.gate import GateSpec
from harness.spec.slo import parse_slo
from harness.verdict.load_checks import kept_up_check, validity_check
from harness.verdict.load_run import RUN_ALPHA, judge_estimates, judge_run, run_outcome
from harness.verdict.slo import judge_estimate
from harness.verdict.validity import judge_validity

T0 = 1_000_000.0


def s(sent: float, e2e: float = 100.0, ttft: float | None = 20.0, **kw: object) -> Sample:
    fields: dict[str, object] = {
        "worker": 0,
        "seq": 0,
        "kind": "chat",
        "tenant": "default",
        "prompt_id": "p",
        "repeated": False,
        "intended_s": T0 + sent,
        "sent_s": T0 + sent,
        "e2e_ms": e2e,
        "ttft_ms": ttft,
        "token_gaps_ms": [10.0, 10.0],
        "output_tokens": 3,
        "output_chunks": 3,
        "status": 200,
    }
    fields.update(kw)
    return Sample(**fields)  # type: ignore[arg-type]


def ctx(n: int, **kw: object) -> RunContext:
    base: dict[str, object] = {
        "start_s": T0,
        "duration_s": float(n),
        "open_loop": True,
        "arrival": "constant",
        "expected_requests": float(n),
        "workers": [WorkerAccount(0, T0, T0 + n)],
    }
    base.update(kw)
    return RunContext(**base)  # type: ignore[arg-type]


def judged(samples: list[Sample], c: RunContext) -> tuple[LoadSummary, dict[str, LoadCheck]]:
    summary = summarize(samples, c)
    summary.validity = judge_validity(summary, c)
    return summary, {ch.expr: ch for ch in judge_run(samples, summary, c)}


def behind(n: int, send_every_s: float, done_every_s: float) -> list[Sample]:
    """Request i is sent at i * send_every_s and done at i * done_every_s + 0.1 s."""
    return [
        s(i * send_every_s, e2e=(i * (done_every_s - send_every_s) + 0.1) * 1000.0)
        for i in range(n)
    ]


def test_a_planted_p95_over_its_slo_fails_with_n_and_the_bound_in_the_reason() -> None:
    # 200 requests, one in five at 900 ms: the p95 is 900 ms, far over 500.
    samples = [s(i * 0.05, ttft=900.0 if i % 5 == 0 else 50.0) for i in range(200)]
    summary, checks = judged(samples, ctx(10, slos=("ttft_p95_ms<=500",), expected_requests=200))
    c = checks["ttft_p95_ms<=500"]
    assert c.decision == "fail" and not c.passed and not c.default
    assert c.n == 200 and c.estimate == pytest.approx(900.0) and c.alpha == RUN_ALPHA
    assert c.lower is not None and c.lower > 500
    assert "n=200" in c.reason and f"lower bound {c.lower:.4g}" in c.reason, c.reason
    assert run_outcome(summary, list(checks.values())) == "failed"


def test_few_requests_leave_a_p95_inconclusive_which_has_not_passed() -> None:
    # 20 fast requests: an upper bound of the p95 needs 59 at 95% confidence.
    samples = [s(i * 0.5, ttft=30.0) for i in range(20)]
    summary, checks = judged(samples, ctx(10, slos=("ttft_p95_ms<=500",), default_checks=False))
    c = checks["ttft_p95_ms<=500"]
    assert c.decision == "inconclusive" and not c.passed
    assert c.n == 20 and c.upper is None and "too few samples" in c.reason, c.reason
    outcome = run_outcome(summary, list(checks.values()))
    assert outcome == "inconclusive" and exit_code(outcome) == EXIT_FAIL
    many = [s(i * 0.1, ttft=30.0) for i in range(100)]
    _, decided = judged(many, ctx(10, slos=("ttft_p95_ms<=500",), default_checks=False))
    assert decided["ttft_p95_ms<=500"].decision == "pass"


@pytest.mark.parametrize(
    ("errors", "n", "decision"), [(0, 300, "pass"), (2, 100, "inconclusive"), (10, 40, "fail")]
)
def test_the_error_rate_default_check_has_clopper_pearson_bounds(
    errors: int, n: int, decision: str
) -> None:
    samples = [s(i * 0.01) for i in range(n - errors)]
    samples += [s(0.5, error="http", status=500, ttft=None)] * errors
    _, checks = judged(samples, ctx(10, open_loop=False, default_checks=True))
    c = checks["error_rate<=0.01"]
    assert c.default and c.decision == decision and c.n == n
    assert c.estimate == pytest.approx(errors / n)
    # Clopper-Pearson: beta quantiles, one-sided alpha each.
    lower = stats.beta.ppf(RUN_ALPHA, errors, n - errors + 1) if errors else 0.0
    upper = stats.beta.ppf(1 - RUN_ALPHA, errors + 1, n - errors)
    assert c.lower == pytest.approx(lower) and c.upper == pytest.approx(upper)
    assert "(default check: a run with errors is not a pass)" in c.reason
    if decision == "inconclusive":
        assert c.samples_needed is not None and "would decide" in c.reason


def test_a_server_that_fell_behind_fails_kept_up_with_the_figures_named() -> None:
    # 4 req/s for 10 s; the server finishes one every 0.375 s: 27 of 40 within the window.
    samples = behind(40, 0.25, 0.375)
    summary, checks = judged(samples, ctx(10, expected_requests=40.0))
    assert set(checks) == {"error_rate<=0.01", "achieved_ratio>=0.9"}
    kept = checks["achieved_ratio>=0.9"]
    assert kept.default and kept.decision == "fail" and kept.estimate == pytest.approx(0.675)
    assert kept.alpha is None and kept.lower is None  # the run's own figure, no bound
    assert "10 s schedule window 2.70 req/s achieved of 4.00 req/s sent" in kept.reason
    assert "kept up" in kept.reason
    assert run_outcome(summary, list(checks.values())) == "failed"


def test_default_checks_are_replaced_by_the_users_own_or_turned_off() -> None:
    samples = [s(i) for i in range(8)] + [s(8, error="incomplete", status=0)] * 2
    _, closed = judged(samples, ctx(10, open_loop=False))
    assert list(closed) == ["error_rate<=0.01"]  # closed loop: no rate to keep up with
    assert closed["error_rate<=0.01"].decision == "fail"
    assert "error_rate = 0.2" in closed["error_rate<=0.01"].reason
    _, mine = judged(samples, ctx(10, open_loop=False, slos=("error_rate<=0.5",)))
    assert [(c.expr, c.default) for c in mine.values()] == [("error_rate<=0.5", False)]
    _, off = judged(samples, ctx(10, open_loop=False, default_checks=False))
    assert off == {}


def test_achieved_ratio_is_not_judged_on_a_handful_of_requests_or_a_stopped_run() -> None:
    # 10 requests, the last two finish after the window: 0.8, but that is two requests.
    samples = behind(10, 1.0, 1.0)[:8] + behind(10, 1.0, 1.25)[8:]
    _, checks = judged(samples, ctx(10))
    kept = checks["achieved_ratio>=0.9"]
    assert kept.decision == "inconclusive" and not kept.passed  # undecided is never a pass
    assert "not judged" in kept.reason and kept.estimate == pytest.approx(0.8)
    _, stopped = judged(samples, ctx(10, interrupted_after_s=5.0))
    assert "achieved_ratio>=0.9" not in stopped


def test_capacity_steps_are_judged_on_the_estimates() -> None:
    samples = [s(i * 0.5, ttft=30.0) for i in range(20)]
    c = ctx(10, slos=("ttft_p95_ms<=500",), default_checks=False)
    summary = summarize(samples, c)
    (step,) = judge_estimates(samples, summary, c)
    assert step.decision == "pass" and step.alpha is None and "point estimate" in step.reason


def test_an_estimate_names_the_number_and_the_threshold() -> None:
    summary = summarize([s(0, ttft=612.34)], ctx(1))
    j = judge_estimate(parse_slo("ttft_mean_ms<=500"), summary)
    assert j.decision == "fail" and "612.3" in j.reason and "<= 500" in j.reason
    empty = summarize([], ctx(1))
    assert judge_estimate(parse_slo("ttft_mean_ms<=500"), empty).decision == "inconclusive"


def test_the_gate_says_one_figure_per_thing_over_the_pooled_window() -> None:
    # The same summary the load table shows: sent against offered for the schedule, achieved
    # against sent for keeping up, all over the same window.
    summary, _ = judged(behind(40, 0.25, 0.25), ctx(10, expected_requests=36.0))
    kept = kept_up_check(summary)
    assert kept.outcome == "pass" and kept.measured["achieved_ratio"] == pytest.approx(1.0)
    said = "10 s schedule window 4.00 req/s achieved of 4.00 req/s sent (3.60 offered)"
    assert said in kept.reasons[0], kept.reasons
    fell = kept_up_check(summarize(behind(40, 0.25, 0.375), ctx(10, expected_requests=40.0)))
    assert fell.outcome == "fail" and "2.70 req/s achieved of 4.00 req/s sent" in fell.reasons[0]
    closed = kept_up_check(summarize(behind(40, 0.25, 0.25), ctx(10, open_loop=False)))
    assert closed.outcome == "skipped"

    from harness.load.report import LoadReport
    from harness.provenance import HostInfo

    look = LoadReport(
        started_at="2026-01-01T00:00:00Z",
        host=HostInfo(hostname="h", platform="p", python="3.11", cpus=2),
        config={},
        target={},
        model="m",
        outcome="passed",
        summary=summary,
        samples_dir="s",
        locust_log="l",
    )
    v = validity_check(GateSpec(), [look], summary)
    assert v.outcome == "pass"
    assert v.reasons[0] == (
        "40 requests in 1 look(s), 4.00 req/s sent of 3.60 offered over the 10 s schedule window"
    )
    assert v.measured["achieved_rate_rps"] == summary.generator.achieved_rate_rps
