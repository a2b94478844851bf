"""Per-principal rate limit shared by every replica through Redis (PRACTICES.md section 5).

Sliding-window counter: the count of the current minute plus the previous minute's count weighted
by how much of it still overlaps the window. One Lua script reads both and increments atomically,
so concurrent replicas never over-admit. Rejected requests are not counted: a client that keeps
retrying is let back in as soon as its rate falls under the limit.

The same script also reads the request's response-cache entry when it is given one, and only when
the request is admitted: one Redis round trip per request instead of two, on the path before the
first byte (the keys then must live on one Redis, as they do here; a cluster would need hash tags).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from gateway.redis_store import RedisStore, RedisUnavailable

WINDOW_S = 60

_SCRIPT = """
local limit = tonumber(ARGV[1])
local weight = tonumber(ARGV[2])
local current = tonumber(redis.call('GET', KEYS[1]) or '0')
local previous = tonumber(redis.call('GET', KEYS[2]) or '0')
if current + previous * weight >= limit then
  return {0, current, previous}
end
current = redis.call('INCR', KEYS[1])
if current == 1 then
  redis.call('EXPIRE', KEYS[1], ARGV[3])
end
local cached = false
if KEYS[3] then
  cached = redis.call('GET', KEYS[3])
end
return {1, current, previous, cached}
"""


@dataclass(frozen=True)
class Decision:
    allowed: bool
    retry_after_s: int = 0
    # The cache entry read with the decision (None: none stored, or none asked for).
    cached: bytes | None = None


def retry_after(limit: int, current: int, previous: int, elapsed_s: float) -> int:
    """Whole seconds until the weighted count drops under the limit (at least 1)."""
    # In this window the count is current + previous * (1 - t/W) for t >= elapsed.
    if current < limit and previous > 0:
        t = WINDOW_S * (1 - (limit - current) / previous)
        return max(1, math.ceil(t - elapsed_s))
    # Not before the next window, where `current` becomes the weighted previous.
    t_next = WINDOW_S * (1 - limit / current) if current > 0 else 0.0
    return max(1, math.ceil(WINDOW_S - elapsed_s + max(0.0, t_next)))


class RateLimiter:
    def __init__(
        self, store: RedisStore, per_minute: int, clock: Callable[[], float] = time.time
    ) -> None:
        self._store = store
        self._limit = per_minute
        self._clock = clock
        # EVALSHA with the script loaded once (redis-py reloads it after a Redis restart),
        # instead of sending the whole script with every request.
        self._script = store.client.register_script(_SCRIPT) if store.client else None

    async def check(self, identity: str, cache_key: str | None = None) -> Decision:
        """Admit or reject, and for an admitted request read `cache_key` in the same round
        trip; RedisUnavailable propagates so the caller applies fail_open."""
        now = self._clock()
        window = int(now // WINDOW_S)
        elapsed = now - window * WINDOW_S
        weight = 1 - elapsed / WINDOW_S
        keys = [f"ratelimit:{identity}:{window}", f"ratelimit:{identity}:{window - 1}"]
        if cache_key is not None:
            keys.append(cache_key)
        args: list[str | int] = [self._limit, f"{weight:.6f}", 2 * WINDOW_S]
        script = self._script
        if script is None:
            raise RedisUnavailable("no redis_url configured")
        allowed, current, previous, *rest = await self._store.run(
            lambda r: script(keys=keys, args=args, client=r)
        )
        if allowed:
            cached = rest[0] if rest else None
            return Decision(True, cached=cached if isinstance(cached, bytes) else None)
        return Decision(False, retry_after(self._limit, int(current), int(previous), elapsed))
