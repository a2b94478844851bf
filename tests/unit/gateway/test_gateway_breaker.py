"""Circuit breaker state machine, driven by a fake clock (no sleeping)."""

from __future__ import annotations

from gateway.breaker import CircuitBreaker


class FakeClock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now

    def advance(self, seconds: float) -> None:
        self.now += seconds


def make(threshold: int = 5, recovery: float = 60.0) -> tuple[CircuitBreaker, FakeClock, list]:
    clock = FakeClock()
    transitions: list[tuple[str, str, str]] = []
    breaker = CircuitBreaker(
        "primary", threshold, recovery, clock=clock, on_transition=lambda *t: transitions.append(t)
    )
    return breaker, clock, transitions


def test_opens_after_threshold_consecutive_failures() -> None:
    breaker, _, transitions = make()
    for _ in range(4):
        assert breaker.allow()
        breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    assert not breaker.allow()
    assert transitions == [("primary", "closed", "open")]


def test_success_resets_the_consecutive_count() -> None:
    breaker, _, _ = make(threshold=3)
    for _ in range(2):
        breaker.record_failure()
    breaker.record_success()
    for _ in range(2):
        breaker.record_failure()
    assert breaker.state == "closed"
    assert breaker.consecutive_failures == 2


def test_open_for_the_recovery_timeout_then_one_probe() -> None:
    breaker, clock, _ = make(threshold=1, recovery=60)
    breaker.record_failure()
    clock.advance(59.9)
    assert not breaker.allow()
    assert breaker.retry_after_s() > 0
    clock.advance(0.1)
    assert breaker.state == "half_open"
    assert breaker.allow()  # the probe
    assert not breaker.allow()  # everyone else waits for its verdict


def test_probe_success_closes() -> None:
    breaker, clock, transitions = make(threshold=1, recovery=10)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_success()
    assert breaker.state == "closed"
    assert breaker.allow() and breaker.allow()
    assert [t[1:] for t in transitions] == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
    ]


def test_probe_failure_reopens_and_restarts_the_timer() -> None:
    breaker, clock, _ = make(threshold=1, recovery=10)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.record_failure()
    assert breaker.state == "open"
    clock.advance(9)
    assert not breaker.allow()
    clock.advance(1)
    assert breaker.allow()


def test_released_probe_lets_the_next_caller_probe() -> None:
    breaker, clock, _ = make(threshold=1, recovery=10)
    breaker.record_failure()
    clock.advance(10)
    assert breaker.allow()
    breaker.release()  # e.g. the client went away before the pool answered
    assert breaker.state == "half_open"
    assert breaker.allow()


def test_late_failures_while_open_do_not_extend_the_timer() -> None:
    breaker, clock, _ = make(threshold=1, recovery=10)
    breaker.record_failure()
    clock.advance(5)
    breaker.record_failure()  # a call admitted before the breaker opened
    clock.advance(5)
    assert breaker.allow()
