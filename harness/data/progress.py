"""What a long step reports its progress to: a sink for one line at a time. The gate's typed
events (`harness/events.py`) are written to one; the floors below them report through it."""

from __future__ import annotations

from collections.abc import Callable

Progress = Callable[[str], None]
