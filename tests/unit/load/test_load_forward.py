"""Samples a remote worker forwards reach the master's sample folder as local ones would."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace
from typing import Any

from harness.data.samples import Sample, read_samples
from harness.load.forward import DONE, SAMPLES, START, ForwardingWriter, MasterSink


def sample(seq: int) -> Sample:
    return Sample(
        worker=1,
        seq=seq,
        kind="chat",
        tenant="t",
        prompt_id=f"p{seq}",
        repeated=False,
        intended_s=10.0 + seq,
        sent_s=10.0 + seq,
        e2e_ms=5.0,
        ttft_ms=1.0 + seq,
    )


def test_forwarded_samples_start_and_done_land_in_the_masters_folder(tmp_path: Path) -> None:
    sink = MasterSink(tmp_path)
    handlers: dict[str, Any] = {}
    sink.register(lambda kind, fn: handlers.__setitem__(kind, fn))
    assert set(handlers) == {SAMPLES, START, DONE}
    sent: list[tuple[str, dict[str, Any]]] = []

    def send(kind: str, data: dict[str, Any]) -> None:
        sent.append((kind, data))
        handlers[kind](msg=SimpleNamespace(data=data), environment=None)

    w = ForwardingWriter(send, worker=1)
    send(START, {"worker": 1, "pid": w.pid, "t0_s": 9.5})
    for i in range(3):
        w.write(sample(i))
    w.flush()
    w.flush()  # nothing buffered: nothing sent
    w.write(sample(3))
    w.close()
    w.write(sample(4))
    w.flush()  # closed: never sent (the done message went before)
    send(DONE, {"worker": 1, "pid": w.pid, "t0_s": 9.5})
    assert [k for k, _ in sent] == [START, SAMPLES, SAMPLES, DONE]
    assert [s.seq for s in read_samples(tmp_path)] == [0, 1, 2, 3] and w.count == 5
    assert {p.name for p in tmp_path.iterdir()} == {
        f"samples-001-{w.pid}.jsonl",
        f"start-001-{w.pid}.json",
        f"done-001-{w.pid}.json",
    }
