"""Circuit breaker per model-server pool (PRACTICES.md section 8: 5 failures, 60 s).

closed --(threshold consecutive failures)--> open --(recovery timeout)--> half_open
half_open lets exactly one probe through: success closes, failure reopens (timer restarts).
While open, callers skip the pool at once instead of waiting on a dead upstream.
The clock is injected so tests drive time without sleeping.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Literal

State = Literal["closed", "half_open", "open"]
TransitionHook = Callable[[str, State, State], None]


class CircuitBreaker:
    def __init__(
        self,
        name: str,
        failure_threshold: int = 5,
        recovery_timeout_s: float = 60.0,
        clock: Callable[[], float] = time.monotonic,
        on_transition: TransitionHook | None = None,
    ) -> None:
        self.name = name
        self.failure_threshold = failure_threshold
        self.recovery_timeout_s = recovery_timeout_s
        self._clock = clock
        self._on_transition = on_transition
        self._state: State = "closed"
        self._failures = 0
        self._opened_at = 0.0
        self._probe_in_flight = False

    @property
    def state(self) -> State:
        """The state as of now: an expired open breaker reads half_open before anyone asks."""
        if self._state == "open" and self._recovery_due():
            return "half_open"
        return self._state

    @property
    def consecutive_failures(self) -> int:
        return self._failures

    def retry_after_s(self) -> float:
        """Seconds until an open breaker lets a probe through (0 when not open)."""
        if self._state != "open":
            return 0.0
        return max(0.0, self._opened_at + self.recovery_timeout_s - self._clock())

    def allow(self) -> bool:
        """Whether a call may go to the pool now; a True in half_open reserves the single probe."""
        if self._state == "closed":
            return True
        if self._state == "open":
            if not self._recovery_due():
                return False
            self._set("half_open")
        if self._probe_in_flight:
            return False
        self._probe_in_flight = True
        return True

    def record_success(self) -> None:
        self._failures = 0
        self._probe_in_flight = False
        if self._state != "closed":
            self._set("closed")

    def record_failure(self) -> None:
        self._probe_in_flight = False
        if self._state == "half_open":
            self._open()
            return
        if self._state == "open":
            return  # a call admitted before the breaker opened; the timer keeps running
        self._failures += 1
        if self._failures >= self.failure_threshold:
            self._open()

    def release(self) -> None:
        """An admitted call ended without a verdict (client left, upstream 4xx): free the probe."""
        self._probe_in_flight = False

    def _recovery_due(self) -> bool:
        return self._clock() - self._opened_at >= self.recovery_timeout_s

    def _open(self) -> None:
        self._opened_at = self._clock()
        self._set("open")

    def _set(self, new: State) -> None:
        old = self._state
        self._state = new
        if new == "closed":
            self._failures = 0
        if old != new and self._on_transition is not None:
            self._on_transition(self.name, old, new)
