"""A real load report for rendering tests: summarized from exact samples, not a hand-kept dict."""

from __future__ import annotations

from harness.data.samples import Sample
from harness.measure.summary import LoadSummary, RunContext, summarize
from harness.provenance import HostInfo
from harness.report.model import GateLoadReport
from harness.verdict.validity import judge_validity


def load_report(ttft_ms: list[float], start_s: float = 1000.0) -> GateLoadReport:
    samples = [
        Sample(
            worker=0,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id=f"p{i}",
            repeated=False,
            intended_s=start_s + i * 0.5,
            sent_s=start_s + i * 0.5,
            e2e_ms=v + 200.0,
            status=200,
            ttft_ms=v,
            output_tokens=8,
            output_chunks=8,
            x_served_by="primary",
        )
        for i, v in enumerate(ttft_ms)
    ]
    ctx = RunContext(start_s=start_s, duration_s=len(ttft_ms) * 0.5, open_loop=True)
    return GateLoadReport(
        started_at="2026-11-30T00:00:00Z",
        host=HostInfo(hostname="h", platform="p", python="3.11", cpus=2),
        config={},
        target={},
        model="m",
        outcome="passed",
        summary=judged(summarize(samples, ctx), ctx),
        samples_dir="samples",
        locust_log="locust.log",
    )


def judged(summary: LoadSummary, ctx: RunContext) -> LoadSummary:
    summary.validity = judge_validity(summary, ctx)
    return summary
