"""How a run is set up: a fresh seed unless one is given, the warning when a run repeats earlier
prompts against the same target, the workload options of the command line, an absolute run
folder, and a progress line that says when the run is draining."""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from typer.testing import CliRunner

from harness.commands.load import _run_dir, register
from harness.data.samples import Sample
from harness.errors import ConfigError
from harness.load.repeats import KEEP, check_and_record, fingerprint
from harness.load.runner import _ProgressPrinter
from harness.load.scenarios import Overrides, apply_overrides, load_scenario
from harness.load.workload import INSTRUCTION, WorkloadGenerator
from harness.spec.load import LoadSpec, OpenLoop, Workload


def test_a_spec_without_seed_asks_for_a_fresh_one_per_run() -> None:
    assert LoadSpec().seed is None and load_scenario("chat").seed is None
    assert apply_overrides(load_scenario("chat"), Overrides(seed=7)).seed == 7


def test_the_prompt_fingerprint_follows_the_seed_and_the_prompts_only() -> None:
    w = Workload()
    assert fingerprint(w, 1) == fingerprint(w, 1)
    assert fingerprint(w, 1) != fingerprint(w, 2)
    assert fingerprint(w, 1) == fingerprint(w.model_copy(update={"max_tokens": 7}), 1)
    assert fingerprint(w, 1) != fingerprint(w.model_copy(update={"prompt_words": 50}), 1)


def test_a_repeat_against_the_same_target_is_warned_about(tmp_path: Path) -> None:
    record = tmp_path / "runs" / "load-prompts.json"
    a, b = "http://127.0.0.1:1", "http://127.0.0.1:2"
    assert check_and_record(record, a, "f1", 1, tmp_path / "r1", "t1") is None
    assert check_and_record(record, b, "f1", 1, tmp_path / "r2", "t2") is None  # other target
    assert check_and_record(record, a, "f2", 2, tmp_path / "r3", "t3") is None  # other prompts
    warning = check_and_record(record, a, "f1", 1, tmp_path / "r4", "t4")
    assert warning is not None and "repeats the prompts" in warning and "t1" in warning
    assert str(tmp_path / "r1") in warning and "--seed" in warning


def test_the_record_stays_small_and_survives_damage(tmp_path: Path) -> None:
    record = tmp_path / "load-prompts.json"
    for i in range(KEEP + 10):
        check_and_record(record, "http://t", f"f{i}", i, tmp_path, "t")
    assert len(json.loads(record.read_text())["http://t"]) == KEEP
    record.write_text("{not json")
    assert check_and_record(record, "http://t", "f", 1, tmp_path, "t") is None


def test_workload_options_of_the_command_line() -> None:
    spec = apply_overrides(
        load_scenario("chat"),
        Overrides(endpoint="completions", prompt_words=40, ignore_eos=True, prefix_share=0.5),
    )
    w = spec.workload
    assert (w.completion_share, w.prompt_words, w.ignore_eos, w.prefix_share) == (
        1.0,
        40,
        True,
        0.5,
    )
    assert apply_overrides(spec, Overrides(endpoint="chat")).workload.completion_share == 0.0
    with pytest.raises(ConfigError) as bad:
        apply_overrides(spec, Overrides(endpoint="embeddings"))
    assert bad.value.problems[0].location == "--endpoint"
    with pytest.raises(ConfigError) as out_of_range:
        apply_overrides(spec, Overrides(prefix_share=1.5))
    assert out_of_range.value.problems[0].location.startswith("--prefix-share")


def test_the_send_lag_bound_of_an_open_loop_from_the_command_line() -> None:
    spec = apply_overrides(load_scenario("chat"), Overrides(rate_rps=3, max_send_lag_ms=250))
    assert isinstance(spec.load, OpenLoop) and spec.load.max_send_lag_ms == 250
    # A later rate (capacity's steps) keeps it.
    again = apply_overrides(spec, Overrides(rate_rps=6))
    assert isinstance(again.load, OpenLoop) and again.load.max_send_lag_ms == 250
    with pytest.raises(ConfigError) as closed:
        apply_overrides(load_scenario("chat"), Overrides(users=2, max_send_lag_ms=250))
    assert [p.location for p in closed.value.problems] == ["--max-send-lag-ms"]
    with pytest.raises(ConfigError) as negative:
        apply_overrides(load_scenario("chat"), Overrides(rate_rps=3, max_send_lag_ms=-1))
    assert negative.value.problems[0].location.startswith("--max-send-lag-ms")


def test_prefix_share_gives_every_fresh_prompt_one_common_prefix() -> None:
    gen = WorkloadGenerator(Workload(prompt_words=20, prefix_share=0.5), "m", "k", 3, 0)
    prompts = [gen.next().prompt for _ in range(5)]
    heads = {p.removeprefix(INSTRUCTION).split()[:10].__repr__() for p in prompts}
    tails = {p.split()[-5:].__repr__() for p in prompts}
    assert len(heads) == 1 and len(tails) == 5
    other = WorkloadGenerator(Workload(prompt_words=20, prefix_share=0.5), "m", "k", 4, 0)
    assert other.next().prompt.split()[:16] != prompts[0].split()[:16]  # fresh seed, new prefix


def test_load_help_says_rate_is_poisson_and_lists_the_workload_options() -> None:
    import typer

    app = typer.Typer()
    register(app)
    text = CliRunner().invoke(app, ["load", "--help"], env={"COLUMNS": "200"}).output
    for option in (
        "--endpoint",
        "--prompt-words",
        "--ignore-eos",
        "--prefix-share",
        "--no-default-checks",
    ):
        assert option in text, option
    assert "Poisson arrivals unless --arrival" in " ".join(text.split())


def test_a_relative_run_dir_is_made_absolute(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)
    assert _run_dir(Path("runs/here"), "load") == tmp_path / "runs" / "here"
    monkeypatch.setenv("HARNESS_RUNS_DIR", "relative-runs")
    assert _run_dir(None, "load").is_absolute()


def test_progress_says_the_run_is_draining_after_its_schedule(tmp_path: Path) -> None:
    lines: list[str] = []
    printer = _ProgressPrinter(tmp_path, duration_s=5.0, emit=lines.append)
    now = time.time()
    sample = Sample(
        worker=0,
        seq=0,
        kind="chat",
        tenant="d",
        prompt_id="p",
        repeated=False,
        intended_s=None,
        sent_s=now - 1.0,
        e2e_ms=100.0,
        ttft_ms=20.0,
        status=200,
    )
    # The schedule began 8 s ago (the worker's start file), its first request went 1 s ago.
    (tmp_path / "start-000-1.json").write_text(json.dumps({"t0_s": now - 8.0}))
    (tmp_path / "samples-000-1.jsonl").write_text(sample.to_json() + "\n")
    printer.tick()
    assert "draining 3s after the 5s schedule" in lines[-1], lines
