"""The nightly history folder: first run pinned, a regressed run blocks and never joins the
baseline, runs kept and pruned, change points on the trend page (no stack: synthetic runs)."""

from __future__ import annotations

from pathlib import Path

import pytest
from runs_fixture import make_run, synthetic_samples

from harness.compare.change_points import change_points
from harness.measure.history import pinned
from harness.measure.history import read_folder as read_history
from harness.nightly.run import BaselineRefused, record_nightly, set_baseline
from harness.spec.compare import CompareSpec

SPEC = CompareSpec(resamples=500, history_window=8)


def _night(tmp: Path, i: int, factor: float = 1.0, outcome: str = "passed") -> Path:
    return make_run(
        tmp / "runs" / f"202612{i:02d}00-nightly",
        synthetic_samples(400, seed=100 + i, ttft_factor=factor),
        outcome=outcome,
        sha=f"{i:010d}",
        started_at=f"2026-12-{i + 1:02d}T02:00:00+00:00",
    )


def test_a_regression_blocks_and_never_becomes_the_baseline(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    first = record_nightly(hist, _night(tmp_path, 0), SPEC)
    assert first.record.label == "no baseline" and first.record.accepted
    assert first.pinned is not None and first.pinned.run == "2026120000-nightly"
    assert any("now the pinned baseline" in x for x in first.lines)

    same = record_nightly(hist, _night(tmp_path, 1), SPEC)
    assert same.record.label in ("same", "inconclusive") and not same.blocking
    assert same.record.accepted and same.previous is not None

    slow_dir = _night(tmp_path, 2, factor=1.2)
    slow = record_nightly(hist, slow_dir, SPEC)
    assert slow.blocking and slow.record.blocking == ["ttft_ms"] and not slow.record.accepted
    assert (slow_dir / "vs-baseline" / "compare.html").is_file()
    assert (slow_dir / "trend.html").is_file() and (hist / "trend.html").is_file()
    # The baseline is still the first run; the slow one cannot be pinned by hand either.
    p = pinned(hist)
    assert p is not None and p.run == "2026120000-nightly"
    from harness.compare.runs import load_run

    with pytest.raises(BaselineRefused, match="recorded it as regressed"):
        set_baseline(hist, load_run(slow_dir), SPEC, "try")
    # The next night is compared with the last *accepted* run, not the slow one.
    nxt = record_nightly(hist, _night(tmp_path, 3), SPEC)
    assert nxt.previous is not None and nxt.previous.a.path.endswith("2026120100-nightly")
    assert [r.accepted for r in read_history(hist)] == [True, True, False, True]


def test_failed_gate_is_recorded_but_not_accepted_nor_pinned(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    r = record_nightly(hist, _night(tmp_path, 0, outcome="failed"), SPEC)
    assert not r.record.accepted and r.pinned is None and pinned(hist) is None
    assert "nothing pinned (`harness baseline set" in r.lines[-1]


def test_runs_are_pruned_and_a_step_is_a_change_point(tmp_path: Path) -> None:
    hist = tmp_path / "history"
    for i in range(12):
        last = record_nightly(hist, _night(tmp_path, i, factor=1.0 if i < 7 else 1.5), SPEC)
    assert len(list((hist / "runs").iterdir())) == SPEC.history_window
    # Within the window of 8 runs the step sits at the third (run 7 of 0..11).
    assert last.change_points == {
        "ttft_p50_ms": [3],
        "ttft_p95_ms": [3],
        "e2e_p50_ms": [3],
        "e2e_p95_ms": [3],
    }
    page = (hist / "trend.html").read_text()
    assert "stroke-dasharray" in page and "2026120700-nightly" in page
    assert "ttft_p50_ms: level changed at run 2026120700-nightly" in (hist / "trend.md").read_text()


def test_change_points_need_enough_runs_and_a_shift() -> None:
    assert change_points([1.0, 2.0, 1.0]) == []
    assert change_points([5.0] * 20) == []
    flat = [100.0 + (i % 3) for i in range(20)]
    assert change_points(flat) == []
    assert change_points([*flat[:10], *(x + 40 for x in flat[10:])]) == [10]
    # A real but small shift (+3%) is found, and left out when it is below the minimum effect.
    assert change_points([*flat[:10], *(x + 3 for x in flat[10:])]) == [10]
    assert change_points([*flat[:10], *(x + 3 for x in flat[10:])], min_shift=0.1) == []
    with_gaps: list[float | None] = [*flat[:10], None, *(x + 40 for x in flat[10:])]
    assert change_points(with_gaps) == [11]
