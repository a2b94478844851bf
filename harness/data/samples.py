"""One record per request, written by each Locust worker as a JSON line; read back by the harness.

Times are epoch seconds (float, microsecond resolution) from a monotonic clock anchored once per
process (see clock.py); durations are milliseconds. Reading is lenient: unknown fields are ignored
and a torn last line (a worker killed mid-write) is skipped.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import IO, Any

import orjson

SAMPLE_GLOB = "samples-*.jsonl"
DONE_GLOB = "done-*.json"
START_GLOB = "start-*.json"  # {"t0_s": ...}: when a worker's schedule began (for progress)
# The error_detail of an "incomplete" stream whose body ended cleanly (HTTP-wise) without a finish
# reason or [DONE]: a silent cut, which a client not reading the SSE counts as a success (a
# connection dropped mid-body is "incomplete" too, but any HTTP client sees that one fail).
STREAM_ENDED_SILENTLY = "stream ended without [DONE] or a finish reason"


@dataclass
class Sample:
    worker: int
    seq: int
    kind: str  # "chat" | "completion"
    tenant: str
    prompt_id: str
    repeated: bool
    # Open loop: when the schedule meant to send it. Closed loop: None.
    intended_s: float | None
    sent_s: float
    e2e_ms: float
    status: int = 0  # 0: no HTTP status (connection failed)
    # None, or the kind of failure (fixed names; the summary counts by them): "connect" (no
    # connection), "timeout" (past request_timeout_s, or a read stalled that long), "http" (status
    # >= 400), "stream_error" (an error object inside a 200 stream), "incomplete" (the stream
    # ended before [DONE] or a finish reason), "protocol" (unparseable), "unfinished" (still in
    # flight when the run's drain time ran out).
    error: str | None = None
    error_detail: str | None = None
    ttfb_ms: float | None = None  # response headers
    ttft_ms: float | None = None  # first event carrying generated text
    first_event_ms: float | None = None  # first event of any kind (a role-only chunk counts)
    # Every gap between consecutive text-carrying events (the pooled `token_gap` distribution).
    token_gaps_ms: list[float] = field(default_factory=list)
    output_tokens: int | None = None  # server `usage.completion_tokens`
    prompt_tokens: int | None = None
    output_chunks: int = 0  # text-carrying events counted by the client
    finish_reason: str | None = None
    x_cache: str | None = None
    x_served_by: str | None = None
    x_request_id: str | None = None
    # A rollout's version that answered ("baseline" or "candidate"); None outside a rollout.
    x_version: str | None = None
    # The Retry-After header of an error answer (429/503), as sent; None: not given (or a sample
    # written before it was recorded).
    retry_after: str | None = None
    client_request_id: str = ""
    # 1 when a pooled connection turned out closed and the request went again on a new one.
    retries: int = 0
    # Opt-in workloads: the turn of a multi-turn session (1-based), the shared prefix the prompt
    # began with, the prompt tokens meant (trace / tokenizer-sized) and those the server said it
    # took from its prefix cache; a dataset prompt's entry `id` (its line or entry number is in
    # prompt_id: conv-N).
    turn: int | None = None
    prefix_group: int | None = None
    planned_tokens: int | None = None
    cached_tokens: int | None = None
    dataset_id: str | None = None
    # Where the time to first token went, as the stack said (None: it did not say). The
    # gateway's `Server-Timing`: its own time up to its headers (`gw`) and its wait on the model
    # server (`upstream`: the whole answer, or a stream's first event). The model server's own
    # prefill and decode from its answer (llama.cpp's `timings`).
    gateway_ms: float | None = None
    upstream_ms: float | None = None
    server_prefill_ms: float | None = None
    server_decode_ms: float | None = None

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def meant_s(self) -> float:
        """When the request was meant to go: its intended time (open loop), else its send time."""
        return self.intended_s if self.intended_s is not None else self.sent_s

    @property
    def done_s(self) -> float:
        return self.sent_s + self.e2e_ms / 1000.0

    @property
    def send_lag_ms(self) -> float | None:
        return None if self.intended_s is None else (self.sent_s - self.intended_s) * 1000.0

    @property
    def tokens(self) -> int:
        """Output tokens: the server's count when it gave one, else the events we counted."""
        return self.output_tokens if self.output_tokens is not None else self.output_chunks

    @property
    def tpot_ms(self) -> float | None:
        """Time per output token after the first: (e2e - ttft) / (tokens - 1)."""
        if self.ttft_ms is None or self.tokens < 2:
            return None
        return (self.e2e_ms - self.ttft_ms) / (self.tokens - 1)

    @property
    def itl_ms(self) -> float | None:
        """Inter-token latency of this request as guidellm counts it: (last token time - first
        token time) / (output tokens - 1) (vLLM bench's TPOT differs only in ending at the last
        chunk, usage included)."""
        if self.ttft_ms is None or self.tokens < 2:
            return None
        return sum(self.token_gaps_ms) / (self.tokens - 1)

    @property
    def token_gap_max_ms(self) -> float:
        """The longest wait between two streamed chunks of this request (0 with fewer than two)."""
        return max(self.token_gaps_ms, default=0.0)

    def to_json(self) -> str:
        # orjson reads the dataclass directly: 40x less CPU than json.dumps(asdict(...)), and
        # the load generator writes one line per request.
        return orjson.dumps(self).decode()

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> Sample:
        known = {f.name for f in fields(cls)}
        if "itl_ms" in d and "token_gaps_ms" not in d:  # samples written before the rename
            d = {**d, "token_gaps_ms": d["itl_ms"]}
        return cls(**{k: v for k, v in d.items() if k in known})


class SampleWriter:
    """Appends samples to one file; buffered, flushed by `flush()` (a greenlet calls it often)."""

    def __init__(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        self.path = path
        self._f: IO[str] = path.open("a", buffering=1 << 16, encoding="utf-8")
        self.count = 0

    def write(self, sample: Sample) -> None:
        self._f.write(sample.to_json() + "\n")
        self.count += 1

    def flush(self) -> None:
        if not self._f.closed:
            self._f.flush()

    def close(self) -> None:
        if not self._f.closed:
            self._f.close()


def iter_samples(path: Path) -> Iterator[Sample]:
    with path.open(encoding="utf-8") as f:
        for line in f:
            if not line.endswith("\n"):
                break  # torn last line
            try:
                yield Sample.from_dict(orjson.loads(line))
            except (ValueError, TypeError):
                continue


def read_samples(directory: Path) -> list[Sample]:
    """Every sample of every worker under `directory`, ordered by send time."""
    out: list[Sample] = []
    for p in sorted(directory.glob(SAMPLE_GLOB)):
        out.extend(iter_samples(p))
    out.sort(key=lambda s: s.sent_s)
    return out


class SampleTail:
    """Reads the complete lines appended to the sample files since the last call (progress)."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._offsets: dict[Path, int] = {}

    def new_samples(self) -> list[Sample]:
        out: list[Sample] = []
        for p in sorted(self.directory.glob(SAMPLE_GLOB)):
            start = self._offsets.get(p, 0)
            with p.open("rb") as f:
                f.seek(start)
                data = f.read()
            end = data.rfind(b"\n") + 1
            self._offsets[p] = start + end
            for line in data[:end].splitlines():
                try:
                    out.append(Sample.from_dict(json.loads(line)))
                except (ValueError, TypeError):
                    continue
        return out
