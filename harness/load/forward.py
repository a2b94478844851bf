"""Samples of Locust workers on other machines, sent to the master over Locust's own
worker-to-master messages; the master writes them into its run's sample folder exactly as local
workers write theirs (samples, start and done files), so one report covers every worker.

Used when the harness runs only the master (`harness load --external-workers N`) and the workers
are started elsewhere with the same config file: nothing is written on the workers' machines.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

from harness.data.samples import Sample

SAMPLES = "harness_samples"
START = "harness_start"
DONE = "harness_done"

Send = Callable[[str, dict[str, Any]], None]


class ForwardingWriter:
    """The SampleWriter interface on a worker; each flush sends the buffered samples."""

    def __init__(self, send: Send, worker: int) -> None:
        self._send = send
        self.worker = worker
        self.pid = os.getpid()
        self._lines: list[str] = []
        self._closed = False
        self.count = 0

    def write(self, sample: Sample) -> None:
        self._lines.append(sample.to_json())
        self.count += 1

    def flush(self) -> None:
        if self._lines and not self._closed:
            lines, self._lines = self._lines, []
            self._send(SAMPLES, {"worker": self.worker, "pid": self.pid, "lines": lines})

    def close(self) -> None:
        self.flush()
        self._closed = True


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_suffix(".tmp")
    tmp.write_text(text)
    tmp.replace(path)


class MasterSink:
    """On the master: what the workers send, written where local workers write."""

    def __init__(self, sample_dir: Path) -> None:
        self.dir = sample_dir

    def _name(self, kind: str, data: dict[str, Any], suffix: str) -> Path:
        return self.dir / f"{kind}-{int(data['worker']):03d}-{int(data['pid'])}{suffix}"

    def on_samples(self, msg: Any, **_: Any) -> None:
        with self._name("samples", msg.data, ".jsonl").open("a", encoding="utf-8") as f:
            f.write("".join(line + "\n" for line in msg.data["lines"]))

    def on_start(self, msg: Any, **_: Any) -> None:
        _write_atomic(self._name("start", msg.data, ".json"), json.dumps(msg.data))

    def on_done(self, msg: Any, **_: Any) -> None:
        _write_atomic(self._name("done", msg.data, ".json"), json.dumps(msg.data))

    def register(self, register: Callable[[str, Callable[..., None]], None]) -> None:
        register(SAMPLES, self.on_samples)
        register(START, self.on_start)
        register(DONE, self.on_done)
