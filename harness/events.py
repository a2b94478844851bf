"""Progress as typed events: steps starting, checks decided, and the lines lower layers report
(stack start-up, load progress, faults, alerts). The console and the report subscribe to the same
stream, so what a person saw scroll by is what the report's event log keeps.

    bus = EventBus()
    bus.subscribe(console(print))      # a line per event, as before
    bus.subscribe(recorder.record)     # the report's event log
    bus.emit(StepStarted("probes"))
"""

from __future__ import annotations

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


class Recorder:
    """Keeps every step and check event (load progress lines are too many to keep)."""

    def __init__(self) -> None:
        self.t0 = time.monotonic()
        self.records: list[EventRecord] = []

    def record(self, event: Event) -> None:
        if isinstance(event, Note):
            return
        kind = "step" if isinstance(event, StepStarted) else "check"
        self.records.append(
            EventRecord(t_s=round(time.monotonic() - self.t0, 2), kind=kind, text=describe(event))
        )
