"""Where the time to first token went: each request's parts from its own records, the bands at
p50 and p95 that add up, and the server's histogram means read from Prometheus (httpx's mock
transport: a fake on purpose, it returns exactly the API payloads under test)."""

from __future__ import annotations

import httpx
import pytest

from harness.clients.prometheus import PrometheusClient
from harness.data.samples import Sample
from harness.measure.breakdown import (
    PART_LABELS,
    ServerMeans,
    breakdown_rows,
    build_breakdown,
    decode_line,
    request_parts,
)
from harness.measure.server_timings import server_means


def sample(seq: int = 0, ttft: float = 40.0, **kw: object) -> Sample:
    fields: dict[str, object] = {
        "worker": 0,
        "seq": seq,
        "kind": "chat",
        "tenant": "t",
        "prompt_id": "p",
        "repeated": False,
        "intended_s": None,
        "sent_s": float(seq),
        "e2e_ms": ttft + 20.0,
        "status": 200,
        "ttft_ms": ttft,
        "first_event_ms": ttft - 2.0,
        "gateway_ms": 1.0,
        "upstream_ms": ttft - 6.0,
        "x_served_by": "primary",
    }
    return Sample(**{**fields, **kw})  # type: ignore[arg-type]


SIM = {"primary": ServerMeans(pool="primary", requests=10, queue_ms=1.5, prefill_ms=30.0)}


def test_a_request_with_llama_cpps_own_timings_is_split_per_request() -> None:
    r = request_parts(sample(server_prefill_ms=25.0, server_decode_ms=90.0), SIM)
    assert not isinstance(r, str)
    assert r.source == "per request" and r.server_known
    assert r.parts_ms == {
        "gateway_ms": 1.0,
        "server_queue_ms": 0.0,  # llama.cpp reports none: it stays in the rest
        "server_prefill_ms": 25.0,
        "upstream_rest_ms": 9.0,  # 34 ms waited, 25 of them the server's own
        "first_text_wait_ms": 2.0,
        "unexplained_ms": 3.0,  # 40 - (1 + 34 + 2)
    }
    assert sum(r.parts_ms.values()) == pytest.approx(r.ttft_ms)
    assert r.gap_ms == 12.0


def test_a_request_without_them_takes_its_pools_histogram_means() -> None:
    r = request_parts(sample(), SIM)
    assert not isinstance(r, str) and r.source == "histogram mean"
    assert r.parts_ms["server_queue_ms"] == 1.5 and r.parts_ms["server_prefill_ms"] == 30.0
    assert r.parts_ms["upstream_rest_ms"] == pytest.approx(2.5)
    # Another pool's means are not this request's: its server part is not known.
    other = request_parts(sample(x_served_by="fallback"), SIM)
    assert not isinstance(other, str) and other.source == "not reported"
    assert not other.server_known and other.parts_ms["upstream_rest_ms"] == 34.0
    # Servers scraped without a pool label: one set of means for all.
    bare = request_parts(sample(x_served_by=None), {None: SIM["primary"]})
    assert not isinstance(bare, str) and bare.source == "histogram mean"


def test_a_whole_answer_counts_the_servers_decode_as_its_own() -> None:
    r = request_parts(sample(server_prefill_ms=25.0, server_decode_ms=5.0), {}, streamed=False)
    assert not isinstance(r, str) and r.parts_ms["server_prefill_ms"] == 30.0


def test_requests_that_cannot_be_broken_down_say_why() -> None:
    assert request_parts(sample(error="http", status=503), SIM) == "failed or no text"
    assert request_parts(sample(gateway_ms=None), SIM) == "no Server-Timing from the gateway"
    assert request_parts(sample(upstream_ms=None), SIM) == "no model-server call (cache hit)"


def test_bands_add_up_to_the_ttft_of_the_requests_around_each_percentile() -> None:
    samples = [sample(seq=i, ttft=40.0 + i, server_prefill_ms=20.0 + i / 2) for i in range(100)] + [
        sample(seq=100, upstream_ms=None),
        sample(seq=101, error="timeout", ttft_ms=None),
    ]
    b = build_breakdown(samples)
    assert b is not None and b.requests == 100
    assert b.left_out == {"no model-server call (cache hit)": 1, "failed or no text": 1}
    assert b.server_source == {"per request": 100} and not b.histogram_only
    p50, p95 = b.band(50.0), b.band(95.0)
    assert p50 is not None and p95 is not None
    assert p50.requests == 4 and p95.requests == 5  # ranks within 2.5 points
    assert p50.ttft_ms == pytest.approx(89.5) and p95.ttft_ms == pytest.approx(134.0)
    for band in (p50, p95):
        assert sum(band.parts_ms.values()) == pytest.approx(band.ttft_ms)
    assert b.unexplained_ms.p50 == pytest.approx(3.0) and b.gap_ms.count == 100
    assert b.ttft_ms.count == 100
    rows = breakdown_rows(b)
    assert [r[0] for r in rows] == [*PART_LABELS.values(), "= client TTFT"]
    assert rows[-1][1:3] == ("89.5", "134.0")
    assert "per request" in rows[2][3]


def test_after_the_first_token_the_servers_decode_sits_beside_the_clients() -> None:
    means = [ServerMeans(pool="primary", requests=3, prefill_ms=30.0, decode_ms=18.5)]
    b = build_breakdown([sample(seq=i) for i in range(3)], means)
    assert b is not None and b.histogram_only
    assert decode_line(b) == (
        "after the first token: client (e2e - TTFT) p50 20.0 ms (n=3); "
        "model server's decode histogram mean: primary 18.5 ms"
    )


def test_no_breakdown_without_the_gateways_timing() -> None:
    assert build_breakdown([sample(gateway_ms=None, upstream_ms=None)]) is None
    one = build_breakdown([sample()])
    assert one is not None and one.bands[0].requests == 1 and one.gap_ms.count == 0


def test_histogram_means_per_pool_from_prometheus() -> None:
    values = {
        "vllm:request_prefill_time_seconds_count": {"primary": 20, "fallback": 0},
        "vllm:request_prefill_time_seconds_sum": {"primary": 0.62, "fallback": 0},
        "vllm:request_queue_time_seconds_sum": {"primary": 0.04},
        "vllm:request_decode_time_seconds_count": {"primary": 20},
        "vllm:request_decode_time_seconds_sum": {"primary": 2.0},
    }
    seen: list[str] = []

    def handler(req: httpx.Request) -> httpx.Response:
        q = req.url.params["query"]
        seen.append(q)
        assert q.startswith("sum by (pool) (increase(") and q.endswith("[7s]))")
        metric = q.removeprefix("sum by (pool) (increase(").removesuffix("[7s]))")
        result = [
            {"metric": {"pool": pool}, "value": [107.0, str(v)]}
            for pool, v in values.get(metric, {}).items()
        ]
        return httpx.Response(
            200, json={"status": "success", "data": {"resultType": "vector", "result": result}}
        )

    transport = httpx.MockTransport(handler)
    with PrometheusClient("http://prom.test", transport=transport) as c:
        (m,) = server_means(c, 100.2, 107.0)  # the fallback pool prefilled nothing
    assert len(seen) == 5
    assert m.pool == "primary" and m.requests == 20
    assert m.prefill_ms == pytest.approx(31.0) and m.queue_ms == pytest.approx(2.0)
    assert m.decode_ms == pytest.approx(100.0)
