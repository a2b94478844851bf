"""The server-side view of a run: what the gateway and model servers told Prometheus, same window.

Metric names differ by server and by version, so each figure is looked up through a profile
(gateway `llm_*`, under an external gateway's own names when its spec maps them; vLLM and the
simulator `vllm:*`, llama.cpp `llamacpp:*`) that lists candidate queries in order; the first
whose metric Prometheus has is used and recorded in the report.
Histogram quantiles are Prometheus estimates from buckets, not exact: they sit beside the
client's exact figures as a cross-check, never in place of them.

The engine's figures (judged by harness/verdict/engine.py; docs/engine.md): preemptions, the KV
cache's peak, the queue time p95 from its bucket counts (where the p95 lies, not only an
estimate) and the prefix-cache hit share, with counts taken as exact deltas over the window.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from pydantic import BaseModel, ConfigDict

from harness import wire
from harness.clients.prometheus import PrometheusClient, PrometheusError

# Bucket counts of the queue time (le -> requests), in `by_label`.
QUEUE_BUCKETS = "queue_time_buckets"

# Templates use $w for the window ("37s") and $sel for a label selector after each metric name
# ('{pool="primary"}' or nothing): str.format would trip over PromQL's braces.


def _hq(q: float, bucket: str) -> str:
    return f"1000 * histogram_quantile({q}, sum by (le) (rate({bucket}$sel[$w])))"


def _max_over(gauge_sum: str) -> str:
    return f"max_over_time(({gauge_sum})[$w:1s])"


def _mean_over(gauge_sum: str) -> str:
    return f"avg_over_time(({gauge_sum})[$w:1s])"


def _delta(counter: str, by: str = "") -> str:
    """A counter's growth over the window, exactly: its last value minus the one a window earlier,
    or minus 0 where the series did not exist yet (`increase()` would drop the first value of a
    series born in the window, as the simulator's are at their first request, and extrapolate)."""
    agg = f"sum by ({by})" if by else "sum"
    before = f"{agg} ({counter}$sel) * 0" if by else "vector(0)"
    return f"{agg} ({counter}$sel) - ({agg} ({counter}$sel offset $w) or {before})"


def _either(*names: str) -> list[tuple[str, str]]:
    """A counter's delta under any of its names (vLLM's `_total`; the simulator's has none)."""
    return [(n, _delta(n)) for n in names]


@dataclass(frozen=True)
class MetricProfile:
    name: str
    detect: tuple[str, ...]  # any of these metric names present -> the profile applies
    # figure -> [(metric that must exist, PromQL template)], first match wins
    figures: dict[str, list[tuple[str, str]]]
    # Model servers: one set of figures per `pool` label (primary, fallback) when targets have it.
    per_pool: bool = False


def _latency(ttft: str, itl: list[str], e2e: str) -> dict[str, list[tuple[str, str]]]:
    out: dict[str, list[tuple[str, str]]] = {}
    for q, tag in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99")):
        # Prometheus lists a histogram's series (_bucket, _sum, _count), not its own name.
        out[f"ttft_{tag}_ms"] = [(f"{ttft}_bucket", _hq(q, f"{ttft}_bucket"))]
        out[f"e2e_{tag}_ms"] = [(f"{e2e}_bucket", _hq(q, f"{e2e}_bucket"))]
        if itl:
            out[f"itl_{tag}_ms"] = [(f"{m}_bucket", _hq(q, f"{m}_bucket")) for m in itl]
    return out


GATEWAY = MetricProfile(
    name="gateway",
    detect=("llm_requests_total",),
    figures={
        "request_rate_rps": [("llm_requests_total", "sum(rate(llm_requests_total[$w]))")],
        "error_share": [
            (
                "llm_requests_total",
                'sum(rate(llm_requests_total{status="error"}[$w]))'
                " / sum(rate(llm_requests_total[$w]))",
            )
        ],
        "status_rate_rps": [
            ("llm_requests_total", "sum by (status) (rate(llm_requests_total[$w]))")
        ],
        **_latency("llm_time_to_first_token_seconds", [], "llm_request_duration_seconds"),
        # The gateway's own time per request (no model-server waits), beside the client's figures.
        **{
            f"overhead_{tag}_ms": [
                (
                    "llm_gateway_overhead_seconds_bucket",
                    _hq(q, "llm_gateway_overhead_seconds_bucket"),
                )
            ]
            for q, tag in ((0.5, "p50"), (0.95, "p95"), (0.99, "p99"))
        },
        # The streaming PII filter's wait for the next delta: a cost of the practice, not of the
        # gateway's CPU, so it is its own figure (the first bucket is "sent at once").
        "pii_held_share": [
            (
                "llm_pii_filter_hold_seconds_bucket",
                '1 - sum(increase(llm_pii_filter_hold_seconds_bucket{le="0.0005"}[$w]))'
                " / sum(increase(llm_pii_filter_hold_seconds_count[$w]))",
            )
        ],
        "pii_hold_p95_ms": [
            (
                "llm_pii_filter_hold_seconds_bucket",
                _hq(0.95, "llm_pii_filter_hold_seconds_bucket"),
            )
        ],
        "output_tokens_per_second": [
            ("llm_tokens_generated_total", "sum(rate(llm_tokens_generated_total[$w]))")
        ],
        "running_max": [("llm_active_requests", _max_over("sum(llm_active_requests)"))],
        "cache_hits_per_second": [("llm_cache_hits_total", "sum(rate(llm_cache_hits_total[$w]))")],
        "cache_hit_rate": [
            (
                "llm_cache_misses_total",
                "sum(increase(llm_cache_hits_total[$w])) / (sum(increase(llm_cache_hits_total[$w]))"
                " + sum(increase(llm_cache_misses_total[$w])))",
            )
        ],
    },
)

VLLM = MetricProfile(
    name="vllm",
    detect=("vllm:num_requests_running", "vllm:generation_tokens_total"),
    per_pool=True,
    figures={
        "request_rate_rps": [
            ("vllm:request_success_total", "sum(rate(vllm:request_success_total$sel[$w]))")
        ],
        **_latency(
            "vllm:time_to_first_token_seconds",
            # renamed in vLLM 0.11: inter_token_latency replaced time_per_output_token
            ["vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"],
            "vllm:e2e_request_latency_seconds",
        ),
        "output_tokens_per_second": [
            ("vllm:generation_tokens_total", "sum(rate(vllm:generation_tokens_total$sel[$w]))")
        ],
        "prompt_tokens_per_second": [
            ("vllm:prompt_tokens_total", "sum(rate(vllm:prompt_tokens_total$sel[$w]))")
        ],
        "queue_depth_max": [
            ("vllm:num_requests_waiting", _max_over("sum(vllm:num_requests_waiting$sel)"))
        ],
        "running_max": [
            ("vllm:num_requests_running", _max_over("sum(vllm:num_requests_running$sel)"))
        ],
        "kv_cache_usage_max": [
            ("vllm:kv_cache_usage_perc", _max_over("max(vllm:kv_cache_usage_perc$sel)")),
            ("vllm:gpu_cache_usage_perc", _max_over("max(vllm:gpu_cache_usage_perc$sel)")),
        ],
        "cache_hit_rate": [
            (
                f"vllm:prefix_cache_queries{total}",
                f"sum(increase(vllm:prefix_cache_hits{total}$sel[$w]))"
                f" / sum(increase(vllm:prefix_cache_queries{total}$sel[$w]))",
            )
            for total in ("_total", "")
        ],
        # Engine state (judged by harness/verdict/engine.py). Counts are exact deltas.
        "preemptions": _either("vllm:num_preemptions_total"),
        "queue_depth_mean": [
            ("vllm:num_requests_waiting", _mean_over("sum(vllm:num_requests_waiting$sel)"))
        ],
        # Queue time per request, as bucket counts (le -> requests); vLLM observes every
        # finished request, the simulator only those that waited: the others waited 0.
        QUEUE_BUCKETS: [
            (
                "vllm:request_queue_time_seconds_bucket",
                _delta("vllm:request_queue_time_seconds_bucket", by="le"),
            )
        ],
        "queue_time_observed": _either("vllm:request_queue_time_seconds_count"),
        "requests_finished": _either("vllm:e2e_request_latency_seconds_count"),
        # Prompt tokens looked up in the prefix cache and found there.
        "prefix_cache_hits": _either("vllm:prefix_cache_hits_total", "vllm:prefix_cache_hits"),
        "prefix_cache_queries": _either(
            "vllm:prefix_cache_queries_total", "vllm:prefix_cache_queries"
        ),
    },
)

LLAMACPP = MetricProfile(
    name="llamacpp",
    detect=("llamacpp:tokens_predicted_total",),
    per_pool=True,
    figures={
        "output_tokens_per_second": [
            (
                "llamacpp:tokens_predicted_total",
                "sum(rate(llamacpp:tokens_predicted_total$sel[$w]))",
            )
        ],
        "prompt_tokens_per_second": [
            ("llamacpp:prompt_tokens_total", "sum(rate(llamacpp:prompt_tokens_total$sel[$w]))")
        ],
        "queue_depth_max": [
            ("llamacpp:requests_deferred", _max_over("sum(llamacpp:requests_deferred$sel)"))
        ],
        "running_max": [
            ("llamacpp:requests_processing", _max_over("sum(llamacpp:requests_processing$sel)"))
        ],
        "kv_cache_usage_max": [
            ("llamacpp:kv_cache_usage_ratio", _max_over("max(llamacpp:kv_cache_usage_ratio$sel)"))
        ],
        "queue_depth_mean": [
            ("llamacpp:requests_deferred", _mean_over("sum(llamacpp:requests_deferred$sel)"))
        ],
        # prompt_tokens_total counts the prompt tokens it evaluated; the ones it took from a
        # slot's cache are prompt_tokens_cached_total (this build; older ones lack it).
        "prefix_cache_hits": _either("llamacpp:prompt_tokens_cached_total"),
        "prompt_tokens_evaluated": _either("llamacpp:prompt_tokens_total"),
    },
)

PROFILES: dict[str, MetricProfile] = {p.name: p for p in (GATEWAY, VLLM, LLAMACPP)}
_GATEWAY_METRIC = re.compile(r"\bllm_[a-z_]+")


def under_names(prof: MetricProfile, name: Callable[[str], str | None]) -> MetricProfile:
    """The gateway profile under a gateway's own metric names (`name`: harness.wire's mapping);
    a query reading a metric the gateway does not have is dropped."""

    def rename(text: str) -> str | None:
        absent: list[str] = []

        def one(m: re.Match[str]) -> str:
            mapped = name(m.group(0))
            if mapped is None:
                absent.append(m.group(0))
            return mapped or m.group(0)

        out = _GATEWAY_METRIC.sub(one, text)
        return None if absent else out

    figures = {
        figure: [
            (m, t) for metric, tmpl in candidates if (m := rename(metric)) and (t := rename(tmpl))
        ]
        for figure, candidates in prof.figures.items()
    }
    return replace(prof, detect=tuple(d for n in prof.detect if (d := rename(n))), figures=figures)


class ServerFigures(BaseModel):
    model_config = ConfigDict(extra="ignore")
    profile: str
    pool: str | None = None  # the pool these figures are of; None: every instance together
    values: dict[str, float | None]
    by_label: dict[str, dict[str, float]] = {}  # e.g. status_rate_rps by status
    queries: dict[str, str]  # the PromQL each value came from (reproducible by hand)
    unavailable: list[str]  # figures this server does not export


class ServerView(BaseModel):
    model_config = ConfigDict(extra="ignore")
    prometheus: str
    start_s: float
    end_s: float
    window: str
    profiles: list[ServerFigures]
    errors: list[str]


def _window(start_s: float, end_s: float) -> str:
    return f"{max(2, math.ceil(end_s - start_s))}s"


def collect(
    client: PrometheusClient,
    start_s: float,
    end_s: float,
    profiles: list[str] | None = None,
    budget_s: float = 30.0,
) -> ServerView:
    """Query every figure of every profile present; errors are recorded, never raised."""
    w = _window(start_s, end_s)
    view = ServerView(
        prometheus=client.base_url, start_s=start_s, end_s=end_s, window=w, profiles=[], errors=[]
    )
    give_up = time.monotonic() + budget_s
    try:
        names = set(client.metric_names())
    except PrometheusError as exc:
        view.errors.append(str(exc))
        return view
    for prof in (PROFILES[p] for p in (profiles or list(PROFILES))):
        if prof is GATEWAY:
            prof = under_names(prof, wire.current().metric)
        present = [d for d in prof.detect if d in names]
        if not present:
            continue
        pools = _pools(client, present[0], end_s, view) if prof.per_pool else []
        each: list[str | None] = [*pools] or [None]
        for pool in each:
            sel = "" if pool is None else '{pool="' + pool + '"}'
            view.profiles.append(_figures(client, prof, names, w, sel, pool, end_s, give_up, view))
    return view


def _pools(client: PrometheusClient, metric: str, end_s: float, view: ServerView) -> list[str]:
    """The `pool` labels the stack's scrape config puts on model-server targets (none: [])."""
    try:
        result = client.query(f'count by (pool) ({metric}{{pool!=""}})', time_s=end_s)
    except PrometheusError as exc:
        view.errors.append(f"pools of {metric}: {exc}")
        return []
    return sorted({r.labels["pool"] for r in result if r.labels.get("pool")})


def _figures(
    client: PrometheusClient,
    prof: MetricProfile,
    names: set[str],
    w: str,
    sel: str,
    pool: str | None,
    end_s: float,
    give_up: float,
    view: ServerView,
) -> ServerFigures:
    where = prof.name + (f"[{pool}]" if pool else "")
    figs = ServerFigures(profile=prof.name, pool=pool, values={}, queries={}, unavailable=[])
    for figure, candidates in prof.figures.items():
        chosen = next((tmpl for metric, tmpl in candidates if metric in names), None)
        if chosen is None:
            figs.unavailable.append(figure)
            continue
        if time.monotonic() > give_up:
            view.errors.append(f"{where}.{figure}: skipped, query budget spent")
            continue
        expr = chosen.replace("$w", w).replace("$sel", sel)
        figs.queries[figure] = expr
        try:
            result = client.query(expr, time_s=end_s)
        except PrometheusError as exc:
            view.errors.append(f"{where}.{figure}: {exc}")
            continue
        if figure in _BY_LABEL:
            label = _BY_LABEL[figure]
            figs.by_label[figure] = {
                r.labels.get(label, ""): r.value for r in result if not math.isnan(r.value)
            }
            continue
        value = result[0].value if result else math.nan
        figs.values[figure] = None if math.isnan(value) or math.isinf(value) else value
    _derive(figs)
    return figs


_BY_LABEL = {"status_rate_rps": "status", QUEUE_BUCKETS: "le"}
QUEUE_Q = 0.95


@dataclass(frozen=True)
class BucketQuantile:
    """Where a quantile of bucketed requests lies: low < x <= high (x == 0 when both are 0;
    high None: above the last finite edge), and the estimate interpolated as Prometheus does."""

    n: int
    low: float
    high: float | None
    estimate: float


def bucket_quantile(
    cumulative: dict[float, float], zeros: float, q: float
) -> BucketQuantile | None:
    """The q-quantile (nearest rank: the ceil(q n)-th smallest) of the requests counted in
    cumulative buckets (upper edge -> requests at or below it, +Inf included) plus `zeros`
    requests known to be exactly 0. None without requests."""
    edges = sorted(cumulative)
    n = round((cumulative[edges[-1]] if edges else 0.0) + zeros)
    if n <= 0:
        return None
    k = max(1, math.ceil(q * n - 1e-9))
    if k <= zeros:
        return BucketQuantile(n, 0.0, 0.0, 0.0)
    low, below = 0.0, zeros
    for edge in edges:
        at = cumulative[edge] + zeros
        if at >= k:
            if math.isinf(edge):
                return BucketQuantile(n, low, None, low)
            share = (k - below) / (at - below) if at > below else 1.0
            return BucketQuantile(n, low, edge, low + (edge - low) * share)
        low, below = edge, at
    return BucketQuantile(n, low, None, low)  # counts that do not add up: past the last edge


def _derive(figs: ServerFigures) -> None:
    """Figures computed from the queried ones: the prefix-cache hit share, the queue time p95."""
    v = figs.values
    hits = v.get("prefix_cache_hits")
    if "prompt_tokens_evaluated" in v:  # llama.cpp: looked up = taken from cache + evaluated
        evaluated = v["prompt_tokens_evaluated"]
        v["prefix_cache_queries"] = None if hits is None or evaluated is None else hits + evaluated
    queries = v.get("prefix_cache_queries")
    if hits is not None and queries:
        v["prefix_cache_hit_share"] = hits / queries
    raw = figs.by_label.get(QUEUE_BUCKETS)
    if not raw:
        return
    cumulative = {float(le): count for le, count in raw.items()}
    observed, finished = v.get("queue_time_observed"), v.get("requests_finished")
    zeros = max(0.0, finished - observed) if finished is not None and observed is not None else 0.0
    p95 = bucket_quantile(cumulative, zeros, QUEUE_Q)
    if p95 is None:
        return
    v["queue_time_requests"] = p95.n
    v["queue_time_unobserved"] = zeros
    v["queue_time_p95_ms"] = 1000 * p95.estimate
    v["queue_time_p95_low_ms"] = 1000 * p95.low
    v["queue_time_p95_high_ms"] = None if p95.high is None else 1000 * p95.high


def collect_view(
    prometheus_url: str,
    start_s: float,
    end_s: float,
    settle_s: float = 2.0,
    timeout_s: float = 5.0,
    headers: dict[str, str] | None = None,
) -> ServerView:
    """Wait for the scrape that covers `end_s`, then query. `settle_s` > the scrape interval;
    `headers`: the credentials an external stack's Prometheus asks for."""
    wait = end_s + settle_s - time.time()
    if wait > 0:
        time.sleep(wait)
    with PrometheusClient(prometheus_url, timeout_s=timeout_s, headers=headers) as client:
        return collect(client, start_s, end_s)
