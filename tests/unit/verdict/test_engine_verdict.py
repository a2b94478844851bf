"""The engine checks judged from a server view built by hand: each check's pass, its fail on the
defect it exists for, its skip with the reason on a server that does not export its figure, and
its fail on a server kind known to export it whose metrics lack it."""

from __future__ import annotations

import pytest

from harness.data.samples import Sample
from harness.load.reuse import Reuse
from harness.measure.server import ServerFigures, ServerView
from harness.spec.policy import EnginePolicy
from harness.verdict.checks import CheckResult
from harness.verdict.engine import (
    KV_CACHE,
    NAMES,
    PREEMPTIONS,
    PREFIX,
    QUEUE,
    judge_engine,
    per_request_share,
)

POLICY = EnginePolicy()
NO_REUSE = Reuse(None, "the workload has no shared prefix or trace, so its reuse is not known")
VLLM_ALL = {
    "preemptions",
    "kv_cache_usage_max",
    "queue_time_buckets",
    "queue_time_observed",
    "requests_finished",
    "queue_depth_max",
    "queue_depth_mean",
    "prefix_cache_hits",
    "prefix_cache_queries",
}


def figs(
    profile: str,
    pool: str | None = "primary",
    missing: set[str] | None = None,
    by_label: dict[str, dict[str, float]] | None = None,
    **values: float | None,
) -> ServerFigures:
    return ServerFigures(
        profile=profile,
        pool=pool,
        values=values,
        by_label=by_label or {},
        queries={},
        unavailable=sorted(missing or set()),
    )


def view(*profiles: ServerFigures, errors: list[str] | None = None) -> ServerView:
    return ServerView(
        prometheus="http://prom.test",
        start_s=100.0,
        end_s=120.0,
        window="20s",
        profiles=list(profiles),
        errors=errors or [],
    )


def judge(
    v: ServerView | None,
    kinds: dict[str, str],
    samples: list[Sample] | None = None,
    reuse: Reuse = NO_REUSE,
    policy: EnginePolicy = POLICY,
) -> dict[str, CheckResult]:
    checks = judge_engine(v, kinds, policy, samples or [], reuse)
    assert [c.name for c in checks] == list(NAMES)
    assert {c.category for c in checks} == {"engine"}
    return {c.name: c for c in checks}


def healthy_vllm(**over: float | None) -> ServerFigures:
    values: dict[str, float | None] = {
        "preemptions": 0.0,
        "kv_cache_usage_max": 0.42,
        "queue_time_requests": 60,
        "queue_time_unobserved": 0,
        "queue_time_p95_ms": 150.0,
        "queue_time_p95_low_ms": 0.0,
        "queue_time_p95_high_ms": 300.0,
        "queue_depth_max": 1.0,
        "queue_depth_mean": 0.1,
        "requests_finished": 60.0,
        "prefix_cache_hits": 500.0,
        "prefix_cache_queries": 1000.0,
        **over,
    }
    return figs("vllm", **values)


def test_a_healthy_vllm_server_passes_what_it_exports_and_skips_the_prefix_without_reuse() -> None:
    c = judge(view(healthy_vllm()), {"primary": "vllm"})
    assert c[PREEMPTIONS].outcome == "pass" and c[PREEMPTIONS].measured["preemptions"] == 0
    assert c[KV_CACHE].outcome == "pass" and c[KV_CACHE].measured["kv_cache_usage_max"] == 0.42
    assert c[QUEUE].outcome == "pass", c[QUEUE]
    assert "between 0 and 300 ms" in c[QUEUE].reasons[0] and "60 requests" in c[QUEUE].reasons[0]
    assert c[PREFIX].outcome == "skipped" and "its reuse is not known" in c[PREFIX].reasons[0]


def test_preemptions_during_the_load_fail_with_the_count_and_the_bound() -> None:
    c = judge(view(healthy_vllm(preemptions=3.0)), {"primary": "vllm"})
    assert c[PREEMPTIONS].outcome == "fail" and c[PREEMPTIONS].measured["preemptions"] == 3
    assert "3 requests preempted" in c[PREEMPTIONS].reasons[0]
    assert "policy at most 0" in c[PREEMPTIONS].reasons[0]
    lenient = EnginePolicy(max_preemptions=5)
    assert judge(view(healthy_vllm(preemptions=3.0)), {"primary": "vllm"}, policy=lenient)[
        PREEMPTIONS
    ].outcome == ("pass")


def test_a_kv_cache_over_the_ceiling_fails() -> None:
    c = judge(view(healthy_vllm(kv_cache_usage_max=0.97)), {"primary": "vllm"})
    assert c[KV_CACHE].outcome == "fail"
    assert "highest KV cache usage 0.97" in c[KV_CACHE].reasons[0]
    assert "policy ceiling 0.9: preemption is near" in c[KV_CACHE].reasons[0]


