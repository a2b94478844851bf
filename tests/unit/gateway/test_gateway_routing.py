"""route_to_model of PRACTICES.md as the gateway applies it."""

from __future__ import annotations

from typing import Any

from gateway.routing import route_request


def route(**overrides: Any) -> tuple[str, str]:
    args: dict[str, Any] = {
        "urgency": None,
        "requested_model": None,
        "prompt_chars": 100,
        "active_requests": 0,
        "small_pool_model": "small",
        "short_prompt_chars": 500,
        "busy_active_requests": 32,
    }
    args.update(overrides)
    d = route_request(**args)
    return d.route, d.reason


def test_default_is_primary() -> None:
    assert route() == ("primary", "default")
    assert route(prompt_chars=5000) == ("primary", "long_prompt")


def test_high_urgency_goes_to_the_small_model() -> None:
    assert route(urgency="high") == ("fallback", "urgency_high")
    assert route(urgency=" HIGH ") == ("fallback", "urgency_high")
    assert route(urgency="normal") == ("primary", "default")


def test_short_prompt_under_load_goes_to_the_small_model() -> None:
    assert route(active_requests=32) == ("fallback", "short_prompt_busy")
    assert route(active_requests=32, prompt_chars=500) == ("primary", "long_prompt")


def test_long_prompt_stays_on_primary_even_under_load() -> None:
    assert route(prompt_chars=5000, active_requests=100) == ("primary", "long_prompt")


def test_client_may_name_the_small_model() -> None:
    assert route(requested_model="small") == ("fallback", "requested_model")
    assert route(requested_model="anything-else") == ("primary", "default")


def test_without_a_small_pool_everything_is_primary() -> None:
    assert route(small_pool_model=None, urgency="high") == ("primary", "no_small_pool")
