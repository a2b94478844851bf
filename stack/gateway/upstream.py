"""Model-server pools: round-robin over the URLs of one pool, one keep-alive client per pool.

A call either returns an answer (2xx, or a 4xx that belongs to the client and is passed through)
or raises `UpstreamFailure` with a reason the fallback logic and the breaker count:
timeout | connect_error | upstream_5xx | upstream_429 | invalid_response | upstream_error.
A connection that cannot even be opened is retried on the next URL of the same pool, since the
request never reached a server; anything later is the pool's failure.

The client is aiohttp: its C HTTP parser costs a fraction of the pure-Python stack of httpx,
and this client sits on every request and every streamed chunk (measured with py-spy).
"""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import Any

import aiohttp

from gateway.breaker import CircuitBreaker
from gateway.sse import SseEvent, dumps, iter_sse_batches

# Headers forwarded to the model servers; everything else (API keys above all) stays here.
_FORWARD_HEADERS = ("x-request-id", "traceparent", "accept-language")
_JSON_HEADERS = {"Content-Type": "application/json"}


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
    """An open SSE stream whose first events have arrived (so the pool is known to be answering).

    Events come in batches, one per network read (see `iter_sse_batches`)."""

    first: list[SseEvent]
    events: AsyncIterator[list[SseEvent]]
    response: aiohttp.ClientResponse
    url: str
    pool: Pool

    async def aclose(self) -> None:
        self.pool.release(self.url)
        # A stream read to its end keeps its connection for the next request; one cut short
        # (client gone, error) closes it, so no half-read answer is left on a pooled connection.
        if self.response.content.at_eof():
            self.response.release()
        else:
            self.response.close()


class UpstreamClient:
    """One aiohttp session, opened on first use (aiohttp wants a running event loop)."""

    def __init__(self, max_connections: int = 512) -> None:
        self._max_connections = max_connections
        self._session: aiohttp.ClientSession | None = None

    @property
    def session(self) -> aiohttp.ClientSession:
        if self._session is None:
            # Per-phase timeouts are generous; the caller's deadline (asyncio.timeout) binds.
            # trust_env stays False: a proxy variable must never capture loopback traffic.
            self._session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(limit=self._max_connections, limit_per_host=0),
                timeout=aiohttp.ClientTimeout(
                    total=None, connect=10.0, sock_connect=2.0, sock_read=60.0
                ),
                auto_decompress=False,
                # One session serves every client: a cookie a model server (or a balancer in
                # front of it) set on one answer must not go out with another client's request.
                cookie_jar=aiohttp.DummyCookieJar(),
            )
        return self._session

    async def post(
        self,
        url: str,
        body: dict[str, Any],
        headers: dict[str, str],
        read_timeout_s: float | None = None,
    ) -> aiohttp.ClientResponse:
        """POST JSON; `read_timeout_s` bounds each silence between bytes of the answer."""
        data = dumps(body)
        timeout = (
            aiohttp.ClientTimeout(
                total=None, connect=10.0, sock_connect=2.0, sock_read=read_timeout_s
            )
            if read_timeout_s is not None
            else None
        )
        return await self.session.post(
            url, data=data, headers={**headers, **_JSON_HEADERS}, timeout=timeout
        )

    async def aclose(self) -> None:
        if self._session is not None:
            await self._session.close()


@dataclass
class Pool:
    name: str
    model: str
    urls: tuple[str, ...]
    breaker: CircuitBreaker
    client: UpstreamClient
    _rr: itertools.count[int] = field(default_factory=itertools.count)
    # Requests sent to each URL and not yet ended, from the moment one is sent: a replica taken
    # out of rotation is drained when its count here is none (its own gauge misses a request
    # still on its way to it).
    in_flight: dict[str, int] = field(default_factory=dict)

    def url_order(self) -> list[str]:
        """All URLs, starting at the next one in round-robin order."""
        start = next(self._rr) % len(self.urls)
        return [*self.urls[start:], *self.urls[:start]]

    def hold(self, url: str) -> None:
        self.in_flight[url] = self.in_flight.get(url, 0) + 1

    def release(self, url: str) -> None:
        left = self.in_flight.get(url, 0) - 1
        if left > 0:
            self.in_flight[url] = left
        else:
            self.in_flight.pop(url, None)

    async def aclose(self) -> None:
        await self.client.aclose()


def make_client(max_connections: int = 512) -> UpstreamClient:
    return UpstreamClient(max_connections)


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
                pool.hold(base)
                try:
                    try:
                        resp = await pool.client.post(base + path, body, headers)
                    except aiohttp.ClientConnectorError as e:
                        last_error = f"{type(e).__name__} connecting to {base}"
                        continue
                    async with resp:
                        raw = await resp.read()
                finally:
                    pool.release(base)
                return _answer(resp.status, raw, base)
            raise UpstreamFailure("connect_error", last_error)
    except TimeoutError as e:
        raise UpstreamFailure("timeout", f"no answer within {timeout_s:g} s") from e
    except aiohttp.ClientError as e:
        raise UpstreamFailure("upstream_error", f"{type(e).__name__}: {e}") from e


async def open_stream(
    pool: Pool,
    path: str,
    body: dict[str, Any],
    headers: dict[str, str],
    timeout_s: float,
    idle_timeout_s: float,
) -> UpstreamStream | UpstreamAnswer:
    """Open an SSE stream and wait for its first event within timeout_s (the TTFT deadline).

    Later, a silence of idle_timeout_s raises `aiohttp.SocketTimeoutError` from the events: the
    client's own read timer, already re-armed on every read, so no timer per event here.
    A non-2xx status comes back as an `UpstreamAnswer` (client error) or `UpstreamFailure`.
    """
    resp: aiohttp.ClientResponse | None = None
    held: str | None = None
    try:
        async with asyncio.timeout(timeout_s):
            last_error = "no URL configured"
            for base in pool.url_order():
                pool.hold(base)
                held = base
                try:
                    resp = await pool.client.post(base + path, body, headers, idle_timeout_s)
                except aiohttp.ClientConnectorError as e:
                    last_error = f"{type(e).__name__} connecting to {base}"
                    pool.release(base)
                    held = None
                    continue
                if resp.status >= 300:
                    raw = await resp.read()
                    resp.release()
                    pool.release(base)
                    held = None
                    return _answer(resp.status, raw, base)
                events = iter_sse_batches(resp.content.iter_any())
                first = await anext(events, None)
                if not first:
                    raise UpstreamFailure("invalid_response", "stream ended before any event")
                # From here the stream's own aclose releases the URL.
                held = None
                return UpstreamStream(first, events, resp, base, pool)
            raise UpstreamFailure("connect_error", last_error)
    except BaseException as e:
        if held is not None:
            pool.release(held)
        if resp is not None:
            resp.close()
        if isinstance(e, TimeoutError):
            raise UpstreamFailure("timeout", f"no first token within {timeout_s:g} s") from e
        if isinstance(e, aiohttp.ClientError):
            raise UpstreamFailure("upstream_error", f"{type(e).__name__}: {e}") from e
        raise


def _answer(status: int, raw: bytes, base: str) -> UpstreamAnswer:
    failure = _classify_status(status)
    if failure is not None:
        raise UpstreamFailure(failure, f"HTTP {status} from {base}")
    try:
        body = json.loads(raw)
    except ValueError as e:
        if status < 300:
            raise UpstreamFailure("invalid_response", f"non-JSON answer from {base}") from e
        text = raw[:500].decode("utf-8", "replace")
        body = {"error": {"message": text, "type": "upstream_error", "code": None}}
    return UpstreamAnswer(status, body, base)
