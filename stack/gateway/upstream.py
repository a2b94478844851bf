"""Model-server pools: round-robin over the URLs of one pool, one keep-alive client per pool.

A call either returns an answer (2xx, or a 4xx that belongs to the client and is passed through)
or raises `UpstreamFailure` with a reason the fallback logic and the breaker count:
timeout | connect_error | upstream_5xx | upstream_429 | invalid_response.
A connection that cannot even be opened is retried on the next URL of the same pool, since the
request never reached a server; anything later is the pool's failure.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import httpx

from gateway.breaker import CircuitBreaker
from gateway.sse import SseEvent, iter_sse_events

# Headers forwarded to the model servers; everything else (API keys above all) stays here.
_FORWARD_HEADERS = ("x-request-id", "traceparent", "accept-language")


class UpstreamFailure(Exception):
    def __init__(self, reason: str, detail: str = "") -> None:
        super().__init__(f"{reason}: {detail}" if detail else reason)
        self.reason = reason
        self.detail = detail


@dataclass
class UpstreamAnswer:
    """A complete (non-streamed) answer, or a client error passed through as is."""

    status: int
    body: Any
    url: str


@dataclass
class UpstreamStream:
    """An open SSE stream whose first event has arrived (so the pool is known to be answering)."""

    first: SseEvent | None
    events: AsyncIterator[SseEvent]
    response: httpx.Response
    url: str

    async def aclose(self) -> None:
        await self.response.aclose()


@dataclass
class Pool:
    name: str
    model: str
    urls: tuple[str, ...]
    breaker: CircuitBreaker
    client: httpx.AsyncClient
    _rr: itertools.count[int] = field(default_factory=itertools.count)

    def url_order(self) -> list[str]:
        """All URLs, starting at the next one in round-robin order."""
        start = next(self._rr) % len(self.urls)
        return [*self.urls[start:], *self.urls[:start]]

    async def aclose(self) -> None:
        await self.client.aclose()


def make_client(max_connections: int = 512) -> httpx.AsyncClient:
    # trust_env=False: a proxy variable in the environment must never capture loopback traffic.
    # Per-phase timeouts are generous; the caller's deadline (asyncio.timeout) is what binds.
    return httpx.AsyncClient(
        timeout=httpx.Timeout(connect=2.0, read=60.0, write=10.0, pool=10.0),
        limits=httpx.Limits(max_connections=max_connections, max_keepalive_connections=128),
        trust_env=False,
    )


def forward_headers(headers: dict[str, str]) -> dict[str, str]:
    return {k: v for k, v in headers.items() if k.lower() in _FORWARD_HEADERS}


def _classify_status(status: int) -> str | None:
    if status >= 500:
        return "upstream_5xx"
    if status == 429:
        return "upstream_429"
    return None


async def call_json(
    pool: Pool, path: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float
) -> UpstreamAnswer:
    """POST and read the whole JSON answer within timeout_s (connect retries included)."""
    try:
        async with asyncio.timeout(timeout_s):
            last_error = "no URL configured"
            for base in pool.url_order():
                try:
                    resp = await pool.client.post(base + path, json=body, headers=headers)
                except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                    last_error = f"{type(e).__name__} connecting to {base}"
                    continue
                return _answer(resp, base)
            raise UpstreamFailure("connect_error", last_error)
    except TimeoutError as e:
        raise UpstreamFailure("timeout", f"no answer within {timeout_s:g} s") from e
    except httpx.TimeoutException as e:
        raise UpstreamFailure("timeout", type(e).__name__) from e
    except httpx.HTTPError as e:
        raise UpstreamFailure("upstream_error", f"{type(e).__name__}: {e}") from e


async def open_stream(
    pool: Pool, path: str, body: dict[str, Any], headers: dict[str, str], timeout_s: float
) -> UpstreamStream | UpstreamAnswer:
    """Open an SSE stream and wait for its first event within timeout_s (the TTFT deadline).

    A non-2xx status comes back as an `UpstreamAnswer` (client error) or `UpstreamFailure`.
    """
    resp: httpx.Response | None = None
    try:
        async with asyncio.timeout(timeout_s):
            last_error = "no URL configured"
            for base in pool.url_order():
                request = pool.client.build_request("POST", base + path, json=body, headers=headers)
                try:
                    resp = await pool.client.send(request, stream=True)
                except (httpx.ConnectError, httpx.ConnectTimeout) as e:
                    last_error = f"{type(e).__name__} connecting to {base}"
                    continue
                if resp.status_code >= 300:
                    await resp.aread()
                    answer = _answer(resp, base)
                    await resp.aclose()
                    return answer
                events = iter_sse_events(resp.aiter_lines())
                first = await anext(events, None)
                if first is None:
                    raise UpstreamFailure("invalid_response", "stream ended before any event")
                return UpstreamStream(first, events, resp, base)
            raise UpstreamFailure("connect_error", last_error)
    except BaseException as e:
        if resp is not None:
            await resp.aclose()
        if isinstance(e, TimeoutError):
            raise UpstreamFailure("timeout", f"no first token within {timeout_s:g} s") from e
        if isinstance(e, httpx.TimeoutException):
            raise UpstreamFailure("timeout", type(e).__name__) from e
        if isinstance(e, httpx.HTTPError):
            raise UpstreamFailure("upstream_error", f"{type(e).__name__}: {e}") from e
        raise


def _answer(resp: httpx.Response, base: str) -> UpstreamAnswer:
    failure = _classify_status(resp.status_code)
    if failure is not None:
        raise UpstreamFailure(failure, f"HTTP {resp.status_code} from {base}")
    try:
        body = resp.json()
    except ValueError as e:
        if resp.status_code < 300:
            raise UpstreamFailure("invalid_response", f"non-JSON answer from {base}") from e
        body = {"error": {"message": resp.text[:500], "type": "upstream_error", "code": None}}
    return UpstreamAnswer(resp.status_code, body, base)
