"""The opt-in workloads end to end, against the simulator (a real llama-server for the tokenizer
and prefix cache): files not shipped with the project, replayed with the documented commands;
a master and two workers as separate processes, compared with a single-process run of the same
schedule; `harness load merge`."""

from __future__ import annotations

import itertools
import json
import os
import signal
import subprocess
import sys
import time
from collections import defaultdict
from pathlib import Path

import pytest
from gateway_fixtures import gateway_log_dir, llama_server  # noqa: F401 (fixtures)
from load_fixtures import *  # noqa: F403 (fixtures)
from load_fixtures import SimFactory, free_port, run_harness, start_harness, stop_harness

from harness.data.samples import read_samples
from harness.load.runner import LOCUSTFILE
from harness.measure.stats import distribution

pytestmark = [pytest.mark.integration, pytest.mark.load]


def report_of(run_dir: Path) -> dict:  # type: ignore[type-arg]
    return json.loads((run_dir / "report.json").read_text())  # type: ignore[no-any-return]


def test_dataset_replay_sends_the_files_first_turns(simulator: SimFactory, tmp_path: Path) -> None:
    sim = simulator(ttft_ms=10, itl_ms=2)
    conv = tmp_path / "mine.jsonl"
    conv.write_text(
        json.dumps({"conversations": [{"from": "human", "value": "short one"}]})
        + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "a b c d e f g h"}]})
        + "\n"
        + json.dumps({"messages": [{"role": "user", "content": "one two three four five"}]})
        + "\n"
    )
    r = run_harness(
        "load",
        "--target",
        sim.url,
        "--scenario",
        "dataset",
        "--dataset",
        conv.name,
        "--duration",
        "2s",
        "--users",
        "2",
        "--max-tokens",
        "4",
        "--run-dir",
        tmp_path / "run",
        cwd=tmp_path,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    samples = read_samples(tmp_path / "run" / "samples")
    # min_prompt_len 4 of the scenario leaves lines 2 and 3 (the first has 2 words).
    assert {s.prompt_id for s in samples} == {"conv-2", "conv-3"}
    assert "workload tokens:" in r.stdout
    # A file with no conversation in it (a bad line among good ones is skipped and counted).
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"text": "x"}\n{"messages": [{"role": "assistant", "content": "y"}]}\n')
    r = run_harness("load", "--target", sim.url, "--dataset", bad, "--run-dir", tmp_path / "r2")
    assert r.returncode == 2 and str(bad) in r.stderr and "line 2" in r.stderr, r.stderr
    assert "none of the first 2 entries is a conversation" in r.stderr
    assert "Traceback" not in r.stderr


def test_multi_turn_sessions_grow_by_each_answer_after_the_think_time(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(ttft_ms=10, itl_ms=2)
    # One-word follow-ups: what a turn adds beyond them is the previous answer.
    turns = [{"from": "human", "value": v} for v in ("tell me about rivers", "ok", "ok")]
    (tmp_path / "conv.jsonl").write_text(json.dumps({"conversations": turns}) + "\n")
    spec = tmp_path / "mt.yaml"
    spec.write_text(
        "kind: load\nworkload:\n  max_tokens: 16\n  ignore_eos: true\n"
        "  dataset: {path: conv.jsonl}\n  sessions: {turns: 3, think_time_s: 0.3s}\n"
        "load: {kind: closed, users: 2}\nduration_s: 3s\n"
    )
    r = run_harness("load", "--target", sim.url, "--scenario", spec, "--run-dir", tmp_path / "run")
    assert r.returncode == 0, r.stdout + r.stderr
    by_session = defaultdict(list)
    for s in read_samples(tmp_path / "run" / "samples"):
        by_session[(s.worker, s.prompt_id)].append(s)
    full = [v for v in by_session.values() if len(v) == 3]
    assert full, by_session
    for turns in full:
        assert [s.turn for s in turns] == [1, 2, 3]
        tokens = [s.prompt_tokens or 0 for s in turns]
        answers = [s.output_tokens or 0 for s in turns]
        # Each turn carries the previous answer (16 tokens) and the one-word user message.
        assert answers[:2] == [16, 16]
        assert tokens[1] - tokens[0] >= 16 and tokens[2] - tokens[1] >= 16, tokens
        for a, b in itertools.pairwise(turns):
            assert b.sent_s - a.done_s >= 0.3
    groups = {g["name"] for g in report_of(tmp_path / "run")["workload"]["groups"]}
    assert {"turn 1", "turn 2", "turn 3"} <= groups


def test_trace_replay_keeps_recorded_times_and_sizes(simulator: SimFactory, tmp_path: Path) -> None:
    sim = simulator(ttft_ms=10, itl_ms=2)
    trace = tmp_path / "azure.csv"
    rows = [(0.0, 40, 5), (0.4, 80, 3), (0.5, 20, 7), (1.6, 60, 4), (2.2, 30, 6), (9.0, 10, 2)]
    trace.write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        + "".join(f"{100 + t * 2:.7f},{i},{o}\n" for t, i, o in rows)  # recorded at half speed
    )
    r = run_harness(
        "load",
        "--target",
        sim.url,
        "--scenario",
        "trace",
        "--trace",
        trace,
        "--duration",
        "3s",
        "--run-dir",
        tmp_path / "run",
    )
    assert r.returncode == 0, r.stdout + r.stderr
    spec = report_of(tmp_path / "run")["config"]
    assert spec["load"]["arrival"] == "trace"
    # speedup 1 of the scenario: the recorded gaps as they were (twice the rows' offsets); the
    # rows at 3.2 s and later are past the 3 s run and never sent.
    samples = sorted(read_samples(tmp_path / "run" / "samples"), key=lambda s: s.intended_s or 0)
    t0 = samples[0].intended_s or 0.0
    assert [(s.intended_s or 0) - t0 for s in samples] == pytest.approx([0.0, 0.8, 1.0], abs=1e-5)
    # Sized with the simulator's tokenizer and chat template: the server counts what was meant.
    assert [s.planned_tokens for s in samples] == [40, 80, 20]
    assert [s.prompt_tokens for s in samples] == [40, 80, 20]
    assert [s.output_tokens for s in samples] == [5, 3, 7]  # ignore_eos: exactly the trace's
    g = report_of(tmp_path / "run")["summary"]["generator"]
    assert g["expected_requests"] == 3 and g["sent"] == 3


