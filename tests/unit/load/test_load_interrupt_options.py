"""Target options checked before anything starts; what an interrupted run is summarized over."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import pytest

from harness.commands.load import target_problems
from harness.data.samples import Sample
from harness.load.runner import _signals_held, run_context
from harness.spec.load import LoadSpec, OpenLoop

T0 = 1_000_000.0


@pytest.mark.parametrize(
    ("target", "ready", "stack", "provider", "locations"),
    [
        (None, None, None, "docker", []),
        (None, None, Path("s.yaml"), "local", []),
        ("http://127.0.0.1:1", None, None, "docker", ["--provider"]),
        (None, Path("r.json"), Path("s.yaml"), "local", ["--stack", "--provider"]),
        ("http://127.0.0.1:1", Path("r.json"), None, None, ["--target/--ready-file"]),
        (None, None, None, "kubernetes", ["--provider"]),
    ],
)
def test_stack_options_only_go_with_a_stack_the_command_brings_up(
    target: str | None,
    ready: Path | None,
    stack: Path | None,
    provider: str | None,
    locations: list[str],
) -> None:
    problems = target_problems(target, ready, stack, provider)
    assert [p.location for p in problems] == locations
    if provider == "kubernetes":
        assert "valid: local, docker" in problems[0].message


def sample(i: int) -> Sample:
    return Sample(
        worker=0,
        seq=i,
        kind="chat",
        tenant="default",
        prompt_id="p",
        repeated=False,
        intended_s=T0 + i,
        sent_s=T0 + i,
        e2e_ms=50.0,
        status=200,
    )


def test_an_interrupted_run_covers_the_time_that_ran() -> None:
    spec = LoadSpec(duration_s=60, load=OpenLoop(rate_rps=5, arrival="constant"))
    ctx = run_context(spec, [sample(i) for i in range(4)], [], [], T0 - 2, interrupted_s=T0 + 4.5)
    assert ctx.start_s == T0 and ctx.duration_s == pytest.approx(4.5)
    assert ctx.interrupted_after_s == pytest.approx(4.5)
    assert ctx.expected_requests == pytest.approx(22.5)  # 5 req/s for 4.5 s, not for 60 s
    # nothing recorded yet: the span counts from Locust's launch
    empty = run_context(spec, [], [], [], T0, interrupted_s=T0 + 3)
    assert empty.duration_s == pytest.approx(3) and empty.interrupted_after_s == pytest.approx(3)
    # a complete run is unchanged
    full = run_context(spec, [sample(0)], [], [])
    assert full.duration_s == 60 and full.expected_requests == pytest.approx(300)
    assert full.interrupted_after_s is None


def test_signals_are_held_while_locust_is_being_stopped() -> None:
    before = signal.getsignal(signal.SIGINT)
    with _signals_held() as held:
        os.kill(os.getpid(), signal.SIGINT)  # a second Ctrl-C: must not cut the stop short
        os.kill(os.getpid(), signal.SIGTERM)
    assert held == [signal.SIGINT, signal.SIGTERM]
    assert signal.getsignal(signal.SIGINT) is before
