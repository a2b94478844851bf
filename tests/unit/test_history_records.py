"""One history record for the gate and the nightly: records written before it (the gate's
`metrics`, the nightly's `gate_outcome` and `blocking`) read under today's names, and a run's
figures are the same whether taken from its summary or from its stored samples."""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pytest

from harness.data.samples import Sample
from harness.measure.history import (
    FIGURES,
    HistoryRecord,
    append_history,
    figures_of_samples,
    figures_of_summary,
    read_history,
)
from harness.measure.sample_file import SAMPLE_FILE, read_sample_file, write_sample_file
from harness.measure.summary import RunContext, summarize
from harness.report.model import RunReport
from harness.verdict.baseline import is_accepted

OLD = Path(__file__).parents[1] / "fixtures" / "old-runs"

OLD_GATE = {
    "name": "default",
    "started_at": "2026-12-05T18:55:41Z",
    "git_sha": "3120c46",
    "outcome": "passed",
    "metrics": {"ttft_p95_ms": 353.6, "output_tokens_per_second": 20.9},
    "stack": "reference (local)",
    "regressed": False,
}
OLD_NIGHT = {
    "run": "run-2",
    "started_at": "2026-12-06T02:00:00Z",
    "gate_outcome": "passed",
    "label": "regressed",
    "blocking": ["ttft_ms"],
    "accepted": False,
    "requests": 105,
    "figures": {"ttft_p50_ms": 260.0},
}


def test_an_old_gate_record_reads_its_metrics_as_figures(tmp_path: Path) -> None:
    r = HistoryRecord.model_validate(OLD_GATE)
    assert r.figures == {"ttft_p95_ms": 353.6, "output_tokens_per_second": 20.9}
    assert r.metrics is r.figures  # the old attribute still answers
    assert r.accepted is None and is_accepted(r)  # not recorded: judged by the same rule
    assert not is_accepted(r.model_copy(update={"regressed": True}))
    # Written again, it is written under today's name only.
    path = tmp_path / "h.jsonl"
    append_history(path, r)
    stored = json.loads(path.read_text())
    assert "metrics" not in stored and stored["figures"]["ttft_p95_ms"] == 353.6
    assert read_history(path)[0].figures == r.figures


def test_an_old_nightly_record_reads_its_gate_outcome_and_what_blocked() -> None:
    r = HistoryRecord.model_validate(OLD_NIGHT)
    assert r.outcome == "passed" and r.run == "run-2" and r.name == ""
    assert r.regressed and r.blocking == ["ttft_ms"] and r.label == "regressed"
    assert r.accepted is False and not is_accepted(r)
    clean = HistoryRecord.model_validate({**OLD_NIGHT, "blocking": [], "accepted": True})
    assert not clean.regressed and is_accepted(clean)
    # Today's name wins where a line has both.
    both = HistoryRecord.model_validate({**OLD_GATE, "figures": {"ttft_p95_ms": 1.0}})
    assert both.figures == {"ttft_p95_ms": 1.0}


def test_an_old_reports_history_reads_as_figures() -> None:
    report = RunReport.model_validate_json(gzip.decompress((OLD / "report.json.gz").read_bytes()))
    assert [h.current for h in report.history] == [True]
    assert report.history[0].figures["ttft_p95_ms"] == pytest.approx(353.62, abs=0.01)
    assert "metrics" not in report.model_dump(mode="json")["history"][0]


def _samples(n: int) -> list[Sample]:
    out = []
    for i in range(n):
        ttft = 40.0 + (i * 7) % 23
        gaps = [4.0 + (i + k) % 5 for k in range(7)]
        out.append(
            Sample(
                worker=0,
                seq=i,
                kind="chat",
                tenant="t",
                prompt_id=f"p{i}",
                repeated=False,
                intended_s=1000.0 + i * 0.25,
                sent_s=1000.0 + i * 0.25,
                e2e_ms=ttft + sum(gaps) + 1.0,
                status=200,
                ttfb_ms=ttft / 2,
                ttft_ms=ttft,
                token_gaps_ms=gaps,
                output_tokens=8,
                output_chunks=8,
                x_served_by="primary",
            )
        )
    return out


def test_a_runs_figures_are_the_same_from_its_summary_and_its_samples(tmp_path: Path) -> None:
    samples = _samples(60)
    summary = summarize(samples, RunContext(start_s=1000.0, duration_s=15.0, open_loop=True))
    write_sample_file(tmp_path / SAMPLE_FILE, samples)
    table = read_sample_file(tmp_path / SAMPLE_FILE)
    tps = summary.throughput.output_tokens_per_second
    from_summary, from_samples = figures_of_summary(summary), figures_of_samples(table, tps)
    assert list(from_summary) == list(from_samples) == list(FIGURES)
    for name in FIGURES:
        expected = from_summary[name]
        assert expected is not None, name
        # The sample file keeps 0.01 ms.
        assert from_samples[name] == pytest.approx(expected, abs=0.01), name
    assert figures_of_samples(table)["output_tokens_per_second"] is None