def test_a_vllm_candidate_whose_metrics_lack_what_vllm_exports_fails_every_check() -> None:
    hiding = figs("vllm", missing=VLLM_ALL)
    c = judge(view(hiding), {"primary": "vllm"})
    for name in (PREEMPTIONS, KV_CACHE, QUEUE):
        assert c[name].outcome == "fail", c[name]
        assert "must not hide its engine state" in c[name].reasons[0]
    assert "no vllm:num_preemptions_total" in c[PREEMPTIONS].reasons[0]
    assert "no vllm:request_queue_time_seconds" in c[QUEUE].reasons[0]
    # A vLLM pool with no vllm:* metric at all fails the same way, beside a healthy one.
    c = judge(view(healthy_vllm()), {"primary": "vllm", "fallback": "vllm"})
    assert c[KV_CACHE].outcome == "fail"
    assert c[KV_CACHE].reasons[0].startswith("fallback (vllm): its /metrics has no vLLM metric")


def test_the_simulator_skips_preemptions_with_its_version_and_must_export_the_rest() -> None:
    sim = figs(
        "vllm",
        missing={"preemptions", "queue_time_buckets", "queue_time_observed"},
        kv_cache_usage_max=0.0,
        queue_depth_max=0.0,
        queue_depth_mean=0.0,
    )
    c = judge(view(sim), {"primary": "simulator"})
    assert c[PREEMPTIONS].outcome == "skipped"
    assert c[PREEMPTIONS].reasons == [
        "llm-d-inference-sim v0.10.2 (the pinned version; no newer one can be installed here) "
        "exports no vllm:num_preemptions_total: it never preempts"
    ]
    assert c[KV_CACHE].outcome == "pass"
    assert c[QUEUE].outcome == "pass" and "no request seen waiting" in c[QUEUE].reasons[0]
    # Without its waiting gauge or KV gauge, the simulator hides them: fail.
    bare = figs("vllm", missing={"preemptions", "kv_cache_usage_max", "queue_depth_max"})
    c = judge(view(bare), {"primary": "simulator"})
    assert c[PREEMPTIONS].outcome == "skipped"
    assert c[KV_CACHE].outcome == "fail" and c[QUEUE].outcome == "fail"


def test_llama_cpp_runs_what_it_exports_and_skips_the_rest_with_reasons() -> None:
    llama = figs(
        "llamacpp",
        missing={"kv_cache_usage_max"},
        queue_depth_max=0.0,
        queue_depth_mean=0.0,
        prefix_cache_hits=0.0,
        prefix_cache_queries=0.0,
    )
    c = judge(view(llama), {"primary": "llama_cpp", "fallback": "llama_cpp"})
    assert c[PREEMPTIONS].outcome == "skipped"
    assert c[PREEMPTIONS].reasons == ["llama.cpp exports no preemption counter"]
    assert c[KV_CACHE].outcome == "skipped"
    assert "no llamacpp:kv_cache_usage_ratio" in c[KV_CACHE].reasons[0]
    assert c[QUEUE].outcome == "pass" and "llamacpp:requests_deferred 0" in c[QUEUE].reasons[0]
    # A build that exports the ratio is judged on it.
    ratio = figs("llamacpp", kv_cache_usage_max=0.95, queue_depth_max=0.0)
    assert judge(view(ratio), {"primary": "llama_cpp"})[KV_CACHE].outcome == "fail"


def buckets(*pairs: tuple[str, float]) -> dict[str, dict[str, float]]:
    return {"queue_time_buckets": dict(pairs)}


@pytest.mark.parametrize(
    ("low", "high", "estimate", "bound", "outcome", "said"),
    [
        (1500.0, 2000.0, 1800.0, 500.0, "fail", "above 1500 ms and at most 2000 ms"),
        (300.0, 500.0, 420.0, 500.0, "pass", "above 300 ms and at most 500 ms"),
        (300.0, 500.0, 420.0, 400.0, "fail", "interpolated 420 ms"),
        (300.0, 500.0, 380.0, 400.0, "pass", "interpolated 380 ms"),
        (10000.0, None, 10000.0, 500.0, "fail", "> 10000 ms"),
        (0.0, 0.0, 0.0, 500.0, "pass", "queue time p95 0 ms"),
    ],
)
def test_the_queue_p95_is_decided_by_its_bucket_and_interpolated_only_inside_it(
    low: float, high: float | None, estimate: float, bound: float, outcome: str, said: str
) -> None:
    server = healthy_vllm(
        queue_time_p95_low_ms=low, queue_time_p95_high_ms=high, queue_time_p95_ms=estimate
    )
    c = judge(view(server), {"primary": "vllm"}, policy=EnginePolicy(queue_p95_ms=bound))[QUEUE]
    assert c.outcome == outcome and said in c.reasons[0], c
    assert c.reasons[-1] == f"policy: p95 at most {bound:g} ms"


