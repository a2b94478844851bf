"""The TTFT breakdown where people read it: `harness load`'s console summary, the gate's
summary.md table and report.html's stacked bars."""

from __future__ import annotations

from load_report_fixture import load_report

from harness.data.samples import Sample
from harness.load.report import render
from harness.measure.breakdown import build_breakdown
from harness.report.model import RunReport
from harness.report.render_html import render_html
from harness.report.render_text import render_markdown
from harness.verdict.breakdown import judge_agreement


def samples() -> list[Sample]:
    return [
        Sample(
            worker=0,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id=f"p{i}",
            repeated=False,
            intended_s=None,
            sent_s=float(i),
            e2e_ms=100.0,
            status=200,
            ttft_ms=40.0 + i,
            first_event_ms=39.0 + i,
            gateway_ms=1.0,
            upstream_ms=35.0 + i,
            server_prefill_ms=30.0 + i,
            server_decode_ms=55.0,
        )
        for i in range(20)
    ]


def report() -> RunReport:
    load = load_report([40.0 + i for i in range(20)])
    b = build_breakdown(samples())
    assert b is not None
    b.agreement = judge_agreement(b)
    load.ttft_breakdown = b
    return RunReport(name="t", outcome="passed", load=load)


def test_the_console_summary_has_the_table_and_the_check() -> None:
    text = render(report().load)  # type: ignore[arg-type]
    assert "where the time to first token went (20 requests):" in text
    assert "model server prefill" in text and "llama.cpp timings.prompt_ms" in text
    assert "= client TTFT" in text and "unexplained per request: p50 3.0 ms" in text
    assert "CHECK PASS  client vs server TTFT" in text
    assert "after the first token: client (e2e - TTFT) p50 50.5 ms (n=20)" in text
    assert "model server's own decode p50 55.0 ms (n=20)" in text


def test_markdown_and_html_show_the_breakdown_with_n() -> None:
    r = report()
    md = render_markdown(r)
    assert "## Where the time to first token went" in md
    assert "| part | p50 ms | p95 ms | measured by |" in md
    assert "| gateway, own time | 1.0 | 1.0 |" in md
    assert "20 requests broken down" in md and "Client vs server: agree" in md
    page = render_html(r)
    assert 'aria-label="Where the time to first token went"' in page
    assert page.count("<rect") >= 2 * 4  # two stacked bars of several parts, and the legend
    assert "(n=" in page


def test_no_breakdown_no_section() -> None:
    r = report()
    assert r.load is not None
    r.load.ttft_breakdown = None
    assert "Where the time to first token went" not in render_markdown(r)
    assert "Where the time to first token went" not in render_html(r)
