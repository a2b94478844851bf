"""Retry-After of the sliding-window rate limiter (the Redis side is in the integration tests)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from gateway.ratelimit import WINDOW_S, retry_after


def weighted(current: int, previous: int, t: float) -> float:
    return current + previous * (1 - t / WINDOW_S)


def test_full_current_window_waits_for_the_next() -> None:
    # 100 used in this window, nothing before: at second 10 the wait is the rest of the window.
    assert retry_after(100, 100, 0, 10.0) == 50


def test_previous_window_drains_linearly() -> None:
    # 50 now + 100 before at second 0: weighted 150, under 100 once 100*(1-t/60) < 50: t > 30.
    assert retry_after(100, 50, 100, 0.0) == 30


@given(
    limit=st.integers(1, 500),
    current=st.integers(0, 600),
    previous=st.integers(0, 600),
    elapsed=st.floats(0, WINDOW_S - 0.001),
)
def test_the_request_is_admitted_after_retry_after(
    limit: int, current: int, previous: int, elapsed: float
) -> None:
    if weighted(current, previous, elapsed) < limit:
        return  # would have been admitted
    wait = retry_after(limit, current, previous, elapsed)
    assert wait >= 1
    t = elapsed + wait
    if t < WINDOW_S:
        assert weighted(current, previous, t) < limit + 1e-9
    else:
        assert weighted(0, current, t - WINDOW_S) < limit + 1e-9