def _offsets(run_dir: Path) -> list[float]:
    """Each sample's intended time from its worker's own schedule start (done-*.json t0_s)."""
    t0 = {}
    for p in (run_dir / "samples").glob("done-*.json"):
        d = json.loads(p.read_text())
        t0[d["worker"]] = d["t0_s"]
    samples = read_samples(run_dir / "samples")
    return sorted(round((s.intended_s or 0) - t0[s.worker], 6) for s in samples)


def test_master_and_two_workers_write_one_report_of_the_single_process_schedule(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(ttft_ms=10, itl_ms=2)
    common = [
        "--target",
        sim.url,
        "--rate",
        "10",
        "--arrival",
        "constant",
        "--duration",
        "3s",
        "--max-tokens",
        "4",
        "--seed",
        "7",
        # What is checked is the merged report, not the generator's pace: three processes
        # starting on a busy runner's 2 cores once sent 68 ms late (p99) at 10 requests/s.
        "--max-send-lag-ms",
        "500",
    ]
    port = free_port()
    rd = tmp_path / "dist"
    log = tmp_path / "master.log"
    master = start_harness(
        "load",
        *common,
        "--external-workers",
        "2",
        "--master-bind",
        f"127.0.0.1:{port}",
        "--run-dir",
        rd,
        log=log,
    )
    workers: list[subprocess.Popen[bytes]] = []
    try:
        deadline = time.monotonic() + 60
        while not (rd / "load-config.json").is_file():
            assert master.poll() is None and time.monotonic() < deadline, log.read_text()
            time.sleep(0.2)
        env = {**os.environ, "HARNESS_LOAD_CONFIG": str(rd / "load-config.json")}
        for i in range(2):
            with (tmp_path / f"worker-{i}.log").open("wb") as f:
                workers.append(
                    subprocess.Popen(
                        [
                            sys.executable,
                            "-m",
                            "locust",
                            "-f",
                            str(LOCUSTFILE),
                            "--worker",
                            "--master-host",
                            "127.0.0.1",
                            "--master-port",
                            str(port),
                            "OpenLoopUser",
                        ],
                        env=env,
                        cwd=LOCUSTFILE.parent.parent,
                        stdout=f,
                        stderr=subprocess.STDOUT,
                        stdin=subprocess.DEVNULL,
                        start_new_session=True,
                    )
                )
        assert master.wait(timeout=120) == 0, log.read_text()[-3000:]
        # Their work done, the workers end on their own.
        assert [w.wait(timeout=30) for w in workers] == [0, 0]
    finally:
        stop_harness(master)
        for w in workers:
            if w.poll() is None:
                os.killpg(w.pid, signal.SIGTERM)
                w.wait(timeout=20)
    report = report_of(rd)
    samples = read_samples(rd / "samples")
    assert {s.worker for s in samples} == {0, 1} and len(samples) == 30
    ok = [s for s in samples if s.ok]
    # The master's report: exact percentiles over the union of both workers' samples.
    for figure, values in (
        ("ttft_ms", [s.ttft_ms for s in ok if s.ttft_ms is not None]),
        ("e2e_ms", [s.e2e_ms for s in ok]),
    ):
        assert report["summary"]["latency"][figure] == distribution(values).model_dump(), figure
    assert report["summary"]["generator"]["workers_done"] == 2
    # One process, the same spec and seed: the same open-loop schedule, arrival for arrival.
    single = tmp_path / "single"
    r = run_harness("load", *common, "--run-dir", single)
    assert r.returncode == 0, r.stdout + r.stderr
    assert _offsets(rd) == _offsets(single) == pytest.approx([i / 10 for i in range(30)])

    # `harness load merge`: the two workers' folders written apart give the same report.
    parts = []
    for worker in ("000", "001"):
        part = tmp_path / f"part-{worker}"
        (part / "samples").mkdir(parents=True)
        (part / "load-config.json").write_text((rd / "load-config.json").read_text())
        for f in (rd / "samples").glob(f"*-{worker}-*.json*"):
            (part / "samples" / f.name).write_bytes(f.read_bytes())
        parts.append(part)
    r = run_harness("load", "merge", *parts, "--out", tmp_path / "merged")
    assert r.returncode == 0, r.stdout + r.stderr
    merged = report_of(tmp_path / "merged")
    for figure in ("ttft_ms", "e2e_ms", "ttft_from_intended_ms"):
        assert merged["summary"]["latency"][figure] == report["summary"]["latency"][figure]
    assert merged["summary"]["generator"]["expected_requests"] == 30
    assert "one schedule over 2 of 2 workers" in r.stdout


def test_llama_server_tokens_and_prefix_cache(llama_server: str, tmp_path: Path) -> None:  # noqa: F811
    """A real tokenizer: prompts of exactly 32 + the instruction's tokens, and one shared system
    prompt that llama.cpp serves from its prefix cache after the first request."""
    spec = tmp_path / "tok.yaml"
    spec.write_text(
        "kind: load\nworkload:\n  prompt_words: 32\n  prompt_words_jitter: 0\n  max_tokens: 2\n"
        "  tokenizer: true\n  shared_prefix: {groups: 1, words: 48, share: 1}\n"
        "load: {kind: closed, users: 1}\nduration_s: 12s\n"
    )
    rd = tmp_path / "run"
    r = run_harness(
        "load", "--target", llama_server, "--scenario", spec, "--run-dir", rd, timeout_s=240
    )
    assert r.returncode == 0, r.stdout + r.stderr
    sizing = json.loads((rd / "tokens.json").read_text())
    assert sizing["check_tokens"] == sizing["instruction_tokens"] + sizing["check_words"]
    samples = [s for s in read_samples(rd / "samples") if s.ok]
    assert len(samples) >= 2, r.stdout  # 12 s: a cold first prompt on a busy runner took 3.4 s
    # The message, the shared system prompt and the chat template around both, as the server
    # counts them.
    planned = sizing["instruction_tokens"] + 32 + 48 + sizing["template_system_user"]
    assert [s.planned_tokens for s in samples] == [s.prompt_tokens for s in samples]
    assert {s.planned_tokens for s in samples} == {planned}
    assert all((s.cached_tokens or 0) > 48 for s in samples[1:]), [s.cached_tokens for s in samples]
    view = report_of(rd)["workload"]
    assert view["server_cache"]["deltas"]["llamacpp:prompt_tokens_total"] is not None
    assert view["server_cache"]["evaluated_share"] < 1.0


def test_token_sized_prompts_are_exact_for_every_seed(llama_server: str) -> None:  # noqa: F811
    """The sizing holds for any draw, not only for the run's seed: for 60 seeds, prompts behind a
    shared system prefix are planned at exactly the tokens llama-server counts for the whole chat
    request (a prefix's first word sits at the start of a message, where some words are two
    tokens: the sizing must only use words that are one token there too)."""
    from harness.load.tokens import Tokenizer, measure
    from harness.load.workload import WorkloadGenerator
    from harness.spec.load import Workload

    tok = Tokenizer(llama_server, "primary")
    try:
        sizing = measure(tok)
        assert sizing.exact, sizing
        assert sizing.template_user is not None and sizing.template_system_user is not None
        workload = Workload.model_validate(
            {
                "prompt_words": 24,
                "prompt_words_jitter": 0.5,
                "max_tokens": 2,
                "tokenizer": True,
                "shared_prefix": {"groups": 3, "words": 40, "share": 0.7},
            }
        )
        mismatched = []
        for seed in range(60):
            gen = WorkloadGenerator(
                workload,
                "primary",
                "key",
                seed,
                0,
                one_token_words=sizing.one_token_words,
                instruction_tokens=sizing.instruction_tokens,
                template_tokens=(sizing.template_user, sizing.template_system_user),
            )
            for _ in range(2):
                plan = gen.next_request()
                messages = json.loads(plan.body)["messages"]
                counted = tok.chat(messages)
                if counted != plan.planned_tokens:
                    mismatched.append((seed, plan.prompt_id, plan.planned_tokens, counted))
        assert not mismatched, mismatched
    finally:
        tok.close()
