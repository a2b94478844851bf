"""Coordinated omission, shown: the model server is frozen (SIGSTOP) for 3 s in the middle of a run.

The open-loop run keeps sending on schedule, so every request meant for the stall waits and its
latency from the intended send time shows it. A closed-loop run of the same length only has its
few users stuck once each: most of the stall never appears in its percentiles.
"""

from __future__ import annotations

import threading
import time
from pathlib import Path

import pytest
from load_fixtures import *  # noqa: F403 (fixtures)
from load_fixtures import Sim, SimFactory

from harness.clients.models import Target
from harness.data.samples import read_samples
from harness.load.execute import measure_load
from harness.load.report import LoadReport
from harness.spec.load import ClosedLoop, LoadModel, LoadSpec, OpenLoop, Workload
from harness.verdict.load_run import run_verdict

pytestmark = [pytest.mark.integration, pytest.mark.load, pytest.mark.serial]

STALL_S = 3.0
STALL_AFTER_S = 3.0  # after the first request went out
SLOW_MS = 1000.0


def run_with_stall(sim: Sim, load: LoadModel, run_dir: Path) -> tuple[LoadReport, list[float]]:
    spec = LoadSpec(
        duration_s=10,
        load=load,
        workload=Workload(prompt_words=8, max_tokens=10, ignore_eos=True),
        drain_timeout_s=10,
    )
    samples_dir = run_dir / "samples"
    stalled = threading.Event()

    def freeze_mid_run() -> None:
        deadline = time.monotonic() + 60
        while not any(samples_dir.glob("*.jsonl")) and time.monotonic() < deadline:
            time.sleep(0.02)
        time.sleep(STALL_AFTER_S)
        sim.pause()
        try:
            time.sleep(STALL_S)
        finally:
            sim.resume()
            stalled.set()

    t = threading.Thread(target=freeze_mid_run, daemon=True)
    t.start()
    try:
        report = measure_load(
            spec, Target(url=sim.url), run_dir, judge=run_verdict, server_view=False
        )
    finally:
        t.join(timeout=30)
        sim.resume()
    assert stalled.is_set(), "the stall did not happen during the run"
    lat = [
        (s.done_s - (s.intended_s if s.intended_s is not None else s.sent_s)) * 1000
        for s in read_samples(samples_dir)
    ]
    return report, lat


def test_open_loop_shows_a_stall_that_closed_loop_hides(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(ttft_ms=50, itl_ms=10)  # ~140 ms per request when healthy

    open_report, open_lat = run_with_stall(
        sim, OpenLoop(rate_rps=20, arrival="constant"), tmp_path / "open"
    )
    closed_report, closed_lat = run_with_stall(sim, ClosedLoop(users=4), tmp_path / "closed")

    open_slow = sum(v > SLOW_MS for v in open_lat) / len(open_lat)
    closed_slow = sum(v > SLOW_MS for v in closed_lat) / len(closed_lat)
    o, c = open_report.summary, closed_report.summary
    print(
        f"\nopen loop:   n={len(open_lat)} slow(>1s)={open_slow:.1%} "
        f"e2e from intended p50/p90/p99 = {o.latency.e2e_from_intended_ms}\n"
        f"closed loop: n={len(closed_lat)} slow(>1s)={closed_slow:.1%} "
        f"e2e = {c.latency.e2e_ms}"
    )
    # The generator kept its schedule through the stall: the latency is the server's.
    assert o.validity.valid, o.validity
    assert o.counts.errors == 0 and c.counts.errors == 0
    # Open loop: every request meant for the 3 s stall (~60 of ~200) waited.
    assert open_slow >= 0.15
    dist = o.latency.e2e_from_intended_ms
    assert dist is not None and dist.p90 is not None and dist.p90 >= SLOW_MS
    assert max(b.e2e_from_intended_p95_ms or 0 for b in o.timeseries) >= 2000
    # Closed loop: only its 4 users were stuck; the stall hides in the tail.
    assert closed_slow <= 0.08
    assert c.latency.e2e_ms.p90 is not None and c.latency.e2e_ms.p90 < 500
    assert open_slow >= 4 * closed_slow
