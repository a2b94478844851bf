"""Redis access that can never stall or fail a request.

Short socket timeouts and no retries, so a dead Redis (or one behind a stalled Toxiproxy) costs at
most one timeout; after a failure Redis is skipped for `cooldown_s`, so a Redis outage costs a
quarter second once per cooldown rather than on every request.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff
from redis.exceptions import RedisError

T = TypeVar("T")


class RedisUnavailable(Exception):
    """Redis could not be used for this operation (down, slow, or in its cooldown)."""


class RedisStore:
    def __init__(
        self,
        url: str | None,
        socket_timeout_s: float = 0.25,
        cooldown_s: float = 1.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._clock = clock
        self._cooldown_s = cooldown_s
        self._down_until = 0.0
        self.client: aioredis.Redis | None = None
        if url:
            self.client = aioredis.Redis.from_url(
                url,
                socket_connect_timeout=socket_timeout_s,
                socket_timeout=socket_timeout_s,
                retry=Retry(NoBackoff(), 0),
                retry_on_timeout=False,
                health_check_interval=0,
                max_connections=256,
            )

    @property
    def configured(self) -> bool:
        return self.client is not None

    @property
    def status(self) -> str:
        if self.client is None:
            return "disabled"
        return "unavailable" if self._clock() < self._down_until else "ok"

    async def run(self, op: Callable[[aioredis.Redis], Awaitable[T]]) -> T:
        """Run op against Redis or raise RedisUnavailable."""
        if self.client is None:
            raise RedisUnavailable("no redis_url configured")
        if self._clock() < self._down_until:
            raise RedisUnavailable("in cooldown after a recent failure")
        try:
            result = await op(self.client)
        except (RedisError, OSError, TimeoutError) as e:
            self._down_until = self._clock() + self._cooldown_s
            raise RedisUnavailable(f"{type(e).__name__}: {e}") from e
        return result

    async def aclose(self) -> None:
        if self.client is not None:
            await self.client.aclose()
