"""A model server's own queue, prefill and decode time per request, from its Prometheus
histograms over a run window, for servers whose answers do not carry them (vLLM and its
simulator: `vllm:request_queue_time_seconds`, `vllm:request_prefill_time_seconds`,
`vllm:request_decode_time_seconds`).

The figures are means (each histogram's sum over the window divided by the number of prefills),
not per-request values and not quantiles: the simulator's buckets for these histograms start at
0.3 s, so a quantile of a 30 ms prefill would read 150 ms, while the mean is exact. The queue's
mean is over every prefill because the simulator observes a queue time only for requests that
waited. One figure per `pool` label (the stack's scrape config sets it), else one for all.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence

from harness.clients.prometheus import PrometheusClient, PrometheusError
from harness.data.samples import Sample
from harness.measure.breakdown import ServerMeans, TtftBreakdown, build_breakdown

QUEUE = "vllm:request_queue_time_seconds"
PREFILL = "vllm:request_prefill_time_seconds"
DECODE = "vllm:request_decode_time_seconds"


def _by_pool(client: PrometheusClient, expr: str, end_s: float) -> dict[str | None, float]:
    return {
        r.labels.get("pool") or None: r.value
        for r in client.query(expr, time_s=end_s)
        if math.isfinite(r.value)
    }


def server_means(client: PrometheusClient, start_s: float, end_s: float) -> list[ServerMeans]:
    """Each pool's mean queue, prefill and decode in ms over [start_s, end_s]; [] when no server
    exports the prefill histogram or none prefilled in the window."""
    w = f"{max(2, math.ceil(end_s - start_s))}s"

    def q(metric: str) -> str:
        return f"sum by (pool) (increase({metric}[{w}]))"

    queries = {
        "prefills": q(f"{PREFILL}_count"),
        "prefill_s": q(f"{PREFILL}_sum"),
        "queue_s": q(f"{QUEUE}_sum"),
        "decodes": q(f"{DECODE}_count"),
        "decode_s": q(f"{DECODE}_sum"),
    }
    got = {name: _by_pool(client, expr, end_s) for name, expr in queries.items()}
    out: list[ServerMeans] = []
    for pool, n in sorted(got["prefills"].items(), key=lambda kv: kv[0] or ""):
        if n <= 0:
            continue
        decodes = got["decodes"].get(pool, 0.0)
        decode_s = got["decode_s"].get(pool)
        out.append(
            ServerMeans(
                pool=pool,
                requests=round(n, 2),
                # No queue series: nothing waited (the simulator observes only those that did).
                queue_ms=1000 * got["queue_s"].get(pool, 0.0) / n,
                prefill_ms=1000 * got["prefill_s"].get(pool, 0.0) / n,
                decode_ms=1000 * decode_s / decodes if decode_s is not None and decodes else None,
                queries=queries,
            )
        )
    return out


def read_server_means(
    prometheus_url: str,
    start_s: float,
    end_s: float,
    headers: dict[str, str] | None = None,
    settle_s: float = 2.0,
    timeout_s: float = 5.0,
) -> tuple[list[ServerMeans], str | None]:
    """`server_means` after the scrape that covers `end_s` (`settle_s` > the scrape interval);
    the error, when Prometheus could not answer, is returned, never raised."""
    wait = end_s + settle_s - time.time()
    if wait > 0:
        time.sleep(wait)
    try:
        with PrometheusClient(prometheus_url, timeout_s=timeout_s, headers=headers) as client:
            return server_means(client, start_s, end_s), None
    except PrometheusError as exc:
        return [], str(exc)


def run_breakdown(
    samples: Sequence[Sample],
    start_s: float,
    end_s: float,
    prometheus_url: str | None = None,
    headers: dict[str, str] | None = None,
    streamed: bool = True,
) -> TtftBreakdown | None:
    """A run's TTFT breakdown; the server's histograms are read (from `prometheus_url`) only
    when some answer that went to a model server did not carry its own timings."""
    if not any(s.gateway_ms is not None for s in samples):
        return None  # no gateway timing: nothing to break down (and no query to wait for)
    means: list[ServerMeans] = []
    error = None
    unknown = any(s.upstream_ms is not None and s.server_prefill_ms is None for s in samples)
    if prometheus_url and unknown:
        means, error = read_server_means(prometheus_url, start_s, end_s, headers)
    breakdown = build_breakdown(samples, means, streamed)
    if breakdown is not None:
        breakdown.server_error = error
    return breakdown
