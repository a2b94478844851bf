"""harness.clients.poll: the one wait helper. tenacity's clock is replaced by a fake that only the
injected sleep moves, so no assertion depends on the wall clock."""

from __future__ import annotations

import types
from collections.abc import Callable

import pytest
import tenacity

from harness.clients.poll import poll_until


class FakeClock:
    def __init__(self) -> None:
        self.now = 0.0
        self.slept: list[float] = []

    def monotonic(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> FakeClock:
    fake = FakeClock()
    # tenacity times its attempts with `time.monotonic()` of its own module's `time`.
    monkeypatch.setattr(tenacity, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    return fake


def answers(*values: object) -> tuple[list[object], Callable[[], object]]:
    """A check that gives `values` in turn (the last one from then on); records each call."""
    calls: list[object] = []

    def check() -> object:
        value = values[min(len(calls), len(values) - 1)]
        calls.append(value)
        return value

    return calls, check


def test_success_returns_at_once_after_the_interval(clock: FakeClock) -> None:
    calls, check = answers(None, None, "up")
    assert poll_until(check, 10.0, 0.2, sleep=clock.sleep) == "up"
    assert calls == [None, None, "up"]
    assert clock.slept == [0.2, 0.2]


def test_a_check_that_holds_at_first_is_not_waited_on(clock: FakeClock) -> None:
    _, check = answers(["a"])
    assert poll_until(check, 10.0, 0.2, sleep=clock.sleep) == ["a"]
    assert clock.slept == []


def test_timeout_returns_none(clock: FakeClock) -> None:
    calls, check = answers(None)
    assert poll_until(check, 1.0, 0.25, sleep=clock.sleep) is None
    assert len(calls) == 5  # at 0, 0.25, 0.5, 0.75 and 1.0 s
    assert clock.slept == [0.25] * 4


def test_timeout_returns_the_last_value_and_the_last_look_falls_on_the_timeout(
    clock: FakeClock,
) -> None:
    calls, check = answers(["a", "b"], ["b"], ["b"], ["b"], ["c"])
    assert poll_until(check, 1.0, 0.3, until=lambda still: not still, sleep=clock.sleep) == ["c"]
    assert len(calls) == 5  # at 0, 0.3, 0.6, 0.9 and 1.0 s
    assert clock.slept[:3] == [0.3, 0.3, 0.3]
    assert clock.slept[3] == pytest.approx(0.1)
    assert clock.now == pytest.approx(1.0)


def test_until_decides_what_holds(clock: FakeClock) -> None:
    # A readiness probe: a reason while not ready, None once ready.
    calls, check = answers("connection refused", "503", None)
    assert poll_until(check, 10.0, 0.5, until=lambda why: why is None, sleep=clock.sleep) is None
    assert len(calls) == 3


def test_a_zero_timeout_looks_once(clock: FakeClock) -> None:
    calls, check = answers(False)
    assert poll_until(check, 0.0, 0.2, sleep=clock.sleep) is False
    assert calls == [False]
    assert clock.slept == []


def test_an_exception_propagates_and_is_not_retried(clock: FakeClock) -> None:
    calls: list[int] = []

    def check() -> bool:
        calls.append(1)
        raise ConnectionError("refused")

    with pytest.raises(ConnectionError, match="refused"):
        poll_until(check, 10.0, 0.2, sleep=clock.sleep)
    assert calls == [1]
    assert clock.slept == []


def test_a_sleep_that_ends_early_shortens_the_wait(clock: FakeClock) -> None:
    # Like a condition's wait: woken before the interval is over.
    woken: list[float] = []

    def wake_early(seconds: float) -> None:
        woken.append(seconds)
        clock.now += seconds / 10

    _, check = answers(None, None, "note")
    assert poll_until(check, 5.0, 1.0, sleep=wake_early) == "note"
    assert woken == [1.0, 1.0]
    assert clock.now == pytest.approx(0.2)
