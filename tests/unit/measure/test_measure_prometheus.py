"""The Prometheus client and the server-side view, against httpx's mock transport (a fake on
purpose: it returns exactly the API payloads and failures under test)."""

from __future__ import annotations

import json
from collections.abc import Callable

import httpx
import pytest

from harness.clients.prometheus import PrometheusClient, PrometheusError
from harness.measure.server import collect

Handler = Callable[[httpx.Request], httpx.Response]


def ok(data: object) -> httpx.Response:
    return httpx.Response(200, json={"status": "success", "data": data})


def client(handler: Handler) -> PrometheusClient:
    return PrometheusClient(
        "http://prom.test", timeout_s=2.0, transport=httpx.MockTransport(handler)
    )


def test_instant_targets_alerts() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        path = req.url.path
        if path == "/api/v1/query":
            assert req.url.params["query"] == "up" and req.url.params["time"] == "12.500"
            assert req.url.params["timeout"] == "2s"
            return ok(
                {"resultType": "vector", "result": [{"metric": {"job": "a"}, "value": [12.5, "1"]}]}
            )
        if path == "/api/v1/targets":
            target = {
                "labels": {"job": "gw", "instance": "x:1"},
                "health": "up",
                "scrapeUrl": "http://x:1/metrics",
                "lastError": "",
            }
            return ok({"activeTargets": [target]})
        if path == "/api/v1/alerts":
            alert = {
                "labels": {"alertname": "HighErrorRate", "severity": "critical"},
                "annotations": {"summary": "s"},
                "state": "firing",
                "activeAt": "2025-01-01T00:00:00Z",
                "value": "0.3",
            }
            return ok({"alerts": [alert]})
        raise AssertionError(path)

    with client(handler) as c:
        (s,) = c.query("up", time_s=12.5)
        assert s.labels == {"job": "a"} and s.value == 1.0
        (t,) = c.targets()
        assert (t.job, t.health) == ("gw", "up")
        (a,) = c.alerts()
        assert (a.name, a.state, a.labels["severity"]) == ("HighErrorRate", "firing", "critical")


def test_scalar_results_and_empty_values() -> None:
    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.params["query"] == "1+1":
            return ok({"resultType": "scalar", "result": [3.0, "2"]})
        return ok({"resultType": "vector", "result": []})

    with client(handler) as c:
        (two,) = c.query("1+1")
        assert two.value == 2.0 and two.labels == {}
        assert c.query("absent_metric") == []


@pytest.mark.parametrize(
    ("response", "match"),
    [
        (
            httpx.Response(
                400, json={"status": "error", "errorType": "bad_data", "error": "parse error"}
            ),
            "bad_data: parse error",
        ),
        (httpx.Response(502, text="<html>bad gateway</html>"), "not JSON"),
    ],
)
def test_api_errors_say_what_came_back(response: httpx.Response, match: str) -> None:
    with client(lambda _r: response) as c, pytest.raises(PrometheusError, match=match):
        c.query("up")


