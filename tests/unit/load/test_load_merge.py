"""`harness load merge`: exact percentiles over the union of folders written separately."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data.samples import Sample
from harness.errors import ConfigError
from harness.load.merge import merge_runs
from harness.measure.stats import distribution
from harness.spec.load import LoadSpec
from harness.verdict.load_run import run_verdict

T0 = 1_000_000.0


def write_run(folder: Path, spec: LoadSpec, worker: int, ttfts: list[float]) -> None:
    d = folder / "samples"
    d.mkdir(parents=True)
    (folder / "load-config.json").write_text(
        json.dumps({"spec": spec.model_dump(mode="json"), "model": "m", "target_url": "u"})
    )
    lines = []
    for i, ttft in enumerate(ttfts):
        t = T0 + i * 0.5
        s = Sample(
            worker=worker,
            seq=i,
            kind="chat",
            tenant="t",
            prompt_id=f"p{i}",
            repeated=False,
            intended_s=t,
            sent_s=t,
            e2e_ms=ttft + 10,
            ttft_ms=ttft,
            output_tokens=4,
        )
        lines.append(s.to_json() + "\n")
    (d / f"samples-{worker:03d}-1.jsonl").write_text("".join(lines))
    done = {
        "worker": worker,
        "t0_s": T0,
        "deadline_s": T0 + spec.duration_s,
        "scheduled": len(ttfts),
    }
    (d / f"done-{worker:03d}-1.json").write_text(json.dumps(done))


def spec(processes: int, seed: int) -> LoadSpec:
    return LoadSpec.model_validate(
        {
            "load": {"kind": "open", "rate_rps": 2, "arrival": "constant"},
            "duration_s": 4,
            "processes": processes,
            "seed": seed,
        }
    )


def test_separate_runs_add_their_arrivals_and_workers(tmp_path: Path) -> None:
    a, b = [10.0, 30.0, 20.0, 50.0, 40.0, 60.0, 70.0, 80.0], [5.0, 15.0, 25.0, 900.0]
    write_run(tmp_path / "a", spec(1, 1), 0, a)
    write_run(tmp_path / "b", spec(1, 2), 0, b)
    r = merge_runs([tmp_path / "a", tmp_path / "b"], tmp_path / "out", judge=run_verdict)
    assert r.summary.latency.ttft_ms == distribution(a + b)
    g = r.summary.generator
    assert g.expected_requests == 16 and g.workers_expected == 2 and g.workers_done == 2
    assert (tmp_path / "out" / "report.json").is_file()
    assert "2 separate runs" in r.summary.validity.warnings[-1]


def test_workers_of_one_schedule_are_one_run(tmp_path: Path) -> None:
    write_run(tmp_path / "w0", spec(2, 7), 0, [1.0, 2.0, 3.0, 4.0])
    write_run(tmp_path / "w1", spec(2, 7), 1, [5.0, 6.0, 7.0, 8.0])
    r = merge_runs([tmp_path / "w0", tmp_path / "w1"], tmp_path / "out", judge=run_verdict)
    assert r.summary.latency.ttft_ms == distribution([1.0, 2.0, 3.0, 4.0, 5.0, 6.0, 7.0, 8.0])
    assert r.summary.generator.expected_requests == 8
    assert "one schedule over 2 of 2 workers" in r.summary.validity.warnings[-1]


def test_a_folder_without_a_run_is_a_config_error(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(ConfigError, match=r"report\.json or load-config\.json"):
        merge_runs([tmp_path / "empty"], tmp_path / "out", judge=run_verdict)
