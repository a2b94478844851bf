"""Samples -> summary: counts, goodput, served-by, cache, validity, time series, windows."""

from __future__ import annotations

import pytest

from harness.data.samples import Sample
from harness.measure.summary import LoadSummary, RunContext, WorkerAccount, summarize
from harness.measure.window import phases
from harness.verdict.load_run import run_outcome
from harness.verdict.validity import judge_validity

T0 = 1_000_000.0


def s(
    sent: float,
    e2e: float = 100.0,
    ttft: float | None = 20.0,
    intended: float | None = None,
    **kw: object,
) -> Sample:
    fields: dict[str, object] = {
        "worker": 0,
        "seq": 0,
        "kind": "chat",
        "tenant": "default",
        "prompt_id": "p",
        "repeated": False,
        "intended_s": intended,
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


def ctx(**kw: object) -> RunContext:
    base: dict[str, object] = {
        "start_s": T0,
        "duration_s": 10.0,
        "open_loop": False,
        "workers": [WorkerAccount(0, T0, T0 + 10)],
    }
    base.update(kw)
    return RunContext(**base)  # type: ignore[arg-type]


def test_counts_errors_tokens_and_throughput() -> None:
    samples = [s(i * 0.5) for i in range(18)] + [
        s(9.0, error="http", status=429, ttft=None, tenant="b"),
        s(9.5, error="timeout", status=0, ttft=None, tenant="b"),
    ]
    out = summarize(samples, ctx())
    c = out.counts
    assert (c.total, c.ok, c.errors) == (20, 18, 2) and c.error_rate == pytest.approx(0.1)
    assert c.by_status == {"0": 1, "429": 1} and c.by_kind == {"http": 1, "timeout": 1}
    assert c.by_tenant["b"] == {"total": 2, "ok": 0, "errors": 2, "rate_limited": 1}
    assert c.output_tokens == 54
    assert out.throughput.requests_per_second == pytest.approx(1.8)
    assert out.throughput.output_tokens_per_second == pytest.approx(5.4)
    assert out.latency.token_gap_ms.count == 36 and out.latency.itl_ms.count == 18
    assert out.latency.itl_ms.p50 == pytest.approx(10.0) and out.latency.tpot_ms.p50 == 40.0
    assert out.latency.ttft_from_intended_ms is None  # closed loop


def test_goodput_uses_per_request_slos_and_the_summary_judges_nothing() -> None:
    samples = [
        s(0, e2e=100, ttft=50),
        s(1, e2e=100, ttft=300),
        s(2, e2e=5000, ttft=60),
        s(3, error="http", status=500),
    ]
    out = summarize(
        samples, ctx(slos=("ttft_ms<=100", "e2e_ms<=1000", "ttft_p50_ms<=100", "error_rate<=0.1"))
    )
    assert out.goodput.meeting == 1 and out.goodput.share == pytest.approx(0.25)
    assert out.goodput.slos == ["ttft_ms<=100", "e2e_ms<=1000"]
    # Aggregate SLOs are the verdict's to judge (tests/unit/verdict/test_load_run.py).
    assert not hasattr(out, "slo_checks") and not hasattr(out, "default_checks")
    assert out.metric("ttft_p50_ms") == pytest.approx(60.0)
    with pytest.raises(KeyError):
        out.metric("nope")


def test_served_by_and_cache_headers() -> None:
    samples = [
        s(0, x_served_by="primary", x_cache="miss"),
        s(1, x_served_by="primary", x_cache="miss"),
        s(2, x_served_by="cache", x_cache="hit"),
        s(3, x_served_by="fallback", x_cache="bypass"),
        s(4),
    ]
    out = summarize(samples, ctx())
    assert out.served.counts == {"cache": 1, "fallback": 1, "primary": 2, "unknown": 1}
    assert out.served.primary_share == pytest.approx(
        0.4
    ) and out.served.fallback_share == pytest.approx(0.2)
    assert (out.cache.hits, out.cache.misses, out.cache.bypass, out.cache.unknown) == (1, 2, 1, 1)
    assert out.cache.hit_rate == pytest.approx(1 / 3)


def open_ctx(**kw: object) -> RunContext:
    base: dict[str, object] = {"open_loop": True, "arrival": "constant", "expected_requests": 10.0}
    return ctx(**{**base, **kw})


def judged(samples: list[Sample], c: RunContext) -> LoadSummary:
    """A summary with its validity judged, as every run whose numbers decide gets it."""
    out = summarize(samples, c)
    out.validity = judge_validity(out, c)
    return out


def test_a_summary_nobody_judged_is_not_valid() -> None:
    out = summarize([s(i, intended=T0 + i) for i in range(10)], open_ctx())
    assert not out.validity.valid and out.validity.reasons == ["not judged"]
    assert judged([s(i, intended=T0 + i) for i in range(10)], open_ctx()).validity.valid


def test_open_loop_reports_latency_from_intended_time() -> None:
    samples = [s(i + 0.002, e2e=100, ttft=20, intended=T0 + i) for i in range(10)]
    out = judged(samples, open_ctx())
    assert out.validity.valid, out.validity
    lat = out.latency
    assert lat.e2e_from_intended_ms is not None and lat.e2e_from_intended_ms.p50 == pytest.approx(
        102.0
    )
    assert lat.ttft_from_intended_ms is not None and lat.ttft_from_intended_ms.p50 == pytest.approx(
        22.0
    )
    assert out.generator.send_lag_ms is not None and out.generator.send_lag_ms.p50 == pytest.approx(
        2.0
    )
    assert out.generator.offered_rate_rps == pytest.approx(1.0)


def test_a_generator_that_fell_behind_makes_the_run_invalid() -> None:
    samples = [s(i + 0.2 * i, intended=T0 + i) for i in range(10)]  # lag grows to 1.8 s
    out = judged(
        samples, open_ctx(workers=[WorkerAccount(0, T0, T0 + 10, cap_waits=3, not_sent=2)])
    )
    assert not out.validity.valid
    text = " ".join(out.validity.reasons)
    assert "send lag p99" in text and "max_in_flight" in text and "never sent" in text
    assert run_outcome(out, []) == "invalid"  # however its checks come out


def test_missing_workers_few_sends_and_busy_cpu() -> None:
    samples = [s(i, intended=T0 + i) for i in range(5)]
    out = judged(
        samples,
        open_ctx(workers_expected=2, workers=[WorkerAccount(0, T0, T0 + 10, cpu_s=9.5, wall_s=10)]),
    )
    text = " ".join(out.validity.reasons)
    assert "only 1 of 2" in text and "sent 5 of 10" in text
    assert any("core" in w for w in out.validity.warnings)
    assert not judged([], ctx()).validity.valid


def test_timeseries_buckets_by_intended_second() -> None:
    samples = [
        s(0.1, intended=T0 + 0.1),
        s(0.5, intended=T0 + 0.5),
        s(1.2, e2e=3000, intended=T0 + 1.2),
    ]
    out = summarize(samples, open_ctx(expected_requests=None, duration_s=3.0))
    ts = out.timeseries
    assert [b.sent for b in ts][:3] == [2, 1, 0]
    assert ts[1].e2e_from_intended_p95_ms == pytest.approx(3000.0)
    assert ts[1].in_flight == 1 and ts[0].completed == 2
    assert sum(b.completed for b in ts) == 3 and len(ts) == 5  # span reaches the last completion


def test_windows_select_by_meant_time_and_summarize_phases() -> None:
    samples = [s(i, intended=T0 + i, e2e=(3000 if 3 <= i < 6 else 100)) for i in range(10)]
    ph = phases(samples, open_ctx(), T0 + 3, T0 + 6)
    assert set(ph) == {"before", "during", "after"}
    assert ph["during"].latency.e2e_ms.p50 == pytest.approx(3000.0)
    assert ph["before"].latency.e2e_ms.p50 == pytest.approx(100.0)


def test_a_request_in_flight_when_the_fault_began_counts_as_during() -> None:
    # Sent at 2.8 s, done at 3.3 s: it met a fault that began at 3 s, so it is not "before".
    in_flight = s(2.8, intended=T0 + 2.8, e2e=500, status=0, error="connect")
    samples = [s(i, intended=T0 + i) for i in (0, 1, 2)] + [in_flight, s(4, intended=T0 + 4)]
    samples.append(s(6, intended=T0 + 6))
    ph = phases(samples, open_ctx(), T0 + 3, T0 + 6)
    assert (ph["before"].counts.total, ph["before"].counts.errors) == (3, 0)
    assert (ph["during"].counts.total, ph["during"].counts.errors) == (2, 1)
    assert ph["after"].counts.total == 1


def test_an_interrupted_run_is_partial_and_not_blamed_on_the_generator() -> None:
    # 4 s of a 10 s constant schedule ran: 4 arrivals were due, 3 recorded (one was in flight).
    samples = [s(i, intended=T0 + i) for i in range(3)]
    out = judged(
        samples,
        open_ctx(duration_s=4.0, expected_requests=4.0, workers=[], interrupted_after_s=4.0),
    )
    assert not out.validity.valid
    assert out.validity.reasons == [
        "interrupted after 4.0s: a partial run, its numbers cover only the part that ran"
    ]  # no "only 0 of 1 workers finished", no "sent 3 of 4"
    assert out.window.duration_s == 4.0 and out.generator.offered_rate_rps == pytest.approx(1.0)
    assert out.counts.total == 3 and len(out.timeseries) == 4


def test_outcomes_per_second_by_meant_time() -> None:
    from harness.measure.timeseries import outcomes_per_second

    samples = [
        s(0.2, intended=T0 + 0.2, x_served_by="primary"),
        s(0.9, intended=T0 + 0.5, x_served_by="fallback"),  # sent late: counts where meant
        s(1.1, intended=T0 + 1.1, status=503, error="http", x_served_by="degraded"),
        s(1.5, intended=T0 + 1.5, status=0, error="connect"),
        s(2.5, intended=T0 + 2.5, x_served_by="cache"),
        s(2.6, intended=T0 + 2.6),  # an answer without X-Served-By
    ]
    rows = outcomes_per_second(samples, T0, 3.0)
    assert [(r["primary"], r["fallback"]) for r in rows] == [(1, 1), (0, 0), (0, 0)]
    assert (rows[1]["degraded"], rows[1]["error"]) == (1, 1)
    assert (rows[2]["cache"], rows[2]["other"]) == (1, 1)


def test_itl_is_per_request_over_tokens_and_token_gaps_are_pooled() -> None:
    # Nine requests stream one token per chunk, 10 ms apart. One server sends its 11 tokens in
    # two chunks 100 ms apart: its ITL is 100 / 10 = 10 ms (guidellm's definition: tokens from
    # `usage`), while its one gap between chunks is 100 ms.
    even = [s(i, token_gaps_ms=[10.0] * 10, output_tokens=11) for i in range(9)]
    bunched = s(9, token_gaps_ms=[100.0], output_tokens=11, output_chunks=2)
    out = summarize([*even, bunched], ctx(slos=("itl_ms<=20", "token_gap_max_ms<=50")))
    lat = out.latency
    assert lat.itl_ms.count == 10 and lat.itl_ms.max == pytest.approx(10.0)
    assert lat.token_gap_ms.count == 91 and lat.token_gap_ms.max == pytest.approx(100.0)
    assert out.metric("itl_p95_ms") == pytest.approx(10.0)
    assert out.metric("token_gap_max_ms") == pytest.approx(100.0)
    # Per request: every ITL meets 20 ms; the bunched request's 100 ms gap misses 50 ms.
    assert out.goodput.meeting == 9
    assert bunched.itl_ms == pytest.approx(10.0) and bunched.token_gap_max_ms == 100.0


def behind(n: int, send_every_s: float, done_every_s: float) -> list[Sample]:
    """Request i is meant and sent at i * send_every_s and done at i * done_every_s + 0.1 s."""
    return [
        s(
            i * send_every_s,
            e2e=(i * (done_every_s - send_every_s) + 0.1) * 1000.0,
            intended=T0 + i * send_every_s,
        )
        for i in range(n)
    ]


def test_rates_count_the_scheduled_window_and_the_drain_is_apart() -> None:
    # 4 req/s offered for 10 s; the server finishes one every 0.375 s (2.67/s): it falls behind.
    out = judged(behind(40, 0.25, 0.375), open_ctx(expected_requests=40.0))
    g = out.generator
    assert g.offered_rate_rps == pytest.approx(4.0) and g.sent_rate_rps == pytest.approx(4.0)
    assert g.achieved_rate_rps == pytest.approx(2.7)  # 27 done within the 10 s window
    assert out.throughput.requests_per_second == g.achieved_rate_rps  # one figure
    assert g.achieved_ratio == pytest.approx(2.7 / 4.0)
    assert g.completed_after_window == 13 and g.drain_s == pytest.approx(39 * 0.375 + 0.1 - 10)
    assert out.validity.valid  # falling behind is a failed check (the verdict's), not invalid


def test_a_server_that_keeps_up_achieves_what_was_sent() -> None:
    out = summarize(behind(40, 0.25, 0.25), open_ctx(expected_requests=40.0))
    assert out.generator.achieved_ratio == pytest.approx(1.0) and out.generator.drain_s == 0.0
