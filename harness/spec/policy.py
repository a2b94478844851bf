"""The policy of a gate profile: the practice values a candidate stack is judged against.

The gate profile is the policy; the stack is the candidate. Every value here defaults to
PRACTICES.md, and the probes take their expectations from here, never from the candidate's own
settings, so nothing the candidate says can lower its own bar.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field

from harness.spec.base import Strict
from harness.spec.gateway import DEFAULT_INJECTION_PATTERNS

PRACTICES_METRICS = (
    "llm_requests_total",
    "llm_request_duration_seconds_bucket",
    "llm_active_requests",
    "llm_tokens_generated_total",
    "llm_cache_hits_total",
    "llm_memory_used_bytes",
)
PRACTICES_ALERTS = ("HighErrorRate", "SlowResponse", "GPUMemoryHigh")
# Scrape jobs of the reference stack; a target missing from Prometheus is a monitoring gap.
EXPECTED_JOBS = ("gateway", "model-primary", "model-fallback", "nginx", "redis", "alertmanager")


class BreakerPolicy(Strict):
    # The breaker must open after at most this many consecutive failures ...
    failure_threshold: int = Field(5, ge=1)
    # ... and stay open at least this long before it tries the pool again (half-open).
    recovery_timeout_s: float = Field(60.0, gt=0)


class FallbackPolicy(Strict):
    # The primary may take at most this long before the gateway falls back.
    timeout_s: float = Field(5.0, gt=0)
    # Answers from the fallback pool are capped at this many tokens.
    max_tokens: int = Field(50, ge=1)


class CachePolicy(Strict):
    # Cached answers may be at most this old.
    ttl_s: int = Field(3600, ge=1)
    # A hit must answer at least this many times faster than the miss that filled it.
    hit_speedup: float = Field(10.0, ge=1)
    # Under a load that repeats prompts: of the answers a cache with `ttl_s` should give from
    # its entries (a repeat of a prompt answered earlier), at least this share must be hits.
    # Not 1: an entry evicted under memory pressure is a miss a working cache may rightly have.
    min_hits_of_expected: float = Field(0.8, ge=0, le=1)


class StreamingPolicy(Strict):
    # A proxy that buffers a stream delivers its chunks at once: the span from the first content
    # chunk to the last, as a share of the whole request, is near 0. (Gaps between chunks are
    # measured, not judged: a gateway may rightly send tokens that arrived together in one write.)
    min_spread: float = Field(0.05, ge=0, le=1)
    min_chunks: int = Field(4, ge=2)


class InjectionPolicy(Strict):
    # Prompts with any of these (case-insensitive substrings, PRACTICES.md's list) are flagged:
    # counted under the pattern by the gateway. The probe sends each one.
    patterns: tuple[Annotated[str, Field(min_length=1)], ...] = Field(
        DEFAULT_INJECTION_PATTERNS, min_length=1
    )
    # log: flagged and let through (a candidate that refuses them is stricter and passes);
    # reject: refused with the gateway contract's `prompt_injection` answer.
    action: Literal["log", "reject"] = "log"


class AlertPolicy(Strict):
    # Alert rules that must be deployed, by name.
    required: tuple[str, ...] = PRACTICES_ALERTS
    # The policy's promtool unit tests (relative to the profile; empty: the project's own),
    # run against the rules the candidate actually deployed.
    rule_tests: str = ""
    # The deployed thresholds may not be looser than these.
    max_error_rate_threshold: float = Field(0.05, ge=0, le=1)
    max_slow_p95_seconds: float = Field(10.0, gt=0)
    max_gpu_memory_ratio: float = Field(0.95, gt=0, le=1)


class MonitoringPolicy(Strict):
    jobs: tuple[str, ...] = EXPECTED_JOBS
    gateway_metrics: tuple[str, ...] = PRACTICES_METRICS


class ResourcePolicy(Strict):
    # Ceilings per service during the load step; None: reported, not judged.
    cpu_percent_max: float | None = Field(None, gt=0)
    rss_mb_max: float | None = Field(None, gt=0)


class EnginePolicy(Strict):
    """The model servers' own state during the SLO load, from their metrics (harness/verdict/
    engine.py; docs/engine.md). A server that does not export a figure skips its check, unless
    its kind is known to export it (vLLM, the simulator): then the check fails."""

    # Preempted requests (vLLM's vllm:num_preemptions_total) allowed during the load: each one
    # restarts its prefill, the tail latency's usual cause on a GPU.
    max_preemptions: int = Field(0, ge=0)
    # Highest KV cache usage (0-1) seen during the load; above it preemption is near.
    kv_cache_max: float = Field(0.9, gt=0, le=1)
    # p95 of the time requests wait in the server's queue before their prefill (0.5 s is an
    # edge of vLLM's queue-time buckets, so its p95 is decided from the buckets exactly).
    queue_p95_ms: float = Field(500.0, gt=0)
    # The prefix-cache hit share must reach this share of what the workload could reuse.
    min_prefix_reuse_ratio: float = Field(0.5, ge=0, le=1)


class Policy(Strict):
    """PRACTICES.md's values; a profile changes only what it names."""

    rate_limit_per_minute: int = Field(100, ge=1)
    breaker: BreakerPolicy = BreakerPolicy()
    fallback: FallbackPolicy = FallbackPolicy()
    max_prompt_chars: int = Field(10_000, ge=1)
    injection: InjectionPolicy = InjectionPolicy()
    # Output PII that must be filtered (the gateway's kinds: email, phone, ssn).
    pii_kinds: tuple[Literal["email", "phone", "ssn"], ...] = ("email", "phone", "ssn")
    cache: CachePolicy = CachePolicy()
    streaming: StreamingPolicy = StreamingPolicy()
    alerts: AlertPolicy = AlertPolicy()
    monitoring: MonitoringPolicy = MonitoringPolicy()
    resources: ResourcePolicy = ResourcePolicy()
    # Answers served by the primary pool when nothing is broken, during the load step.
    min_primary_share: float = Field(0.9, ge=0, le=1)
    # With per-request SLOs (e.g. ttft_ms<=1000): the share of requests that must meet them.
    min_goodput: float = Field(0.95, ge=0, le=1)
    engine: EnginePolicy = EnginePolicy()