def test_unreachable_and_timeout_are_prometheus_errors() -> None:
    def refuse(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    def slow(req: httpx.Request) -> httpx.Response:
        raise httpx.ReadTimeout("slow", request=req)

    with client(refuse) as c, pytest.raises(PrometheusError, match="is Prometheus running"):
        c.targets()
    with client(slow) as c, pytest.raises(PrometheusError, match="no answer within 2s"):
        c.alerts()


def fake_prometheus(names: list[str], values: dict[str, float]) -> Handler:
    """Answers label values with `names`; a query returns the value of the first key it contains."""

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/label/__name__/values"):
            return ok(names)
        q = req.url.params["query"]
        for key, v in values.items():
            if key in q:
                if key == "by (status)":
                    return ok(
                        {
                            "resultType": "vector",
                            "result": [
                                {"metric": {"status": "success"}, "value": [0, "4"]},
                                {"metric": {"status": "error"}, "value": [0, "1"]},
                            ],
                        }
                    )
                return ok(
                    {
                        "resultType": "vector",
                        "result": [{"metric": {}, "value": [0, json.dumps(v)]}],
                    }
                )
        return ok({"resultType": "vector", "result": []})

    return handler


def test_view_picks_profiles_and_renamed_metrics() -> None:
    names = [
        "llm_requests_total",
        "llm_time_to_first_token_seconds_bucket",
        "llm_request_duration_seconds_bucket",
        "llm_tokens_generated_total",
        "llm_active_requests",
        "llm_cache_hits_total",
        # an older vLLM: time_per_output_token instead of inter_token_latency
        "vllm:num_requests_running",
        "vllm:num_requests_waiting",
        "vllm:time_to_first_token_seconds_bucket",
        "vllm:time_per_output_token_seconds_bucket",
        "vllm:generation_tokens_total",
        "vllm:gpu_cache_usage_perc",
    ]
    values = {
        "by (status)": 0,
        "llm_requests_total": 5.0,
        "time_per_output_token": 0.021,
        "vllm:generation_tokens_total": 99.0,
    }
    with client(fake_prometheus(names, values)) as c:
        view = collect(c, 100.0, 130.0)
    assert not view.errors and view.window == "30s"
    profiles = {p.profile: p for p in view.profiles}
    assert set(profiles) == {"gateway", "vllm"}  # no llamacpp metrics
    gw, vl = profiles["gateway"], profiles["vllm"]
    assert gw.values["request_rate_rps"] == 5.0
    assert gw.by_label["status_rate_rps"] == {"success": 4.0, "error": 1.0}
    assert "cache_hit_rate" in gw.unavailable  # needs llm_cache_misses_total
    assert "time_per_output_token" in vl.queries["itl_p50_ms"]
    assert "gpu_cache_usage_perc" in vl.queries["kv_cache_usage_max"]
    assert vl.values["output_tokens_per_second"] == 99.0
    assert "[30s]" in vl.queries["ttft_p95_ms"]
    assert "request_rate_rps" in vl.unavailable


def test_view_records_errors_instead_of_raising() -> None:
    def down(req: httpx.Request) -> httpx.Response:
        raise httpx.ConnectError("refused", request=req)

    with client(down) as c:
        view = collect(c, 0.0, 10.0)
    assert view.profiles == [] and "refused" in view.errors[0]


def test_model_servers_are_viewed_pool_by_pool_when_targets_carry_the_pool_label() -> None:
    names = ["llamacpp:tokens_predicted_total", "llamacpp:requests_processing"]
    queries: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        if req.url.path.endswith("/label/__name__/values"):
            return ok(names)
        q = req.url.params["query"]
        queries.append(q)
        if q.startswith("count by (pool)"):
            return ok(
                {
                    "resultType": "vector",
                    "result": [
                        {"metric": {"pool": "primary"}, "value": [0, "2"]},
                        {"metric": {"pool": "fallback"}, "value": [0, "1"]},
                    ],
                }
            )
        rate = 40.0 if 'pool="primary"' in q else 10.0
        return ok({"resultType": "vector", "result": [{"metric": {}, "value": [0, str(rate)]}]})

    with client(handler) as c:
        view = collect(c, 100.0, 130.0)
    assert not view.errors
    by_pool = {p.pool: p for p in view.profiles}
    assert set(by_pool) == {"fallback", "primary"}
    assert by_pool["primary"].values["output_tokens_per_second"] == 40.0
    assert by_pool["fallback"].values["output_tokens_per_second"] == 10.0
    assert by_pool["primary"].queries["output_tokens_per_second"] == (
        'sum(rate(llamacpp:tokens_predicted_total{pool="primary"}[30s]))'
    )
    assert (
        'sum(llamacpp:requests_processing{pool="fallback"})'
        in (by_pool["fallback"].queries["running_max"])
    )


def test_gateway_overhead_quantiles_sit_beside_the_other_gateway_figures() -> None:
    names = ["llm_requests_total", "llm_gateway_overhead_seconds_bucket"]
    values = {"llm_gateway_overhead_seconds_bucket": 0.0021}
    with client(fake_prometheus(names, values)) as c:
        view = collect(c, 100.0, 130.0)
    (gw,) = view.profiles
    for tag, q in (("p50", "0.5"), ("p95", "0.95"), ("p99", "0.99")):
        query = gw.queries[f"overhead_{tag}_ms"]
        assert query.startswith(f"1000 * histogram_quantile({q},")
        assert "llm_gateway_overhead_seconds_bucket[30s]" in query
        assert gw.values[f"overhead_{tag}_ms"] == 0.0021
    # A gateway without the histogram (an older one) lists the figures as unavailable.
    with client(fake_prometheus(["llm_requests_total"], {})) as c:
        (old,) = collect(c, 100.0, 130.0).profiles
    assert "overhead_p95_ms" in old.unavailable


def test_the_pii_filters_wait_is_its_own_figure_beside_the_overhead() -> None:
    names = ["llm_requests_total", "llm_pii_filter_hold_seconds_bucket"]
    values = {"llm_pii_filter_hold_seconds_bucket": 0.17}
    with client(fake_prometheus(names, values)) as c:
        (gw,) = collect(c, 100.0, 130.0).profiles
    assert 'llm_pii_filter_hold_seconds_bucket{le="0.0005"}[30s]' in gw.queries["pii_held_share"]
    assert "llm_pii_filter_hold_seconds_count[30s]" in gw.queries["pii_held_share"]
    assert gw.queries["pii_hold_p95_ms"].startswith("1000 * histogram_quantile(0.95,")
    assert gw.values["pii_held_share"] == 0.17