def test_only_a_waiting_gauge_gives_a_mean_by_littles_law() -> None:
    def gauge(mean: float) -> ServerFigures:
        return figs(
            "llamacpp",
            missing={"kv_cache_usage_max"},
            queue_depth_max=3.0,
            queue_depth_mean=mean,
        )

    samples = [sample(i, ok=True) for i in range(40)]  # 40 answers in the 20 s window: 2/s
    # 0.04 waiting / 2 per s = 20 ms: at most 4% can have waited over 500 ms (Markov).
    c = judge(view(gauge(0.04)), {"primary": "llama_cpp"}, samples)[QUEUE]
    assert c.outcome == "pass" and "mean queue time 20 ms by Little's law" in c.reasons[0]
    c = judge(view(gauge(2.0)), {"primary": "llama_cpp"}, samples)[QUEUE]
    assert c.outcome == "fail" and "the mean alone is over the bound" in c.reasons[0]
    c = judge(view(gauge(0.5)), {"primary": "llama_cpp"}, samples)[QUEUE]
    assert c.outcome == "fail" and "does not decide the p95" in c.reasons[0]  # inconclusive


def sample(i: int, ok: bool = True, cached: int | None = None, prompt: int = 100) -> Sample:
    return Sample(
        worker=0,
        seq=i,
        kind="chat",
        tenant="t",
        prompt_id=f"p{i}",
        repeated=False,
        intended_s=100.0 + i * 0.1,
        sent_s=100.0 + i * 0.1,
        e2e_ms=50.0,
        status=200 if ok else 500,
        error=None if ok else "http",
        prompt_tokens=prompt,
        cached_tokens=cached,
    )


SHARED = Reuse(0.7, "a shared prefix")


def test_the_hit_share_is_judged_with_bounds_against_what_the_workload_could_reuse() -> None:
    warm = [sample(i, cached=80) for i in range(30)]  # 80% of every prompt from the cache
    c = judge(view(healthy_vllm()), {"primary": "vllm"}, warm, SHARED)[PREFIX]
    assert c.outcome == "pass", c
    assert c.reasons[0].startswith("prefix-cache hit share 80.0% (95% bounds")
    assert "n=30 requests" in c.reasons[0] and "0.5 x the 70.0%" in c.reasons[0]
    assert c.measured["target"] == 0.35
    # The counters (50%) sit beside it.
    assert "the servers' counters say 50.0%" in c.reasons[1]
    cold = [sample(i, cached=0) for i in range(30)]
    c = judge(view(healthy_vllm()), {"primary": "vllm"}, cold, SHARED)[PREFIX]
    assert c.outcome == "fail" and c.measured["hit_share"] == 0.0


def test_the_bounds_widen_with_spread_and_an_undecided_share_is_inconclusive() -> None:
    mixed = [sample(i, cached=(100 if i % 2 else 0)) for i in range(20)]
    share = per_request_share(mixed, alpha=0.05)
    assert share is not None and share.estimate == 0.5
    assert share.low is not None and share.high is not None
    assert 0.3 < share.low < 0.5 < share.high < 0.7
    # 0.5 x 0.9 = 0.45 lies inside the bounds: undecided, which fails by default.
    c = judge(view(healthy_vllm()), {"primary": "vllm"}, mixed, Reuse(0.9, "x"))[PREFIX]
    assert c.outcome == "fail" and "bounds" in c.reasons[0]
    assert per_request_share(mixed[:10], alpha=0.05) is None  # too few: the counters decide


def test_without_answers_that_say_their_cached_tokens_the_counters_give_a_point_estimate() -> None:
    c = judge(view(healthy_vllm()), {"primary": "vllm"}, [sample(1)], SHARED)[PREFIX]
    assert c.outcome == "pass"
    assert "50.0% (a point estimate from vllm:prefix_cache_hits" in c.reasons[0]


def test_a_simulator_with_its_cache_off_says_why_it_reuses_nothing() -> None:
    sim = figs(
        "vllm",
        missing={"preemptions", "prefix_cache_hits", "prefix_cache_queries"},
        kv_cache_usage_max=0.0,
        queue_depth_max=0.0,
        requests_finished=30.0,
    )
    cold = [sample(i, cached=0) for i in range(30)]
    c = judge(view(sim), {"primary": "simulator"}, cold, SHARED)[PREFIX]
    assert c.outcome == "fail"
    assert "only with its KV cache on (enable_kvcache: true)" in c.reasons[-1]


def test_a_workload_that_reuses_almost_nothing_is_not_judged() -> None:
    c = judge(view(healthy_vllm()), {"primary": "vllm"}, [], Reuse(0.01, "a trace"))[PREFIX]
    assert c.outcome == "skipped" and "could reuse only 1.0%" in c.reasons[0]


def test_no_prometheus_skips_and_an_unreadable_one_is_an_error() -> None:
    c = judge(None, {"primary": "vllm"})
    assert {x.outcome for x in c.values()} == {"skipped"}
    assert c[KV_CACHE].reasons[0].startswith("cannot run on this stack: no Prometheus")
    c = judge(view(errors=["connection refused"]), {"primary": "vllm"})
    assert {x.outcome for x in c.values()} == {"error"}
    assert "connection refused" in c[QUEUE].reasons[0]
