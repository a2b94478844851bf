"""The engine checks seen passing and failing on real servers: the simulated stack's gate with its
defects planted (a KV cache too small with one sequence at a time, so requests also queue; the
prefix cache off), and vLLM's own metric names through a real Prometheus, where a fake exporter
stands in for vLLM because no server here preempts."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from load_fixtures import *  # noqa: F403 (fixtures)
from test_gate_defects import SIM_POLICY, run_gate

from harness.clients.prometheus import PrometheusClient
from harness.load.reuse import Reuse
from harness.measure.server import collect
from harness.spec.gate import GateProbes
from harness.spec.policy import EnginePolicy
from harness.verdict.engine import KV_CACHE, PREEMPTIONS, PREFIX, QUEUE, judge_engine

pytestmark = [pytest.mark.integration, pytest.mark.gate]

# The load step alone: two shared prefixes of 128 words on every request, 5 s at 8 a second.
PROFILE: dict[str, Any] = {
    "probes": {p: False for p in GateProbes.model_fields},
    "load": {
        "duration_s": "5s",
        "workload": {"max_tokens": 8, "shared_prefix": {"groups": 2, "words": 128, "share": 1.0}},
        "load": {"kind": "open", "rate_rps": 8, "max_send_lag_ms": 250},
    },
    "slos": ["error_rate<=0.5"],
    "confidence": {"max_duration_s": "0s", "inconclusive_is": "warn"},
    "policy": {**SIM_POLICY, "rate_limit_per_minute": 1000},
    "key_checks": [],
}
LIFTED = {"gateway": {"settings": {"rate_limit": {"requests_per_minute": 1000}}}}
# vLLM's prefix cache is on by default: the simulator's stand-in is its KV cache.
KV_ON = {**LIFTED, "primary": {"server": {"enable_kvcache": True}}}


def engine(report: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {c["name"]: c for c in report["checks"] if c["category"] == "engine"}


def test_engine_checks_pass_on_the_reference_simulated_stack(tmp_path: Path) -> None:
    _, report, out = run_gate(tmp_path, PROFILE, KV_ON)
    c = engine(report)
    assert c[PREEMPTIONS]["outcome"] == "skipped", out[-3000:]
    assert "v0.10.2" in c[PREEMPTIONS]["reasons"][0]
    assert c[KV_CACHE]["outcome"] == "pass", c[KV_CACHE]
    assert c[QUEUE]["outcome"] == "pass", c[QUEUE]
    prefix = c[PREFIX]
    assert prefix["outcome"] == "pass", prefix
    # Its lower bound is over half of what two prefixes on every request could reuse.
    m = prefix["measured"]
    assert m["expected_share"] > 0.5 and m["hit_share_low"] >= m["target"], m


def test_a_kv_cache_too_small_and_one_sequence_at_a_time_fail_kv_and_queue(
    tmp_path: Path,
) -> None:
    """11 blocks of 16 tokens hold one request of ~170 tokens (10 blocks: usage 0.91); one
    sequence at a time keeps a second from overflowing it, so the others wait in its queue.
    Two replicas serve one 16-token answer each per ~1 s: 4 arrivals a second, evenly spaced,
    are twice what they can take, so the queue grows through the window whatever the machine's
    load (at 40 ms a token and Poisson arrivals, a busy machine measured a p95 of 500-800 ms)."""
    tight = {"enable_kvcache": True, "kv_cache_size": 11, "max_num_seqs": 1}
    candidate = {**LIFTED, "primary": {"server": {**tight, "inter_token_latency_ms": 60}}}
    arrivals = {"kind": "open", "rate_rps": 4, "arrival": "constant"}
    profile = {**PROFILE, "load": {**PROFILE["load"], "load": arrivals}}
    profile["load"]["workload"] = {**PROFILE["load"]["workload"], "max_tokens": 16}
    profile["load"]["workload"]["ignore_eos"] = True
    rc, report, out = run_gate(tmp_path, profile, candidate)
    assert rc == 1, out[-3000:]
    c = engine(report)
    kv, queue = c[KV_CACHE], c[QUEUE]
    assert kv["outcome"] == "fail" and kv["measured"]["kv_cache_usage_max"] > 0.9, kv
    assert "policy ceiling 0.9: preemption is near" in kv["reasons"][0]
    assert queue["outcome"] == "fail" and queue["measured"]["queue_p95_ms"] > 500, queue
    assert any("vllm:request_queue_time_seconds's buckets" in r for r in queue["reasons"])


def test_a_prefix_cache_turned_off_fails_the_hit_share(tmp_path: Path) -> None:
    rc, report, out = run_gate(tmp_path, PROFILE, LIFTED)  # the simulator's KV cache off
    assert rc == 1, out[-3000:]
    prefix = engine(report)[PREFIX]
    assert prefix["outcome"] == "fail" and prefix["measured"]["hit_share"] == 0, prefix
    assert prefix["reasons"][0].startswith("prefix-cache hit share 0.0% (95% bounds")
    assert "only with its KV cache on" in prefix["reasons"][-1]


class FakeVllmMetrics:
    """A fake vLLM /metrics (vLLM's own names: the real vLLM needs a GPU, and the simulator has
    no preemption counter): counters the test moves, served over HTTP for Prometheus."""

    def __init__(self) -> None:
        self.preemptions = 0
        self.requests = 0  # finished, each 0.1 s in the queue
        self.hits = self.queries = 0

    def text(self) -> str:
        n, lines = self.requests, []
        for le in ("0.3", "0.5", "1.0", "+Inf"):
            lines.append(f'vllm:request_queue_time_seconds_bucket{{le="{le}"}} {n}')
        lines += [
            "vllm:num_requests_running 0",
            "vllm:num_requests_waiting 0",
            "vllm:kv_cache_usage_perc 0.4",
            f"vllm:num_preemptions_total {self.preemptions}",
            f"vllm:request_queue_time_seconds_count {n}",
            f"vllm:request_queue_time_seconds_sum {0.1 * n}",
            f"vllm:e2e_request_latency_seconds_count {n}",
            f"vllm:prefix_cache_hits_total {self.hits}",
            f"vllm:prefix_cache_queries_total {self.queries}",
        ]
        return "\n".join(lines) + "\n"


@pytest.fixture
def fake_vllm() -> Iterator[tuple[FakeVllmMetrics, str]]:
    fake = FakeVllmMetrics()

    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            body = fake.text().encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/plain; version=0.0.4")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    try:
        yield fake, f"127.0.0.1:{server.server_address[1]}"
    finally:
        server.shutdown()
        server.server_close()


def _window(prom: str, fake: FakeVllmMetrics, move: Callable[[], None]) -> list[Any]:
    """Move the counters, wait until Prometheus has scraped them, judge that window."""
    start = time.time()
    move()
    deadline = time.monotonic() + 20
    with PrometheusClient(prom) as client:
        while not _scraped(client, fake):
            assert time.monotonic() < deadline, "Prometheus never scraped the moved counters"
            time.sleep(0.2)
        view = collect(client, start, time.time())
    assert not view.errors, view.errors
    return judge_engine(view, {"primary": "vllm"}, EnginePolicy(), [], Reuse(0.6, "a test"))


def _scraped(client: PrometheusClient, fake: FakeVllmMetrics) -> bool:
    got = {
        q: r[0].value if (r := client.query(q)) else None
        for q in ("vllm:num_preemptions_total", "vllm:e2e_request_latency_seconds_count")
    }
    return list(got.values()) == [fake.preemptions, fake.requests]


def test_preemptions_under_load_fail_from_vllms_own_counter(
    fake_vllm: tuple[FakeVllmMetrics, str],
    prometheus: Callable[[list[str]], str],
) -> None:
    fake, target = fake_vllm
    prom = prometheus([target])

    def served() -> None:
        fake.requests += 20
        fake.hits, fake.queries = fake.hits + 500, fake.queries + 1000

    calm = {c.name: c for c in _window(prom, fake, served)}
    assert calm[PREEMPTIONS].outcome == "pass" and calm[PREEMPTIONS].measured["preemptions"] == 0
    assert calm[QUEUE].outcome == "pass" and "20 requests" in calm[QUEUE].reasons[0]
    assert calm[KV_CACHE].outcome == "pass"
    assert calm[PREFIX].outcome == "pass" and "vllm:prefix_cache_hits" in calm[PREFIX].reasons[0]

    def preempting() -> None:
        served()
        fake.preemptions += 3

    busy = {c.name: c for c in _window(prom, fake, preempting)}
    assert busy[PREEMPTIONS].outcome == "fail", busy[PREEMPTIONS]
    assert busy[PREEMPTIONS].reasons[0].startswith("3 requests preempted over the load window")
