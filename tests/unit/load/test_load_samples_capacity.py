"""Sample files (lenient reading, tailing) and the capacity search (with a fake runner)."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness.data.samples import Sample, SampleTail, SampleWriter, read_samples
from harness.load.capacity import CapacityStep, SearchPlan, search


def sample(seq: int, sent: float, **kw: object) -> Sample:
    return Sample(
        worker=0,
        seq=seq,
        kind="chat",
        tenant="t",
        prompt_id="p",
        repeated=False,
        intended_s=None,
        sent_s=sent,
        e2e_ms=100.0,
        **kw,
    )  # type: ignore[arg-type]


def test_samples_round_trip_and_torn_lines_are_skipped(tmp_path: Path) -> None:
    w = SampleWriter(tmp_path / "samples-000-1.jsonl")
    w.write(sample(1, 2.0, token_gaps_ms=[1.5, 2.5], output_tokens=3))
    w.write(sample(0, 1.0, error="http", status=500))
    w.close()
    with (tmp_path / "samples-001-2.jsonl").open("w") as f:
        f.write(sample(2, 1.5).to_json() + "\n" + '{"worker": 1, "seq": 3, "extra_field": 1')
    got = read_samples(tmp_path)
    assert [s.seq for s in got] == [0, 2, 1]  # ordered by send time, torn line dropped
    assert got[2].token_gaps_ms == [1.5, 2.5] and got[2].tokens == 3 and got[0].ok is False


def test_every_field_round_trips_exactly_and_text_is_utf8(tmp_path: Path) -> None:
    """What a worker writes is what the harness reads back, field for field: floats to the last
    digit, None as null, lists, and text beyond ASCII (an error body in another language)."""
    full = sample(
        7,
        1.0 / 3.0,
        status=503,
        error="http",
        error_detail='{"error": "überlastet: réessayez"}',
        ttfb_ms=0.1 + 0.2,
        token_gaps_ms=[1e-9, 12345.678901234],
        x_served_by="degraded",
        retry_after="1",
        cached_tokens=0,
    )
    w = SampleWriter(tmp_path / "samples-000-1.jsonl")
    w.write(full)
    w.close()
    assert "überlastet" in (tmp_path / "samples-000-1.jsonl").read_bytes().decode("utf-8")
    assert read_samples(tmp_path) == [full]


def test_unknown_fields_are_ignored(tmp_path: Path) -> None:
    line = sample(0, 1.0).to_json()[:-1] + ',"added_later": 5}\n'
    (tmp_path / "samples-000-1.jsonl").write_text(line)
    assert len(read_samples(tmp_path)) == 1


def test_tail_returns_only_new_complete_lines(tmp_path: Path) -> None:
    p = tmp_path / "samples-000-1.jsonl"
    tail = SampleTail(tmp_path)
    assert tail.new_samples() == []
    p.write_text(sample(0, 1.0).to_json() + "\n" + sample(1, 2.0).to_json()[:10])
    assert [s.seq for s in tail.new_samples()] == [0]
    with p.open("a") as f:
        f.write(sample(1, 2.0).to_json()[10:] + "\n")
    assert [s.seq for s in tail.new_samples()] == [1]
    assert tail.new_samples() == []


def test_derived_figures() -> None:
    s = sample(0, 10.0, ttft_ms=40.0, output_chunks=5)
    s.intended_s = 9.99
    assert s.tpot_ms == pytest.approx(15.0) and s.send_lag_ms == pytest.approx(10.0)
    assert s.done_s == pytest.approx(10.1)


def fake(capacity: float, generator_limit: float = 1e9):  # type: ignore[no-untyped-def]
    tried: list[float] = []

    def run_at(rate: float) -> CapacityStep:
        tried.append(rate)
        if rate > generator_limit:
            return CapacityStep(rate_rps=rate, outcome="invalid", reasons=["generator fell behind"])
        return CapacityStep(
            rate_rps=rate, outcome="passed" if rate <= capacity else "failed", reasons=[]
        )

    return run_at, tried


def test_search_doubles_then_bisects() -> None:
    run_at, tried = fake(capacity=11.0)
    r = search(run_at, SearchPlan(start_rps=1, max_steps=20, precision=0.05), ["ttft_p95_ms<=1"])
    assert tried[:5] == [1, 2, 4, 8, 16]
    assert r.bounded_by == "slo" and r.capacity_rps is not None
    assert 11 * 0.95 <= r.capacity_rps <= 11
    assert len(r.steps) == len(tried) <= 20


def test_search_stops_at_the_step_budget_and_the_max_rate() -> None:
    run_at, tried = fake(capacity=11.0)
    r = search(run_at, SearchPlan(start_rps=1, max_steps=3), [])
    assert r.bounded_by == "steps" and r.capacity_rps == 4 and len(tried) == 3
    run_at, _ = fake(capacity=1e6)
    r = search(run_at, SearchPlan(start_rps=1, max_rps=10, max_steps=10), [])
    assert r.bounded_by == "max_rate" and r.capacity_rps == 10


def test_search_halves_when_the_first_rate_fails_and_reports_no_capacity() -> None:
    run_at, tried = fake(capacity=0.3)
    r = search(run_at, SearchPlan(start_rps=2, max_steps=10, precision=0.5), [])
    assert tried[:3] == [2, 1, 0.5] and r.capacity_rps is not None and r.capacity_rps <= 0.3
    run_at, _ = fake(capacity=0.0)
    r = search(run_at, SearchPlan(start_rps=1, min_rps=0.2, max_steps=10), [])
    assert r.capacity_rps is None and r.bounded_by == "min_rate"


def test_search_stops_when_the_generator_cannot_keep_up() -> None:
    run_at, _ = fake(capacity=1000, generator_limit=10)
    r = search(run_at, SearchPlan(start_rps=2, max_steps=10), [])
    assert r.bounded_by == "generator" and r.capacity_rps == 8
    assert "at least 8" in r.explanation and "--processes" in r.explanation


def test_an_interrupted_step_ends_the_search_with_the_steps_so_far() -> None:
    run_at, _ = fake(capacity=11.0)

    def stopped_at_8(rate: float) -> CapacityStep:
        step = run_at(rate)
        return step.model_copy(update={"outcome": "interrupted"}) if rate == 8 else step

    r = search(stopped_at_8, SearchPlan(start_rps=1, max_steps=10), ["ttft_p95_ms<=1"])
    assert r.outcome == "interrupted" and r.bounded_by == "interrupted"
    assert [s.rate_rps for s in r.steps] == [1, 2, 4, 8] and r.steps[-1].outcome == "interrupted"
    assert r.capacity_rps == 4 and "after 3 complete step(s)" in r.explanation
    assert "at least 4 req/s so far" in r.explanation


def test_an_interrupt_between_steps_also_ends_the_search() -> None:
    calls: list[float] = []

    def run_at(rate: float) -> CapacityStep:
        calls.append(rate)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return CapacityStep(rate_rps=rate, outcome="failed", reasons=["too slow"])

    r = search(run_at, SearchPlan(start_rps=4, max_steps=10), [])
    assert r.outcome == "interrupted" and [s.rate_rps for s in r.steps] == [4]
    assert r.capacity_rps is None and "no rate passed so far" in r.explanation
    assert "fail at 4 req/s" in r.explanation
