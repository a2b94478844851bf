"""The server-side view: Prometheus, scraping the simulator, reports the run the client measured."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from load_fixtures import *  # noqa: F403 (fixtures)
from load_fixtures import SimFactory

from harness.clients.models import Target
from harness.load.execute import measure_load
from harness.load.report import render
from harness.spec.load import LoadSpec, OpenLoop, Workload
from harness.verdict.load_run import run_verdict

pytestmark = [pytest.mark.integration, pytest.mark.load]


def test_server_view_sits_beside_the_client_view(
    simulator: SimFactory, prometheus: Callable[[list[str]], str], tmp_path: Path
) -> None:
    sim = simulator(ttft_ms=200, itl_ms=20)
    prom = prometheus([f"127.0.0.1:{sim.port}"])
    spec = LoadSpec(
        duration_s=8,
        load=OpenLoop(rate_rps=5, arrival="constant"),
        workload=Workload(max_tokens=10, ignore_eos=True),
    )
    report = measure_load(
        spec, Target(url=sim.url, prometheus=prom), tmp_path / "run", judge=run_verdict
    )
    print("\n" + render(report))
    view = report.server
    assert view is not None and not view.errors, view
    (vllm,) = [p for p in view.profiles if p.profile == "vllm"]
    v = vllm.values
    client = report.summary
    # Rates over the same window agree (Prometheus extrapolates; allow 30%).
    assert v["request_rate_rps"] == pytest.approx(client.throughput.requests_per_second, rel=0.3)
    assert v["output_tokens_per_second"] == pytest.approx(
        client.throughput.output_tokens_per_second, rel=0.3
    )
    # Histogram quantiles are bucket estimates: 200 ms lies in the simulator's (0.1, 0.25] bucket.
    assert v["ttft_p50_ms"] is not None and 100 <= v["ttft_p50_ms"] <= 250
    assert v["running_max"] is not None and v["running_max"] >= 1
    assert (
        "ttft_p50_ms" in vllm.queries
        and "vllm:time_to_first_token_seconds_bucket" in vllm.queries["ttft_p50_ms"]
    )
