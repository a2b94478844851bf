"""The compact per-request sample file kept beside every report."""

from __future__ import annotations

import gzip
import math
from pathlib import Path

import numpy as np
import pytest
from runs_fixture import synthetic_samples

from harness.data.samples import Sample
from harness.measure.sample_file import (
    COLUMNS,
    SampleFileError,
    read_sample_file,
    write_sample_file,
)


def test_round_trip_keeps_every_column(tmp_path: Path) -> None:
    samples = synthetic_samples(50, seed=1, errors=3)
    samples[10].intended_s = None  # a closed-loop request has no intended time
    path = write_sample_file(tmp_path / "samples.jsonl.gz", samples)
    table = read_sample_file(path)
    assert len(table) == 50 and set(table.numbers) | set(table.text) == set(COLUMNS)
    s = samples[20]
    assert table.numbers["ttft_ms"][20] == pytest.approx(s.ttft_ms, abs=0.005)
    assert table.numbers["itl_ms"][20] == pytest.approx(s.itl_ms, abs=0.005)
    assert table.numbers["tpot_ms"][20] == pytest.approx(s.tpot_ms, abs=0.005)
    assert table.numbers["gap_max_ms"][20] == pytest.approx(max(s.token_gaps_ms), abs=0.005)
    assert table.numbers["gap_p50_ms"][20] == pytest.approx(np.median(s.token_gaps_ms), abs=0.005)
    assert table.t0_s + table.numbers["sent_ms"][20] / 1000 == pytest.approx(s.sent_s, abs=1e-5)
    assert table.t0_s + table.numbers["intended_ms"][20] / 1000 == pytest.approx(s.intended_s)
    assert math.isnan(table.numbers["intended_ms"][10])
    assert table.text["error"][:3] == ["http"] * 3 and table.numbers["status"][0] == 500
    assert table.text["served_by"][20] == "primary"
    # Failed requests are left out of a figure's values.
    assert table.ok.sum() == 47 and table.values("ttft_ms").size == 47


def test_torn_last_line_is_skipped_and_foreign_files_are_refused(tmp_path: Path) -> None:
    path = write_sample_file(tmp_path / "s.jsonl.gz", synthetic_samples(5, seed=2))
    text = gzip.decompress(path.read_bytes()).decode()
    (tmp_path / "torn.jsonl.gz").write_bytes(gzip.compress(text[:-20].encode()))
    assert len(read_sample_file(tmp_path / "torn.jsonl.gz")) == 4
    (tmp_path / "plain.jsonl.gz").write_text("not gzip")
    with pytest.raises(SampleFileError, match="not a gzip"):
        read_sample_file(tmp_path / "plain.jsonl.gz")
    (tmp_path / "other.jsonl.gz").write_bytes(gzip.compress(b'{"format": "x"}\n'))
    with pytest.raises(SampleFileError, match="format"):
        read_sample_file(tmp_path / "other.jsonl.gz")


def test_same_samples_same_bytes(tmp_path: Path) -> None:
    samples: list[Sample] = synthetic_samples(20, seed=3)
    a = write_sample_file(tmp_path / "a.gz", samples).read_bytes()
    b = write_sample_file(tmp_path / "b.gz", list(reversed(samples))).read_bytes()
    assert a == b


def test_size_per_10000_requests(tmp_path: Path) -> None:
    """docs/compare-and-nightly.md ("Samples kept") states this size; it is printed here (pytest -s)
    and bounded loosely."""
    path = write_sample_file(tmp_path / "s.jsonl.gz", synthetic_samples(10_000, seed=4))
    size = path.stat().st_size
    print(f"samples.jsonl.gz: {size / 1024:.0f} KiB per 10,000 requests")
    assert size < 1_000_000
