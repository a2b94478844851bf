"""Progress as typed events: steps starting, checks decided, and the lines lower layers report
(stack start-up, load progress, faults, alerts). The console and the report subscribe to the same
stream, so what a person saw scroll by is what the report's event log keeps.

    bus = EventBus()
    bus.subscribe(console(print))      # a line per event, as before
    bus.subscribe(recorder.record)     # the report's event log
    bus.emit(StepStarted("probes"))
"""

from __future__ import annotations

import re
import time
from collections.abc import Callable
from dataclasses import dataclass

from pydantic import BaseModel

from harness.verdict.checks import CheckResult


@dataclass(frozen=True)
class StepStarted:
    """A gate step begins (`title`: "probes", "load", ...)."""

    title: str


@dataclass(frozen=True)
class CheckDecided:
    """A check has its outcome."""

    check: CheckResult


@dataclass(frozen=True)
class Note:
    """A line from a lower layer: stack start-up, load progress, a fault, an alert."""

    text: str


Event = StepStarted | CheckDecided | Note
Handler = Callable[[Event], None]


class EventBus:
    def __init__(self) -> None:
        self._handlers: list[Handler] = []

    def subscribe(self, handler: Handler) -> None:
        self._handlers.append(handler)

    def emit(self, event: Event) -> None:
        for handler in self._handlers:
            handler(event)

    def note(self, text: str) -> None:
        """The `progress(str)` callable the lower layers take."""
        self.emit(Note(text))


def describe(event: Event) -> str:
    if isinstance(event, StepStarted):
        return f"{event.title}:"
    if isinstance(event, CheckDecided):
        c = event.check
        return f"  {c.outcome.upper():5} {c.name}" + (
            f": {'; '.join(c.reasons)}" if c.reasons else ""
        )
    return event.text


def console(write: Callable[[str], None]) -> Handler:
    return lambda event: write(describe(event))


class EventRecord(BaseModel):
    """One event as the report keeps it: seconds since the run began, kind and text."""

    t_s: float
    kind: str
    text: str


# The load's progress line, written every two seconds of a look: too many to keep whole.
LOAD_TICK = re.compile(r"^load +\d+s/")


class Recorder:
    """Keeps every step, check and note; of the load's progress lines it keeps one every
    `tick_every_s` and says, in a note where they were, how many it did not keep."""

    def __init__(self, tick_every_s: float = 10.0) -> None:
        self.t0 = time.monotonic()
        self.tick_every_s = tick_every_s
        self.records: list[EventRecord] = []
        self._last_kept_tick: float | None = None
        self._left_out: EventRecord | None = None  # the note counting this run of ticks
        self._left_out_n = 0

    def record(self, event: Event) -> None:
        t = round(time.monotonic() - self.t0, 2)
        if isinstance(event, Note) and LOAD_TICK.match(event.text):
            last = self._last_kept_tick
            if last is not None and t - last < self.tick_every_s:
                self._count_left_out(t)
                return
            self._last_kept_tick = t
        else:
            self._left_out, self._left_out_n = None, 0  # a new run of ticks counts afresh
        kind = {StepStarted: "step", CheckDecided: "check", Note: "note"}[type(event)]
        self.records.append(EventRecord(t_s=t, kind=kind, text=describe(event)))

    def _count_left_out(self, t: float) -> None:
        self._left_out_n += 1
        text = (
            f"({self._left_out_n} load progress line(s) not kept here: one is kept every "
            f"{self.tick_every_s:g} s)"
        )
        if self._left_out is None:
            self._left_out = EventRecord(t_s=t, kind="note", text=text)
            self.records.append(self._left_out)
        else:
            self._left_out.text = text
