"""Where the time to first token goes, on the simulated stack: the parts each record measures
(the gateway's Server-Timing, the simulator's histograms, the client's own clock) add up to the
client's TTFT within a few milliseconds at p50, and the agreement check warns when a latency
toxic between the gateway and the model servers adds time nobody accounts for.

One stack for the module; two short loads (the reference, then the planted defect).
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from harness.clients.toxiproxy import ToxiproxyClient
from harness.load.execute import measure_load
from harness.load.report import LoadReport, render
from harness.measure.breakdown import TtftBreakdown
from harness.spec.load import LoadSpec, OpenLoop, Workload
from harness.spec.loader import load_yaml_model
from harness.spec.stack import StackSpec
from harness.stack import RunningStack, start_stack
from harness.stack.target import from_stack
from harness.verdict.breakdown import judge_agreement
from harness.verdict.load_run import run_verdict

pytestmark = [pytest.mark.integration, pytest.mark.load]

SIM_STACK = Path(__file__).parents[1] / "fixtures" / "sim-stack.yaml"
SIM_TTFT_MS = 30.0  # the fixture's primary pool
TOXIC_MS = 100


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningStack]:
    spec = load_yaml_model(StackSpec, SIM_STACK)
    with start_stack(spec, run_dir=tmp_path_factory.mktemp("breakdown") / "stack") as running:
        yield running


def run(stack: RunningStack, run_dir: Path) -> tuple[LoadReport, TtftBreakdown]:
    spec = LoadSpec(
        duration_s=3,
        load=OpenLoop(rate_rps=6, arrival="constant"),
        workload=Workload(max_tokens=6, ignore_eos=True),
        seed=7,
    )
    report = measure_load(
        spec, from_stack(stack), run_dir, judge=run_verdict, judge_breakdown=judge_agreement
    )
    print("\n" + render(report))
    assert report.ttft_breakdown is not None
    return report, report.ttft_breakdown


def test_the_parts_add_up_to_the_clients_ttft_and_client_and_server_agree(
    stack: RunningStack, tmp_path: Path
) -> None:
    report, b = run(stack, tmp_path / "reference")
    assert b.requests >= 12 and b.left_out == {}, b
    # The server's part is the simulator's histograms' mean, and says so.
    assert b.server_source == {"histogram mean": b.requests}
    (primary,) = [m for m in b.server_means if m.pool == "primary"]
    assert primary.prefill_ms is not None
    assert SIM_TTFT_MS <= primary.prefill_ms < SIM_TTFT_MS + 10
    p50 = b.band(50.0)
    assert p50 is not None
    parts = p50.parts_ms
    assert parts["server_prefill_ms"] == pytest.approx(primary.prefill_ms)
    assert 0 < parts["gateway_ms"] < 20
    # What the gateway, the server and the client's own clock measure adds up to the client's
    # TTFT within a few milliseconds at p50: the part nobody measured is that small.
    unexplained = b.unexplained_ms.p50
    assert unexplained is not None and abs(unexplained) < 5, b.unexplained_ms
    assert b.ttft_ms.p50 == pytest.approx(report.summary.latency.ttft_ms.p50)
    assert b.agreement is not None and b.agreement.decision == "agree", b.agreement
    assert "CHECK PASS  client vs server TTFT" in render(report)


def test_a_latency_toxic_between_gateway_and_model_server_warns(
    stack: RunningStack, tmp_path: Path
) -> None:
    proxies = [p for p in stack.endpoints.proxies if p.startswith("primary-")]
    assert proxies
    with ToxiproxyClient(stack.endpoints.toxiproxy) as toxi:
        for p in proxies:
            toxi.add_toxic(p, "latency", {"latency": TOXIC_MS, "jitter": 0}, name="slow")
        try:
            report, b = run(stack, tmp_path / "toxic")
        finally:
            toxi.reset()
    p50 = b.band(50.0)
    assert p50 is not None
    # The gateway waited the toxic's time; the simulator's own prefill did not change.
    assert p50.parts_ms["upstream_rest_ms"] > 0.8 * TOXIC_MS, p50
    assert p50.parts_ms["server_prefill_ms"] < SIM_TTFT_MS + 10
    a = b.agreement
    assert a is not None and a.decision == "warn", a
    assert "longer than the gateway and the model server account for" in a.reason
    assert "between the gateway and the model server" in a.reason
    assert report.outcome != "failed"  # it warns, never fails
    assert "WARN  client vs server TTFT" in render(report)
