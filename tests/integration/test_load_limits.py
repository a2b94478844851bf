"""The model's context known before a dataset or trace run: the simulator started with
`--max-model-len 512` says so in /v1/models, and the requests that cannot fit are counted before
the first is sent, then sent as they are, skipped or clipped as the workload says."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from load_fixtures import *  # noqa: F403 (fixtures)
from load_fixtures import SimFactory, run_harness

from harness.data.samples import read_samples

pytestmark = [pytest.mark.integration, pytest.mark.load]

CONTEXT = 512
# (seconds, prompt tokens, max_tokens): the second and the fourth do not fit 512 tokens.
TRACE = [(0.0, 40, 5), (0.2, 600, 5), (0.4, 100, 5), (0.6, 500, 20), (0.8, 30, 5)]


def write_trace(folder: Path) -> None:
    (folder / "t.csv").write_text(
        "TIMESTAMP,ContextTokens,GeneratedTokens\n"
        + "".join(f"{100 + t:.7f},{i},{o}\n" for t, i, o in TRACE)
    )


def run(sim_url: str, folder: Path, spec: str, *extra: str) -> tuple[str, dict, Path]:  # type: ignore[type-arg]
    """The progress (stderr) then the summary (stdout), the report, the samples' folder."""
    (folder / "spec.yaml").write_text(spec)
    rd = folder / "run"
    r = run_harness(
        "load", "--target", sim_url, "--scenario", folder / "spec.yaml", "--run-dir", rd, *extra
    )
    assert r.returncode == 0, r.stdout + r.stderr
    return r.stderr + r.stdout, json.loads((rd / "report.json").read_text()), rd / "samples"


def trace_spec(policy: str) -> str:
    return (
        "kind: load\nworkload: {ignore_eos: true, tokenizer: true, "
        f"context_overflow: {policy}}}\n"
        # Five sends: the generator's lag bound is not what this checks (a busy runner's first
        # send came 59 ms late).
        "load: {kind: open, arrival: trace, trace: {path: t.csv}, max_send_lag_ms: 500}\n"
        "duration_s: 2s\n"
    )


def test_trace_requests_over_the_context_are_counted_first_then_sent_or_clipped(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(10, 2, 64, "--max-model-len", str(CONTEXT))
    for policy in ("report", "clip"):
        (tmp_path / policy).mkdir()
        write_trace(tmp_path / policy)
    # report (the default): counted before the run, sent as they are, refused by the server.
    out, report, samples_at = run(
        sim.url, tmp_path / "report", trace_spec("report"), "--no-default-checks"
    )
    line = (
        "context: 2 of 5 requests exceed the model's context of 512 tokens (prompt + "
        f"max_tokens; the trace's recorded lengths; from {sim.url}/v1/models): sent as they "
        "are (workload.context_overflow: report)"
    )
    assert line in out
    assert out.index(line) < out.index(f"-> {sim.url} model"), "counted before the run starts"
    limits = report["limits"]
    assert (limits["context_tokens"], limits["over"], limits["total"]) == (512, 2, 5)
    samples = sorted(read_samples(samples_at), key=lambda s: s.seq)
    # The simulator refuses them inside the stream (a request not streamed gets a 400).
    assert [s.error for s in samples] == [None, "stream_error", None, "stream_error", None]
    assert "maximum context length is 512" in (samples[1].error_detail or "")
    # clip: the two prompts shortened to the context minus their max_tokens, and served.
    out, report, samples_at = run(sim.url, tmp_path / "clip", trace_spec("clip"))
    assert "2 of 5 requests exceed" in out and "prompts clipped to fit (2)" in out
    samples = sorted(read_samples(samples_at), key=lambda s: s.seq)
    assert all(s.ok for s in samples) and len(samples) == 5
    assert [s.planned_tokens for s in samples] == [40, 507, 100, 492, 30]
    assert [s.prompt_tokens for s in samples] == [40, 507, 100, 492, 30]


def test_a_sharegpt_array_with_a_conversation_over_the_context_skips_it(
    simulator: SimFactory, tmp_path: Path
) -> None:
    sim = simulator(10, 2, 64, "--max-model-len", str(CONTEXT))
    entries = [
        {"id": "short", "conversations": [{"from": "human", "value": "tell me about rivers"}]},
        {"id": "long", "conversations": [{"from": "human", "value": "river " * 1000}]},
        {"id": "empty", "conversations": []},
        {"id": "other", "conversations": [{"from": "human", "value": "and about lakes"}]},
    ]
    (tmp_path / "sharegpt.json").write_text(json.dumps(entries))
    spec = (
        "kind: load\nworkload:\n  max_tokens: 8\n  context_overflow: skip\n"
        "  dataset: {path: sharegpt.json}\nload: {kind: closed, users: 2}\nduration_s: 2s\n"
    )
    out, report, samples_at = run(sim.url, tmp_path, spec)
    assert "dataset sharegpt.json: 1 of 4 entries read skipped: empty 1 (first at entry 3)" in out
    assert (
        "context: 1 of 3 conversations exceed the model's context of 512 tokens (prompt + "
        "max_tokens; prompt tokens estimated at 4 characters a token; "
    ) in out
    assert "not sent (workload.context_overflow: skip)" in out
    samples = read_samples(samples_at)
    assert samples and all(s.ok for s in samples)
    assert {(s.prompt_id, s.dataset_id) for s in samples} == {
        ("conv-1", "short"),
        ("conv-4", "other"),
    }
    assert any(
        "1 of 4 entries read skipped" in w for w in report["summary"]["validity"]["warnings"]
    )
    # In the server's tokens (the simulator's /tokenize), clipped: the long one sent, and fitting.
    (tmp_path / "tokens").mkdir()
    (tmp_path / "tokens" / "sharegpt.json").write_text(json.dumps(entries))
    spec = (
        "kind: load\nworkload:\n  max_tokens: 8\n  ignore_eos: true\n  tokenizer: true\n"
        "  context_overflow: clip\n  dataset: {path: sharegpt.json, order: sequential}\n"
        "load: {kind: closed, users: 1}\nduration_s: 1s\n"
    )
    out, report, samples_at = run(sim.url, tmp_path / "tokens", spec)
    assert "the 3 conversations chosen by their first turn's tokens" in out
    assert (
        "context: 1 of 3 conversations exceed the model's context of 512 tokens (prompt + "
        "max_tokens; first turns counted by the server's /tokenize, with the chat template; "
    ) in out
    assert "prompts clipped to fit (1) (workload.context_overflow: clip)" in out
    samples = read_samples(samples_at)
    assert all(s.ok for s in samples)
    long_ = [s for s in samples if s.dataset_id == "long"]
    assert long_ and all(480 < (s.prompt_tokens or 0) <= CONTEXT - 8 for s in long_)
    # A clipped prompt's size is not claimed as planned; the others' are the server's count.
    assert {s.planned_tokens for s in long_} == {None}
    assert all(s.planned_tokens == s.prompt_tokens for s in samples if s.dataset_id != "long")
