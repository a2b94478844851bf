"""Goodput in every load report: its per-request SLOs (given, or derived from the aggregate
latency SLOs, or none, said plainly), its share's bounds, and a capacity step judged on it."""

from __future__ import annotations

import pytest

from harness.data.samples import Sample
from harness.load.report import goodput_line
from harness.measure.summary import RunContext, WorkerAccount, summarize
from harness.spec.slo import derived_per_request, parse_slos
from harness.verdict.goodput import bound_goodput, min_requests_to_pass
from harness.verdict.load_run import RUN_ALPHA, run_verdict

T0 = 1_000_000.0


def req(i: int, ttft: float = 20.0, gap: float = 10.0, **kw: object) -> Sample:
    fields: dict[str, object] = {
        "worker": 0,
        "seq": i,
        "kind": "chat",
        "tenant": "default",
        "prompt_id": f"w0-{i}",
        "repeated": False,
        "intended_s": T0 + i * 0.1,
        "sent_s": T0 + i * 0.1,
        "e2e_ms": ttft + 2 * gap,
        "ttft_ms": ttft,
        "token_gaps_ms": [gap, gap],
        "output_tokens": 3,
        "output_chunks": 3,
        "status": 200,
    }
    fields.update(kw)
    return Sample(**fields)  # type: ignore[arg-type]


def ctx(*slos: str, n: int = 40) -> RunContext:
    return RunContext(
        start_s=T0,
        duration_s=n * 0.1,
        open_loop=True,
        arrival="constant",
        expected_requests=float(n),
        slos=slos,
        default_checks=False,
        workers=[WorkerAccount(0, T0, T0 + n * 0.1)],
    )


def test_per_request_bounds_follow_from_the_tail_most_aggregate_slo_of_each_figure() -> None:
    slos = parse_slos(
        [
            *("ttft_p50_ms<=100", "ttft_p95_ms<=300", "itl_p99_ms<50", "e2e_mean_ms<=900"),
            *("ttft_from_intended_p99_ms<=400", "error_rate<=0.01", "tpot_p95_ms>=1"),
        ]
    )
    derived = [(r.expr, a.expr) for r, a in derived_per_request(slos)]
    # A median or a mean bounds no single request; a lower bound is no latency SLO.
    assert derived == [
        ("ttft_ms<=300", "ttft_p95_ms<=300"),
        ("itl_ms<50", "itl_p99_ms<50"),
        ("ttft_from_intended_ms<=400", "ttft_from_intended_p99_ms<=400"),
    ]


def test_goodput_says_where_its_slos_came_from_with_n_and_bounds() -> None:
    samples = [req(i, ttft=400.0 if i < 4 else 20.0) for i in range(40)]
    given = summarize(samples, ctx("ttft_ms<=300", "itl_ms<=20", "ttft_p95_ms<=100"))
    assert given.goodput.basis == "per_request" and given.goodput.derived_from == []
    assert (given.goodput.meeting, given.goodput.n) == (36, 40)
    derived = summarize(samples, ctx("ttft_p95_ms<=300", "e2e_p99_ms<=10000"))
    assert derived.goodput.basis == "derived" and derived.goodput.slos == [
        "ttft_ms<=300",
        "e2e_ms<=10000",
    ]
    assert derived.goodput.derived_from == ["ttft_p95_ms<=300", "e2e_p99_ms<=10000"]
    none = summarize(samples, ctx("error_rate<=0.01"))
    assert none.goodput.basis == "none" and none.goodput.meeting == 40

    bounded = bound_goodput(derived, 0.05)
    assert bounded.lower is not None and bounded.upper is not None
    assert bounded.lower < 0.9 < bounded.upper and bounded.confidence == pytest.approx(0.95)
    derived.goodput = bounded
    assert goodput_line(derived) == (
        f"{derived.throughput.goodput_requests_per_second:.2f} req/s; 90.0% of 40 requests "
        f"(95% bounds [{bounded.lower:.1%}, {bounded.upper:.1%}]) meeting ttft_ms<=300, "
        "e2e_ms<=10000 (derived from the aggregate SLOs ttft_p95_ms<=300, e2e_p99_ms<=10000: "
        "no per-request SLO given)"
    )
    # With nothing that bounds a request, no goodput is claimed.
    assert bound_goodput(none, 0.05).lower is None
    assert goodput_line(none).startswith("no per-request SLO (none given, such as ttft_ms<=500")
    assert goodput_line(none).endswith("; 40 of 40 requests succeeded")


@pytest.mark.parametrize(
    ("slow", "n", "outcome"),
    [
        (0, 30, "passed"),  # 30 of 30: lower bound 0.905 >= 0.9
        (3, 40, "inconclusive"),  # 37 of 40: bounds straddle 0.9
        (20, 40, "failed"),  # 20 of 40: upper bound under 0.9
    ],
)
def test_a_goodput_step_passes_fails_or_stays_inconclusive_on_its_share(
    slow: int, n: int, outcome: str
) -> None:
    samples = [req(i, ttft=500.0 if i < slow else 20.0) for i in range(n)]
    c = ctx("ttft_ms<=200", "itl_ms<=20", "goodput>=0.9", n=n)
    summary = summarize(samples, c)
    checks, got = run_verdict(samples, summary, c)
    assert got == outcome
    (check,) = checks  # no default checks: the share alone decides
    assert check.expr == "goodput>=0.9" and check.n == n and check.alpha == RUN_ALPHA
    assert summary.goodput.lower == pytest.approx(check.lower)


def test_a_step_needs_enough_requests_for_a_perfect_share_to_show_the_target() -> None:
    assert [min_requests_to_pass(t, 0.05) for t in (0.5, 0.9, 0.95, 0.99)] == [5, 29, 59, 299]
