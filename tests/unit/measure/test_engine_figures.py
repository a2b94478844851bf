"""The engine figures of the server view: exact counter deltas, the queue time p95 from bucket
counts (with the simulator's unobserved requests counted as waiting 0), the prefix-cache hit
share under each server's names. Prometheus is httpx's mock transport (a fake on purpose)."""

from __future__ import annotations

import json

import httpx
import pytest

from harness.clients.prometheus import PrometheusClient
from harness.measure.server import BucketQuantile, bucket_quantile, collect

INF = float("inf")


@pytest.mark.parametrize(
    ("cumulative", "zeros", "expected"),
    [
        # 100 requests, 95th in (0.3, 0.5]: 90 at or below 0.3, 100 at or below 0.5.
        ({0.3: 90, 0.5: 100, INF: 100}, 0, BucketQuantile(100, 0.3, 0.5, 0.3 + 0.2 * 5 / 10)),
        # The simulator's: 10 queued requests observed, 90 more that never waited.
        ({0.3: 0, 0.5: 0, 2.0: 10, INF: 10}, 90, BucketQuantile(100, 0.5, 2.0, 0.5 + 1.5 * 0.5)),
        # Fewer than 5% waited at all: the p95 is exactly 0.
        ({0.3: 4, INF: 4}, 96, BucketQuantile(100, 0.0, 0.0, 0.0)),
        # Past the last finite edge: bounded below only.
        ({10.0: 1, INF: 20}, 0, BucketQuantile(20, 10.0, None, 10.0)),
    ],
)
def test_the_p95_lies_in_the_bucket_of_its_nearest_rank(
    cumulative: dict[float, float], zeros: float, expected: BucketQuantile
) -> None:
    assert bucket_quantile(cumulative, zeros, 0.95) == pytest.approx(expected)


def test_no_requests_no_quantile() -> None:
    assert bucket_quantile({0.3: 0, INF: 0}, 0, 0.95) is None
    assert bucket_quantile({}, 0, 0.95) is None


def _vector(*rows: tuple[dict[str, str], float]) -> httpx.Response:
    result = [{"metric": m, "value": [0, json.dumps(v)]} for m, v in rows]
    return httpx.Response(
        200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
    )


def test_vllm_engine_figures_from_exact_deltas_under_either_counter_name() -> None:
    """The simulator's names (no `_total` on its prefix counters), 30 requests finished of
    which 10 waited in its queue: the queue p95 counts the other 20 as waiting 0."""
    names = [
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:kv_cache_usage_perc",
        "vllm:request_queue_time_seconds_bucket",
        "vllm:request_queue_time_seconds_count",
        "vllm:e2e_request_latency_seconds_count",
        "vllm:prefix_cache_hits",
        "vllm:prefix_cache_queries",
    ]
    queries: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/label/__name__/values"):
            return httpx.Response(200, json={"status": "success", "data": names})
        q = req.url.params["query"]
        queries.append(q)
        if "by (le)" in q:
            return _vector(
                ({"le": "0.3"}, 0), ({"le": "1"}, 4), ({"le": "2.5"}, 10), ({"le": "+Inf"}, 10)
            )
        values = {
            "request_queue_time_seconds_count": 10,
            "e2e_request_latency_seconds_count": 30,
            "prefix_cache_hits": 600,
            "prefix_cache_queries": 1000,
            "kv_cache_usage_perc": 0.5,
        }
        return next((_vector(({}, v)) for k, v in values.items() if k in q), _vector())

    with PrometheusClient("http://prom.test", transport=httpx.MockTransport(handler)) as c:
        view = collect(c, 100.0, 130.0, profiles=["vllm"])
    (vllm,) = view.profiles
    v = vllm.values
    assert "preemptions" in vllm.unavailable  # this simulator has no vllm:num_preemptions_total
    assert v["prefix_cache_hit_share"] == 0.6
    assert vllm.queries["prefix_cache_hits"] == (
        "sum (vllm:prefix_cache_hits) - (sum (vllm:prefix_cache_hits offset 30s) or vector(0))"
    )
    assert vllm.queries["queue_time_buckets"].startswith(
        "sum by (le) (vllm:request_queue_time_seconds_bucket) - "
    )
    # 30 requests: 20 waited 0, 4 in (0.3, 1], 6 in (1, 2.5]; the 29th lies in (1, 2.5].
    assert v["queue_time_requests"] == 30 and v["queue_time_unobserved"] == 20
    assert (v["queue_time_p95_low_ms"], v["queue_time_p95_high_ms"]) == (1000.0, 2500.0)
    assert v["kv_cache_usage_max"] == 0.5


def test_llama_cpp_hit_share_is_cached_over_cached_plus_evaluated() -> None:
    names = ["llamacpp:tokens_predicted_total", "llamacpp:prompt_tokens_total"]
    names.append("llamacpp:prompt_tokens_cached_total")

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/label/__name__/values"):
            return httpx.Response(200, json={"status": "success", "data": names})
        q = req.url.params["query"]
        if "prompt_tokens_cached_total" in q:
            return _vector(({}, 300))
        if "sum (llamacpp:prompt_tokens_total" in q:
            return _vector(({}, 100))
        return _vector()

    with PrometheusClient("http://prom.test", transport=httpx.MockTransport(handler)) as c:
        (llama,) = collect(c, 100.0, 130.0, profiles=["llamacpp"]).profiles
    assert llama.values["prefix_cache_queries"] == 400
    assert llama.values["prefix_cache_hit_share"] == 0.75
    assert "kv_cache_usage_max" in llama.unavailable  # this build: no kv_cache_usage_ratio
