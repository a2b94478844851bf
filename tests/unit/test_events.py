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
    bus.emit(
        CheckDecided(
            CheckResult(
                name="response cache",
                category="cache",
                outcome="fail",
                reasons=["X-Cache was ['miss', 'miss']"],
            )
        )
    )
    assert lines == [
        "probes:",
        "load  1s/20s done 1",
        "  FAIL  response cache: X-Cache was ['miss', 'miss']",
    ]
    # The report keeps steps, checks and notes (the load's progress lines sampled, below).
    assert [(r.kind, r.text) for r in recorder.records] == [
        ("step", "probes:"),
        ("note", "load  1s/20s done 1"),
        ("check", "  FAIL  response cache: X-Cache was ['miss', 'miss']"),
    ]
    assert all(r.t_s >= 0 for r in recorder.records)
    assert isinstance(Note("x"), Note)


def test_the_load_progress_lines_are_sampled_and_the_left_out_counted() -> None:
    recorder = Recorder(tick_every_s=3600)  # within one look: only the first tick is kept
    for line in (
        "load: gate-load -> ...",
        "load     2s/20s  done 2",
        "load     4s/20s  done 4",
        "load     6s/20s  done 6",
        "load draining 0s after the 20s schedule",
        "load     2s/20s  done 2",
        "load     4s/20s  done 4",
    ):
        recorder.record(Note(line))
    assert [r.text for r in recorder.records] == [
        "load: gate-load -> ...",
        "load     2s/20s  done 2",
        "(2 load progress line(s) not kept here: one is kept every 3600 s)",
        "load draining 0s after the 20s schedule",
        "(2 load progress line(s) not kept here: one is kept every 3600 s)",
    ]
    assert {r.kind for r in recorder.records} == {"note"}
