"""Prometheus metrics of one gateway replica.

The first block carries the exact names of PRACTICES.md section 3 (alert rules read them); the rest
are gateway extensions. Each app gets its own registry, so several apps can live in one process
(tests) without duplicate-registration errors.
"""

from __future__ import annotations

from prometheus_client import (
    CollectorRegistry,
    Counter,
    Gauge,
    Histogram,
    PlatformCollector,
    ProcessCollector,
)

from gateway.gpu import GpuCollector, process_rss_bytes

# Latency buckets reach past both timeouts (5 s + 5 s) so the degraded tail stays visible.
DURATION_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 7.5, 10, 15, 30, 60, 120)
OVERHEAD_BUCKETS = (0.0005, 0.001, 0.002, 0.003, 0.005, 0.0075, 0.01, 0.025, 0.05, 0.1, 0.25)
# The first bucket holds the streams whose first text went out at once (no wait in the filter).
PII_HOLD_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0)
TTFT_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)

# Breaker states as gauge values (documented in README.md).
BREAKER_STATE_VALUES = {"closed": 0, "half_open": 1, "open": 2}


class GatewayMetrics:
    def __init__(self, replica: str, registry: CollectorRegistry | None = None) -> None:
        self.registry = registry or CollectorRegistry(auto_describe=True)
        r = self.registry
        ProcessCollector(registry=r)
        PlatformCollector(registry=r)

        # --- PRACTICES.md names -------------------------------------------------------------
        # status: success | error | client_error | unauthorized | rate_limited
        self.requests = Counter(
            "llm_requests_total", "Total requests", ["status", "model"], registry=r
        )
        self.duration = Histogram(
            "llm_request_duration_seconds",
            "Request duration",
            buckets=DURATION_BUCKETS,
            registry=r,
        )
        self.active = Gauge("llm_active_requests", "Active requests", registry=r)
        self.tokens_generated = Counter(
            "llm_tokens_generated_total", "Tokens generated", registry=r
        )
        self.cache_hits = Counter("llm_cache_hits_total", "Cache hits", registry=r)
        memory = Gauge("llm_memory_used_bytes", "Memory used (gateway process RSS)", registry=r)
        memory.set_function(process_rss_bytes)
        # llm_gpu_utilization_percent, llm_gpu_memory_used, llm_gpu_memory_total: only with NVML.
        r.register(GpuCollector())

        # --- gateway extensions -------------------------------------------------------------
        self.info = Gauge("llm_gateway_info", "Gateway replica", ["replica"], registry=r)
        self.info.labels(replica=replica).set(1)
        self.ttft = Histogram(
            "llm_time_to_first_token_seconds",
            "Time from request start to the first streamed token sent to the client",
            buckets=TTFT_BUCKETS,
            registry=r,
        )
        self.overhead = Histogram(
            "llm_gateway_overhead_seconds",
            "The gateway's own time per request, not counting waits on model servers",
            buckets=OVERHEAD_BUCKETS,
            registry=r,
        )
        self.pii_hold = Histogram(
            "llm_pii_filter_hold_seconds",
            "How long a stream's first text waited in the PII filter for the next delta",
            buckets=PII_HOLD_BUCKETS,
            registry=r,
        )
        self.prompt_tokens = Counter(
            "llm_prompt_tokens_total", "Prompt tokens sent to model servers", registry=r
        )
        self.cache_misses = Counter("llm_cache_misses_total", "Cache misses", registry=r)
        self.cache_bypass = Counter(
            "llm_cache_bypass_total", "Requests not eligible for the cache", ["reason"], registry=r
        )
        self.cache_errors = Counter(
            "llm_cache_errors_total",
            "Cache operations that failed (Redis unavailable); the request was served uncached",
            ["operation"],
            registry=r,
        )
        self.upstream_requests = Counter(
            "llm_upstream_requests_total",
            "Calls to model-server pools by outcome",
            ["pool", "outcome"],
            registry=r,
        )
        self.fallbacks = Counter(
            "llm_fallbacks_total",
            "Requests moved from one pool to the other",
            ["from_pool", "to_pool", "reason"],
            registry=r,
        )
        self.degraded = Counter(
            "llm_degraded_responses_total", "503 answers because no pool could answer", registry=r
        )
        self.breaker_state = Gauge(
            "llm_circuit_breaker_state",
            "Circuit breaker state per pool: 0 closed, 1 half-open, 2 open",
            ["pool"],
            registry=r,
        )
        self.breaker_transitions = Counter(
            "llm_circuit_breaker_transitions_total",
            "Circuit breaker state changes",
            ["pool", "from_state", "to_state"],
            registry=r,
        )
        self.rate_limited = Counter(
            "llm_rate_limited_total", "Requests rejected with 429", registry=r
        )
        self.rate_limit_errors = Counter(
            "llm_rate_limit_errors_total",
            "Rate-limit checks that could not reach Redis (request let through when fail_open)",
            registry=r,
        )
        self.auth_failures = Counter(
            "llm_auth_failures_total", "Rejected credentials", ["reason"], registry=r
        )
        self.injections = Counter(
            "llm_prompt_injection_detected_total",
            "Prompts matching an injection pattern",
            ["pattern"],
            registry=r,
        )
        self.pii_redactions = Counter(
            "llm_pii_redactions_total", "PII replaced in model output", ["kind"], registry=r
        )
        self.cost = Counter("llm_cost_usd_total", "Inference cost in USD", ["model"], registry=r)
        self.routing = Counter(
            "llm_routing_decisions_total", "Routing decisions", ["route", "reason"], registry=r
        )

    def set_breaker_state(self, pool: str, state: str) -> None:
        self.breaker_state.labels(pool=pool).set(BREAKER_STATE_VALUES[state])
