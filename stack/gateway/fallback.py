"""Try the routed pool, then the other one; degrade when neither answers (PRACTICES.md section 8).

- The primary has `primary_timeout_s` (whole answer; first event for streams), the fallback
  `fallback_timeout_s`, so a request is answered or degraded within their sum, never hung.
- Moving from the primary to the fallback pool because the primary failed clamps max_tokens to
  `fallback_max_tokens` (the small model is there to keep answering, not to write essays).
- A pool whose breaker is open is skipped at once. Client errors (4xx other than 429) are the
  client's, not the pool's: passed through, not retried, not counted against the breaker.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from gateway.metrics import GatewayMetrics
from gateway.upstream import (
    Pool,
    UpstreamAnswer,
    UpstreamFailure,
    UpstreamStream,
    call_json,
    open_stream,
)
from harness.spec.gateway import FallbackSettings

_TOKEN_LIMIT_PARAMS = ("max_tokens", "max_completion_tokens", "n_predict")


@dataclass
class Served:
    pool: Pool
    result: UpstreamAnswer | UpstreamStream
    fallback_reason: str | None  # why an earlier pool was passed over, None when first choice


@dataclass
class Degraded:
    reason: str
    retry_after_s: float
    # Each pool tried and why it failed ("primary: upstream_error: ..."), for the log line.
    failures: tuple[str, ...] = ()


def clamp_tokens(body: dict[str, Any], limit: int) -> dict[str, Any]:
    """Copy of body with every token limit at most `limit` (and max_tokens set when absent)."""
    out = dict(body)
    for p in _TOKEN_LIMIT_PARAMS:
        value = out.get(p)
        if isinstance(value, int) and value > 0:
            out[p] = min(value, limit)
    if not isinstance(out.get("max_tokens"), int) or out["max_tokens"] <= 0:
        out["max_tokens"] = limit
    return out


def upstream_body(body: dict[str, Any], pool: Pool, stream: bool) -> dict[str, Any]:
    out = {**body, "model": pool.model}
    if stream:
        # Ask for the usage chunk so streamed answers can be costed; dropped again if the
        # client did not ask for it.
        opts = out.get("stream_options")
        out["stream_options"] = {**(opts if isinstance(opts, dict) else {}), "include_usage": True}
    return out


async def dispatch(
    pools: list[Pool],
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    *,
    stream: bool,
    settings: FallbackSettings,
    metrics: GatewayMetrics,
) -> Served | Degraded:
    candidates = pools if settings.enabled else pools[:1]
    reason: str | None = None
    failures: list[str] = []
    for i, pool in enumerate(candidates):
        nxt = candidates[i + 1].name if i + 1 < len(candidates) else None
        if not pool.breaker.allow():
            metrics.upstream_requests.labels(pool=pool.name, outcome="breaker_open").inc()
            reason = "breaker_open"
            failures.append(f"{pool.name}: breaker_open")
            if nxt:
                metrics.fallbacks.labels(from_pool=pool.name, to_pool=nxt, reason=reason).inc()
            continue
        send = upstream_body(body, pool, stream)
        if reason is not None and pool.name == "fallback":
            send = clamp_tokens(send, settings.fallback_max_tokens)
        timeout = (
            settings.primary_timeout_s if pool.name == "primary" else settings.fallback_timeout_s
        )
        try:
            if stream:
                result: UpstreamAnswer | UpstreamStream = await open_stream(
                    pool, path, send, headers, timeout, settings.stream_idle_timeout_s
                )
            else:
                result = await call_json(pool, path, send, headers, timeout)
        except UpstreamFailure as failure:
            pool.breaker.record_failure()
            metrics.upstream_requests.labels(pool=pool.name, outcome=failure.reason).inc()
            reason = failure.reason
            failures.append(f"{pool.name}: {failure}")
            if nxt:
                metrics.fallbacks.labels(from_pool=pool.name, to_pool=nxt, reason=reason).inc()
            continue
        except BaseException:
            pool.breaker.release()  # cancelled (client gone): no verdict on the pool
            raise
        if isinstance(result, UpstreamAnswer) and result.status >= 400:
            pool.breaker.release()
            metrics.upstream_requests.labels(pool=pool.name, outcome="client_error").inc()
        else:
            pool.breaker.record_success()
            metrics.upstream_requests.labels(pool=pool.name, outcome="success").inc()
        return Served(pool, result, reason)
    waits = [p.breaker.retry_after_s() for p in candidates]
    return Degraded(reason or "no_pool", min(waits) if waits else 0.0, tuple(failures))
