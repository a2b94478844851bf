"""The request path of /v1/completions and /v1/chat/completions.

auth -> parse and validate -> injection check -> rate limit -> route -> cache -> pools with
fallback (or degrade) -> PII filter, cost -> cache store -> metrics and one log line.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response

from gateway.access_log import RequestLog, get_logger
from gateway.auth import authenticate
from gateway.breaker import CircuitBreaker
from gateway.cache import (
    ResponseCache,
    answer_from_stream,
    bypass_reason,
    cache_key,
    decode_entry,
    stream_from_answer,
)
from gateway.config import api_keys
from gateway.errors import DEGRADED_MESSAGE, GatewayError, error_body, error_response
from gateway.fallback import Degraded, Served, dispatch
from gateway.metrics import BREAKER_STATE_VALUES, GatewayMetrics
from gateway.overhead import OverheadClock, clock_of
from gateway.postprocess import Accounting, StreamFilter, filter_answer
from gateway.ratelimit import RateLimiter
from gateway.redis_store import RedisStore, RedisUnavailable
from gateway.routing import RouteDecision, route_request
from gateway.sse import SseEvent, encode_done, encode_event
from gateway.streaming import SseResponse
from gateway.upstream import Pool, UpstreamAnswer, UpstreamStream, forward_headers, make_client
from gateway.validation import Endpoint, ParsedRequest, check_prompt_length, find_injections
from gateway.validation import parse_request as parse_body
from harness.spec.gateway import GatewayRuntimeConfig

PATHS: dict[Endpoint, str] = {"chat": "/v1/chat/completions", "completion": "/v1/completions"}
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def status_label(http_status: int) -> str:
    """The `status` label of llm_requests_total; HighErrorRate reads status="error"."""
    if http_status < 400:
        return "success"
    if http_status in (401, 403):
        return "unauthorized"
    if http_status == 429:
        return "rate_limited"
    if http_status < 500:
        return "client_error"
    return "error"


@dataclass(frozen=True)
class Admitted:
    """A request let through the rate limit, and the cache entry read with it."""

    looked_up: bool = False  # the cache was asked in the rate limit's round trip
    cached: dict[str, Any] | None = None
    redis_down: bool = False  # that round trip failed: neither the limit nor the cache known


@dataclass
class Outcome:
    """What the metrics and the log line need once a request is over."""

    log: RequestLog
    clock: OverheadClock = field(default_factory=OverheadClock)
    model: str = "unknown"
    status: int = 0
    failed: bool = False  # a 200 stream that broke midway still counts as an error
    completed: bool = False  # a stream that reached its end (else the client left early)
    accounting: Accounting | None = None
    headers: dict[str, str] = field(default_factory=dict)


class Gateway:
    def __init__(self, config: GatewayRuntimeConfig, logger: logging.Logger | None = None) -> None:
        s = config.settings
        self.config = config
        self.settings = s
        self.metrics = GatewayMetrics(config.replica)
        self.logger = logger or get_logger()
        self.logger.setLevel(s.logging.level.upper())
        self.keys = api_keys(config)
        self.store = RedisStore(config.redis_url)
        self.cache = ResponseCache(self.store, s.cache.ttl_s)
        self.limiter = RateLimiter(self.store, s.rate_limit.requests_per_minute)
        self.active = 0
        self.pools: dict[str, Pool] = {}
        for name, model, urls in (
            ("primary", config.primary_model, config.primary_urls),
            ("fallback", config.fallback_model, config.fallback_urls),
        ):
            if urls:
                self.pools[name] = self._make_pool(name, model, urls)

    def _make_pool(self, name: str, model: str, urls: tuple[str, ...]) -> Pool:
        breaker = CircuitBreaker(
            name,
            self.settings.breaker.failure_threshold,
            self.settings.breaker.recovery_timeout_s,
            on_transition=self._on_breaker_transition,
        )
        state = self.metrics.breaker_state.labels(pool=name)
        state.set_function(lambda: BREAKER_STATE_VALUES[breaker.state])
        return Pool(name, model, tuple(u.rstrip("/") for u in urls), breaker, make_client())

    def _on_breaker_transition(self, pool: str, old: str, new: str) -> None:
        self.metrics.breaker_transitions.labels(pool=pool, from_state=old, to_state=new).inc()
        self.logger.warning(
            "breaker", extra={"fields": {"event": "breaker", "pool": pool, "from": old, "to": new}}
        )

    def reload_pools(self, config: GatewayRuntimeConfig) -> None:
        """Take the pools' replica addresses from a re-read config (SIGHUP): a replica left out
        gets no new request, the streams it holds run on (a rolling update drains it so)."""
        for name, urls in (("primary", config.primary_urls), ("fallback", config.fallback_urls)):
            pool = self.pools.get(name)
            if pool is not None and urls:
                pool.urls = tuple(u.rstrip("/") for u in urls)
        self.logger.warning(
            "pools reloaded",
            extra={
                "fields": {
                    "event": "pools_reloaded",
                    **{f"{n}_urls": ",".join(p.urls) for n, p in self.pools.items()},
                }
            },
        )

    async def aclose(self) -> None:
        for pool in self.pools.values():
            await pool.aclose()
        await self.store.aclose()

    # ----------------------------------------------------------------------------- request path

    async def handle(self, request: Request, endpoint: Endpoint) -> Response:
        request_id: str = request.scope.get("state", {}).get("request_id", "")
        log = RequestLog(request_id, self.config.replica, request.method, request.scope["path"])
        outcome = Outcome(log, clock_of(request.scope))
        self.active += 1
        self.metrics.active.inc()
        try:
            response = await self._handle(request, endpoint, outcome)
        except GatewayError as e:
            response = error_response(e)
            log.set(error=e.code or e.type)
        except Exception as e:  # a bug must still answer JSON and be counted
            self.logger.exception("unhandled", extra={"fields": {"request_id": request_id}})
            response = JSONResponse(
                error_body(f"internal gateway error: {type(e).__name__}", "internal_error"), 500
            )
            log.set(error="internal")
        except BaseException:  # cancelled (client gone, shutdown): still settle gauge and log
            outcome.status = 499
            log.set(error="cancelled")
            self._finish(outcome)
            raise
        response.headers.update(outcome.headers)
        outcome.status = response.status_code
        if isinstance(response, SseResponse):
            return response  # the stream finishes the outcome when it ends
        self._finish(outcome)
        return response

    def _finish(self, outcome: Outcome) -> None:
        self.active -= 1
        m = self.metrics
        m.active.dec()
        m.duration.observe(outcome.log.elapsed_s())
        m.overhead.observe(outcome.clock.own_s())
        label = "error" if outcome.failed else status_label(outcome.status)
        m.requests.labels(status=label, model=outcome.model).inc()
        acct = outcome.accounting
        if acct is not None and acct.usage is not None:
            outcome.log.set(
                prompt_tokens=acct.usage.prompt_tokens,
                completion_tokens=acct.usage.completion_tokens,
                tokens_estimated=acct.estimated or None,
                cost_usd=round(acct.cost_usd, 8),
            )
        outcome.log.set(status=outcome.status, model=outcome.model, result=label)
        outcome.log.emit(self.logger)

    async def _handle(self, request: Request, endpoint: Endpoint, outcome: Outcome) -> Response:
        s = self.settings
        m = self.metrics
        log = outcome.log
        client_addr = client_address(request)
        try:
            principal = authenticate(
                request.headers,
                client_addr,
                self.keys,
                enabled=s.auth.enabled,
                allow_anonymous=s.auth.allow_anonymous,
            )
        except GatewayError as e:
            m.auth_failures.labels(reason=e.code or "invalid").inc()
            raise

        raw = await request.body()
        parsed = parse_body(raw, endpoint, s.validation.max_body_bytes)
        log.set(stream=parsed.stream, prompt_chars=parsed.prompt_chars)
        if s.logging.debug_requests:
            log.set(request_headers=dict(request.headers), request_body=parsed.body)
        check_prompt_length(parsed.prompt_chars, s.validation.max_prompt_chars)
        self._check_injection(parsed, log)

        # The route (pure) decides the model and so the cache key, which the rate limit's
        # round trip to Redis then reads too; what they count is counted once admitted.
        decision = self._route(request, parsed)
        first = self.pools[decision.route]
        key, bypass = self._cache_plan(parsed, first)
        admitted = await self._admit(principal.identity, key, log)
        m.routing.labels(route=decision.route, reason=decision.reason).inc()
        order = [first, *(p for p in self.pools.values() if p is not first)]
        outcome.model = first.model
        outcome.headers.update({"X-Route": decision.route, "X-Route-Reason": decision.reason})
        log.set(route=decision.route, route_reason=decision.reason)

        self._count_cache_lookup(bypass, outcome)
        if key is not None:
            if not admitted.looked_up:
                admitted = await self._cache_get(key)
            cached = admitted.cached
            if cached is not None:
                return self._answer_from_cache(parsed, cached, outcome)
            if not admitted.redis_down:
                self.metrics.cache_misses.inc()

        headers = forward_headers(dict(request.headers))
        headers["x-request-id"] = log.fields["request_id"]
        with outcome.clock.waiting():
            result = await dispatch(
                order,
                PATHS[endpoint],
                parsed.body,
                headers,
                stream=parsed.stream,
                settings=s.fallback,
                metrics=m,
            )
        if isinstance(result, Degraded):
            return self._degraded(result, outcome)
        outcome.model = result.pool.model
        outcome.headers["X-Served-By"] = result.pool.name
        if result.fallback_reason:
            outcome.headers["X-Fallback-Reason"] = result.fallback_reason
        log.set(served_by=result.pool.name, fallback_reason=result.fallback_reason)
        # Only first-choice answers are stored: a fallback answer is clamped and from another model.
        store_key = key if result.fallback_reason is None else None
        if isinstance(result.result, UpstreamStream):
            return self._stream_response(parsed, result, result.result, store_key, outcome)
        return await self._json_response(parsed, result, result.result, store_key, outcome)

    def _check_injection(self, parsed: ParsedRequest, log: RequestLog) -> None:
        v = self.settings.validation
        found = find_injections(parsed.prompt_text, v.injection_patterns)
        if not found:
            return
        for pattern in found:
            self.metrics.injections.labels(pattern=pattern).inc()
        log.set(injection_patterns=found)
        if v.injection_policy == "reject":
            raise GatewayError(
                400,
                "prompt rejected: it matches a prompt-injection pattern",
                code="prompt_injection_detected",
                param="prompt",
            )

    async def _admit(self, identity: str, cache_key: str | None, log: RequestLog) -> Admitted:
        """The rate limit's decision, with the cache entry read in the same round trip when
        the limit is on (a rejection raises)."""
        rl = self.settings.rate_limit
        if not rl.enabled or not self.store.configured:
            return Admitted()
        try:
            decision = await self.limiter.check(identity, cache_key)
        except RedisUnavailable:
            self.metrics.rate_limit_errors.inc()
            log.set(rate_limit="unavailable")
            if cache_key is not None:
                # The entry was not read either; Redis is in its cooldown now, so no second try.
                self.metrics.cache_errors.labels(operation="get").inc()
            if rl.fail_open:
                return Admitted(looked_up=True, redis_down=True)
            raise GatewayError(
                503,
                "rate limiter unavailable; try again shortly",
                type_="service_unavailable",
                code="rate_limiter_unavailable",
                headers={"Retry-After": "1"},
            ) from None
        if not decision.allowed:
            self.metrics.rate_limited.inc()
            raise GatewayError(
                429,
                f"rate limit exceeded: {rl.requests_per_minute} requests per minute; "
                f"retry after {decision.retry_after_s} s",
                type_="rate_limit_error",
                code="rate_limit_exceeded",
                headers={"Retry-After": str(decision.retry_after_s)},
            )
        return Admitted(looked_up=True, cached=decode_entry(decision.cached))

    def _route(self, request: Request, parsed: ParsedRequest) -> RouteDecision:
        r = self.settings.routing
        small = self.pools.get("fallback")
        primary = self.pools.get("primary")
        if primary is None:  # only a fallback pool configured
            decision = RouteDecision("fallback", "no_primary_pool")
        elif not r.enabled:
            decision = RouteDecision("primary", "routing_disabled")
        else:
            requested = parsed.body.get("model")
            decision = route_request(
                urgency=request.headers.get("x-urgency"),
                requested_model=requested if isinstance(requested, str) else None,
                prompt_chars=parsed.prompt_chars,
                active_requests=self.active - 1,  # the others in flight, not this one
                small_pool_model=small.model if small else None,
                short_prompt_chars=r.short_prompt_chars,
                busy_active_requests=r.busy_active_requests,
            )
        return decision

    # ------------------------------------------------------------------------------------ cache

    def _cache_plan(self, parsed: ParsedRequest, pool: Pool) -> tuple[str | None, str | None]:
        """(the request's cache key, or None with the reason it bypasses the cache)."""
        c = self.settings.cache
        if not c.enabled:
            return None, "disabled"
        if not self.store.configured:
            return None, "no_redis"
        reason = bypass_reason(parsed.body, c.only_deterministic)
        if reason is not None:
            return None, reason
        return cache_key(parsed.endpoint, pool.model, parsed.body), None

    def _count_cache_lookup(self, bypass: str | None, outcome: Outcome) -> None:
        if bypass is not None:
            self.metrics.cache_bypass.labels(reason=bypass).inc()
        outcome.headers["X-Cache"] = "bypass" if bypass is not None else "miss"
        outcome.log.set(cache="bypass" if bypass is not None else "miss")

    async def _cache_get(self, key: str) -> Admitted:
        """The entry by a round trip of its own (the rate limit is off)."""
        try:
            return Admitted(looked_up=True, cached=await self.cache.get(key))
        except RedisUnavailable:
            self.metrics.cache_errors.labels(operation="get").inc()
            return Admitted(looked_up=True, redis_down=True)

    async def _cache_set(self, key: str, answer: dict[str, Any]) -> None:
        try:
            await self.cache.set(key, answer)
        except RedisUnavailable:
            self.metrics.cache_errors.labels(operation="set").inc()

    def _answer_from_cache(
        self, parsed: ParsedRequest, cached: dict[str, Any], outcome: Outcome
    ) -> Response:
        self.metrics.cache_hits.inc()
        outcome.headers.update({"X-Cache": "hit", "X-Served-By": "cache"})
        outcome.log.set(cache="hit", served_by="cache")
        if isinstance(cached.get("usage"), dict):
            cached["usage"]["cost_usd"] = 0.0  # nothing was spent on a hit
        if not parsed.stream:
            return JSONResponse(cached)

        async def replay() -> AsyncIterator[bytes]:
            for chunk in stream_from_answer(parsed.endpoint, cached, parsed.include_usage):
                yield chunk

        return SseResponse(replay(), self._stream_closer(outcome), SSE_HEADERS)

    # ------------------------------------------------------------------------------- answering

    def _degraded(self, result: Degraded, outcome: Outcome) -> Response:
        self.metrics.degraded.inc()
        outcome.headers["X-Served-By"] = "degraded"
        outcome.log.set(
            served_by="degraded", error=result.reason, pool_errors=list(result.failures) or None
        )
        return JSONResponse(
            error_body(DEGRADED_MESSAGE, "service_unavailable", "degraded"),
            status_code=503,
            headers={"Retry-After": str(max(1, math.ceil(result.retry_after_s)))},
        )

    async def _json_response(
        self,
        parsed: ParsedRequest,
        served: Served,
        answer: UpstreamAnswer,
        store_key: str | None,
        outcome: Outcome,
    ) -> Response:
        if answer.status >= 400:  # the model server's verdict on the client's request
            outcome.log.set(error="upstream_client_error")
            return JSONResponse(answer.body, status_code=answer.status)
        s = self.settings
        body, pii, acct = filter_answer(
            answer.body,
            parsed.endpoint,
            served.pool.model,
            s.cost.price_per_1k_tokens,
            s.pii.enabled,
        )
        self._count_answer(pii, acct, served.pool.model, outcome)
        if store_key is not None and isinstance(body, dict):
            await self._cache_set(store_key, body)
        return JSONResponse(body)

    def _count_answer(self, pii: Any, acct: Accounting, model: str, outcome: Outcome) -> None:
        m = self.metrics
        for kind, n in pii.items():
            m.pii_redactions.labels(kind=kind).inc(n)
        if pii:
            outcome.log.set(pii_redactions=dict(pii))
        outcome.accounting = acct
        if acct.usage is not None:
            m.tokens_generated.inc(acct.usage.completion_tokens)
            m.prompt_tokens.inc(acct.usage.prompt_tokens)
            m.cost.labels(model=model).inc(acct.cost_usd)

    def _stream_response(
        self,
        parsed: ParsedRequest,
        served: Served,
        upstream: UpstreamStream,
        store_key: str | None,
        outcome: Outcome,
    ) -> Response:
        s = self.settings
        filt = StreamFilter(
            endpoint=parsed.endpoint,
            model=served.pool.model,
            prices=s.cost.price_per_1k_tokens,
            pii_enabled=s.pii.enabled,
            client_wants_usage=parsed.include_usage,
        )
        started = outcome.log.started

        async def body() -> AsyncIterator[bytes]:
            ttft_seen = False
            first_text_at: float | None = None  # when the first upstream text arrived
            clock = outcome.clock
            batch: list[SseEvent] | None = upstream.first
            broken: Exception | None = None
            while batch is not None:
                arrived = time.perf_counter()
                chunks = [chunk for event in batch for chunk in filt.process(event)]
                if first_text_at is None and filt.content_chunks:
                    first_text_at = arrived
                if not ttft_seen and filt.emitted_chars:
                    ttft_seen = True
                    ttft = time.perf_counter() - started
                    self.metrics.ttft.observe(ttft)
                    outcome.log.set(ttft_ms=round(ttft * 1000, 2))
                    if s.pii.enabled and first_text_at is not None:
                        # The exact filter's price: a first delta ending mid-word waits for
                        # the next one (README, "Its own cost").
                        hold = arrived - first_text_at
                        self.metrics.pii_hold.observe(hold)
                        outcome.log.set(pii_hold_ms=round(hold * 1000, 2))
                if chunks:  # one write for what one upstream read brought
                    yield chunks[0] if len(chunks) == 1 else b"".join(chunks)
                try:
                    # A silence of stream_idle_timeout_s raises here (the upstream read timeout).
                    with clock.waiting():
                        batch = await anext(upstream.events, None)
                except Exception as e:  # stalled or broken upstream mid-stream
                    broken, batch = e, None
            if broken is not None:
                outcome.failed = True
                outcome.log.set(error=f"stream_broken:{type(broken).__name__}")
                for chunk in filt.finish():
                    yield chunk
                if s.planted_defects.defect_close_stream_silently:
                    return  # the planted defect: no error event, no [DONE]
                yield encode_event(
                    error_body("upstream stream broke off", "upstream_error", "stream_broken")
                )
                yield encode_done()
                return
            for chunk in filt.finish():
                yield chunk
            if filt.error:
                outcome.failed = True
                outcome.log.set(error="upstream_stream_error")
                return
            outcome.completed = True
            if store_key is not None and filt.finish_reasons:
                answer = answer_from_stream(
                    parsed.endpoint,
                    served.pool.model,
                    {i: filt.text_of(i) for i in filt.texts},
                    filt.finish_reasons,
                    filt.usage_body,
                )
                await self._cache_set(store_key, answer)

        def count() -> None:
            # Also for streams cut short: the tokens sent so far were generated and paid for.
            self._count_answer(filt.pii_counts, filt.accounting(), served.pool.model, outcome)

        return SseResponse(body(), self._stream_closer(outcome, upstream, count), SSE_HEADERS)

    def _stream_closer(
        self,
        outcome: Outcome,
        upstream: UpstreamStream | None = None,
        count: Callable[[], None] | None = None,
    ) -> Callable[[], Awaitable[None]]:
        done = False

        async def close() -> None:
            nonlocal done
            if done:
                return
            done = True
            if upstream is not None:
                await upstream.aclose()
                if not outcome.completed and not outcome.failed:
                    outcome.log.set(error="client_disconnected")
            if count is not None:
                count()
            self._finish(outcome)

        return close


def client_address(request: Request) -> str:
    # The stack's nginx sets X-Real-IP; replicas listen on loopback only, so the header is ours.
    real = request.headers.get("x-real-ip")
    if real:
        return real.strip()
    forwarded = request.headers.get("x-forwarded-for")
    if forwarded:
        return forwarded.split(",")[0].strip()
    return request.client.host if request.client else "unknown"
