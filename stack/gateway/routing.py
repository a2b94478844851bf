"""Model routing, after PRACTICES.md `route_to_model` (section 7).

The primary pool holds the larger model, the fallback pool the small, fast one:
- `X-Urgency: high`                          -> small pool ("urgency_high")
- the client named the small pool's model    -> small pool ("requested_model")
- short prompt while the primary is busy     -> small pool ("short_prompt_busy")
- otherwise                                  -> primary ("long_prompt" or "default")
"Busy" is this replica's count of requests in flight, the load figure it knows without asking.
The `gpu_available()` of route_to_model is the primary's circuit breaker, applied by the fallback
step (fallback.py): an open primary is skipped there and the move is counted as a fallback.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Route = Literal["primary", "fallback"]


@dataclass(frozen=True)
class RouteDecision:
    route: Route
    reason: str


def route_request(
    *,
    urgency: str | None,
    requested_model: str | None,
    prompt_chars: int,
    active_requests: int,
    small_pool_model: str | None,
    short_prompt_chars: int,
    busy_active_requests: int,
) -> RouteDecision:
    if small_pool_model is None:
        return RouteDecision("primary", "no_small_pool")
    if (urgency or "").strip().lower() == "high":
        return RouteDecision("fallback", "urgency_high")
    if requested_model is not None and requested_model == small_pool_model:
        return RouteDecision("fallback", "requested_model")
    short = prompt_chars < short_prompt_chars
    if short and active_requests >= busy_active_requests:
        return RouteDecision("fallback", "short_prompt_busy")
    return RouteDecision("primary", "default" if short else "long_prompt")
