"""Proof of accuracy: against llm-d-inference-sim set to known timings, the measured medians land
within 5% of what the simulator was told to do (closed loop, and open loop from intended times)."""

from __future__ import annotations

from pathlib import Path

import pytest
from load_fixtures import *  # noqa: F403 (fixtures)
from load_fixtures import SimFactory

from harness.clients.models import Target
from harness.load.execute import measure_load
from harness.spec.load import ClosedLoop, LoadSpec, OpenLoop, Workload
from harness.verdict.load_run import run_verdict

pytestmark = [pytest.mark.integration, pytest.mark.load, pytest.mark.serial]

TTFT_MS, ITL_MS, TOKENS = 200, 50, 16
# Fixed work per request; few requests in flight so the 2-core machine is not the bottleneck.
WORK = Workload(prompt_words=16, max_tokens=TOKENS, ignore_eos=True)


def within(measured: float | None, configured: float, tolerance: float = 0.05) -> bool:
    return measured is not None and abs(measured - configured) <= tolerance * configured


def test_closed_loop_medians_match_simulator_timings(simulator: SimFactory, tmp_path: Path) -> None:
    sim = simulator(ttft_ms=TTFT_MS, itl_ms=ITL_MS)
    spec = LoadSpec(duration_s=10, load=ClosedLoop(users=4), workload=WORK, drain_timeout_s=10)
    report = measure_load(
        spec, Target(url=sim.url), tmp_path / "run", judge=run_verdict, server_view=False
    )
    s = report.summary
    print(
        f"\nclosed loop: n={s.counts.total} "
        f"ttft p50 {s.latency.ttft_ms.p50:.2f} ms (set {TTFT_MS}), "
        f"itl p50 {s.latency.itl_ms.p50:.2f} ms (set {ITL_MS}), "
        f"tpot p50 {s.latency.tpot_ms.p50:.2f} ms"
    )

    assert s.counts.errors == 0, s.counts
    assert s.latency.ttft_ms.count >= 30  # ~4 users x 10 s / 0.95 s per request
    assert within(s.latency.ttft_ms.p50, TTFT_MS), s.latency.ttft_ms
    assert within(s.latency.itl_ms.p50, ITL_MS), s.latency.itl_ms
    assert within(s.latency.tpot_ms.p50, ITL_MS), s.latency.tpot_ms
    # e2e = ttft + (tokens - 1) gaps
    assert within(s.latency.e2e_ms.p50, TTFT_MS + (TOKENS - 1) * ITL_MS), s.latency.e2e_ms
    # token counts: the server's usage and the client's chunk count agree
    assert s.counts.usage_reported == s.counts.ok
    assert s.counts.usage_chunk_mismatch == 0
    assert s.counts.output_tokens == TOKENS * s.counts.ok
    # itl: one figure per request; token_gap: every gap of every request
    assert s.latency.itl_ms.count == s.counts.ok
    assert s.latency.token_gap_ms.count == (TOKENS - 1) * s.counts.ok
    assert within(s.latency.token_gap_ms.p50, ITL_MS), s.latency.token_gap_ms
    assert s.validity.valid, s.validity


def test_open_loop_latency_from_intended_time_matches_when_generator_keeps_up(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(ttft_ms=TTFT_MS, itl_ms=ITL_MS)
    spec = LoadSpec(
        duration_s=8,
        load=OpenLoop(rate_rps=4, arrival="poisson"),
        workload=WORK,
        drain_timeout_s=10,
    )
    report = measure_load(
        spec, Target(url=sim.url), tmp_path / "run", judge=run_verdict, server_view=False
    )
    s = report.summary
    lag = s.generator.send_lag_ms
    assert lag is not None and s.latency.ttft_from_intended_ms is not None
    print(
        f"\nopen loop: n={s.counts.total} ttft from intended p50 "
        f"{s.latency.ttft_from_intended_ms.p50:.2f} ms, itl p50 {s.latency.itl_ms.p50:.2f} ms, "
        f"send lag p50 {lag.p50:.2f} ms p99 {lag.p99:.2f} ms"
    )

    assert s.validity.valid, s.validity
    assert s.counts.errors == 0
    assert s.counts.total >= 15  # Poisson around 32
    assert lag.p50 is not None and lag.p50 < 5.0
    assert within(s.latency.ttft_from_intended_ms.p50, TTFT_MS), s.latency.ttft_from_intended_ms
    assert within(s.latency.ttft_ms.p50, TTFT_MS)
    assert within(s.latency.itl_ms.p50, ITL_MS)
