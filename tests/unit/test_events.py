"""Progress as events: the console and the report's event log see the same stream."""

from __future__ import annotations

from harness.events import CheckDecided, EventBus, Note, Recorder, StepStarted, console
from harness.verdict.checks import CheckResult


def test_the_console_and_the_recorder_subscribe_to_one_stream() -> None:
    lines: list[str] = []
    bus, recorder = EventBus(), Recorder()
    bus.subscribe(console(lines.append))
    bus.subscribe(recorder.record)
    bus.emit(StepStarted("probes"))
    bus.note("load  1s/20s done 1")
    bus.emit(CheckDecided(CheckResult(name="response cache", category="cache", outcome="fail",
                                      reasons=["X-Cache was ['miss', 'miss']"])))  # fmt: skip
    assert lines == ["probes:", "load  1s/20s done 1",
                     "  FAIL  response cache: X-Cache was ['miss', 'miss']"]  # fmt: skip
    # The report keeps steps and checks, not every progress line.
    assert [(r.kind, r.text) for r in recorder.records] == [
        ("step", "probes:"),
        ("check", "  FAIL  response cache: X-Cache was ['miss', 'miss']"),
    ]
    assert all(r.t_s >= 0 for r in recorder.records)
    assert isinstance(Note("x"), Note)
