"""Waiting for something to come about: one look every interval until it holds or a timeout
passes, by tenacity rather than a hand-written deadline loop at every call site."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

from tenacity import RetryCallState, Retrying, retry_if_result, stop_after_delay

T = TypeVar("T")


def poll_until(
    check: Callable[[], T],
    timeout_s: float,
    interval_s: float,
    *,
    until: Callable[[T], bool] = bool,
    sleep: Callable[[float], object] = time.sleep,
) -> T:
    """Call `check` every `interval_s` until `until(result)` holds (by default: the result is
    truthy) or `timeout_s` has passed since the first call, and return the last result: on
    timeout the one that did not hold (None, False, an empty list...). `check` runs at least
    once; an exception it raises is not retried but propagates at once. `sleep` does the waiting
    between looks; what it returns is ignored (a wait that may end early, such as a condition's,
    fits too)."""

    def wait(state: RetryCallState) -> float:
        # The last look falls on the timeout, not up to an interval after it.
        return min(interval_s, max(0.0, timeout_s - (state.seconds_since_start or 0.0)))

    def nap(seconds: float) -> None:
        sleep(seconds)

    def last_result(state: RetryCallState) -> T:
        assert state.outcome is not None
        result: T = state.outcome.result()
        return result

    retrying = Retrying(
        stop=stop_after_delay(timeout_s),
        wait=wait,
        retry=retry_if_result(lambda result: not until(result)),
        retry_error_callback=last_result,
        sleep=nap,
    )
    return retrying(check)
