"""The prefix reuse a workload offers: the share of its prompt tokens a prefix cache holding
everything sent before could serve (the engine's prefix-cache check compares a server with it)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from harness.data.samples import Sample
from harness.load.reuse import workload_reuse
from harness.load.workload import INSTRUCTION
from harness.spec.load import LoadSpec, OpenLoop, SharedPrefix, Trace, Workload


def sample(i: int, group: int | None = None, served_by: str = "primary") -> Sample:
    return Sample(
        worker=0,
        seq=i,
        kind="chat",
        tenant="t",
        prompt_id=f"p{i}",
        repeated=False,
        intended_s=float(i),
        sent_s=float(i),
        e2e_ms=10.0,
        status=200,
        prefix_group=group,
        x_served_by=served_by,
    )


def test_every_shared_prefix_after_its_first_request_is_reusable() -> None:
    spec = LoadSpec(
        workload=Workload(
            prompt_words=24, shared_prefix=SharedPrefix(groups=2, words=100, share=0.75)
        )
    )
    own = len(INSTRUCTION.split()) + 24
    # Groups 0, 1, 0, 1, then one request without a prefix, one answered from the gateway cache.
    samples = [sample(i, g) for i, g in enumerate((0, 1, 0, 1, None))]
    samples.append(sample(9, 0, served_by="cache"))
    reuse = workload_reuse(spec, samples)
    assert reuse.requests == 5
    assert reuse.share == pytest.approx(2 * 100 / (4 * (100 + own) + own))
    assert "2 shared prefixes of 100 words" in reuse.how


def test_a_workload_without_a_shared_prefix_or_trace_has_no_known_reuse() -> None:
    reuse = workload_reuse(LoadSpec(), [sample(0)])
    assert reuse.share is None and "no shared prefix or trace" in reuse.how


def test_a_mooncake_trace_reuses_the_leading_hash_ids_seen_before(tmp_path: Path) -> None:
    rows = [
        {"timestamp": 0, "input_length": 1024, "output_length": 8, "hash_ids": [1, 2]},
        {"timestamp": 100, "input_length": 1536, "output_length": 8, "hash_ids": [1, 2, 3]},
        {"timestamp": 200, "input_length": 1024, "output_length": 8, "hash_ids": [1, 4]},
        # Block 2 again, but not behind block 1: a prefix cache cannot use it.
        {"timestamp": 300, "input_length": 512, "output_length": 8, "hash_ids": [2]},
    ]
    path = tmp_path / "trace.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    spec = LoadSpec(
        duration_s=10,
        load=OpenLoop(arrival="trace", trace=Trace(path=str(path), block_tokens=512)),
    )
    one_pass = workload_reuse(spec, [sample(i) for i in range(4)])
    # Reusable: 0, 1024 (blocks 1, 2), 512 (block 1), 0 of 4096 tokens.
    assert one_pass.share == pytest.approx(1536 / 4096)
    # A second look replays it: every prompt now begins as one sent before (block 2 alone too).
    two = workload_reuse(spec, [sample(i) for i in range(8)])
    assert two.share == pytest.approx((1536 + 1024 + 1536 + 1024 + 512) / 8192)
    flat = tmp_path / "flat.jsonl"
    flat.write_text(json.dumps({"timestamp": 0, "input_length": 9, "output_length": 1}) + "\n")
    spec = LoadSpec(load=OpenLoop(arrival="trace", trace=Trace(path=str(flat))))
    assert workload_reuse(spec, [sample(0)]).share is None
