"""Seeded workloads: repeatable prompts, cache-mix share, tenants, request bodies."""

from __future__ import annotations

import json
from collections import Counter

from harness.load.workload import INSTRUCTION, RequestPlan, WorkloadGenerator
from harness.spec.load import Tenant, Workload


def gen(w: Workload, seed: int = 1, worker: int = 0) -> WorkloadGenerator:
    return WorkloadGenerator(w, model="m", default_api_key="sk-default", seed=seed, worker=worker)


def take(g: WorkloadGenerator, n: int) -> list[RequestPlan]:
    return [g.next() for _ in range(n)]


def test_same_seed_same_requests_other_seed_other_requests() -> None:
    w = Workload(completion_share=0.3)
    assert take(gen(w), 20) == take(gen(w), 20)
    assert [p.body for p in take(gen(w, seed=2), 20)] != [p.body for p in take(gen(w), 20)]


def test_workers_draw_different_prompts() -> None:
    w = Workload()
    assert gen(w, worker=0).next().body != gen(w, worker=1).next().body


def test_chat_body_streams_with_usage() -> None:
    p = gen(Workload(max_tokens=7, ignore_eos=True, temperature=0)).next()
    body = json.loads(p.body)
    assert p.path == "/v1/chat/completions" and p.kind == "chat" and p.stream
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["max_tokens"] == 7 and body["ignore_eos"] is True and body["temperature"] == 0
    assert body["messages"][0]["role"] == "user" and body["model"] == "m"
    assert p.api_key == "sk-default" and p.tenant == "default"


def test_completion_share_and_non_streaming() -> None:
    g = gen(Workload(completion_share=1.0, stream=False))
    p = g.next()
    body = json.loads(p.body)
    assert p.path == "/v1/completions" and "prompt" in body and "stream" not in body


def test_prompt_length_follows_prompt_words() -> None:
    g = gen(Workload(prompt_words=100, prompt_words_jitter=0.1))
    for _ in range(20):
        words = json.loads(g.next().body)["messages"][0]["content"].split()
        assert 90 <= len(words) - len(INSTRUCTION.split()) <= 110


def test_cache_mix_repeats_about_the_configured_share_from_a_shared_pool() -> None:
    w = Workload(repeated_share=0.4, repeated_pool=3)
    plans = take(gen(w), 2000)
    share = sum(p.repeated for p in plans) / len(plans)
    assert 0.35 < share < 0.45
    hot = {p.prompt_id for p in plans if p.repeated}
    assert hot == {"hot-0", "hot-1", "hot-2"}
    # worker 1 repeats the very same prompts (so a cache filled by one worker serves the other)
    other = take(gen(w, worker=1), 200)
    bodies = {p.prompt_id: p.body for p in plans if p.repeated}
    assert all(bodies[p.prompt_id] == p.body for p in other if p.repeated)


def test_tenants_follow_weights() -> None:
    w = Workload(
        tenants=(
            Tenant(name="a", api_key="ka", weight=3),
            Tenant(name="b", api_key="kb", weight=1),
        )
    )
    plans = take(gen(w), 2000)
    counts = Counter(p.tenant for p in plans)
    assert 0.7 < counts["a"] / 2000 < 0.8
    assert {p.api_key for p in plans if p.tenant == "b"} == {"kb"}
