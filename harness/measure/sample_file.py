"""A run's per-request samples, kept beside its report so any two runs can be compared later.

`samples.jsonl.gz`: gzip'd JSON lines. The first line describes the file (format, version, the
columns with their units, how many rows, the clock's origin); every further line is one request
as a JSON array in that column order. Send times are milliseconds from `t0_s` (epoch seconds), so
rows stay short. Reading is lenient (a torn last line is skipped, unknown columns are ignored),
and the columns come back as numpy arrays, NaN where a request had no value.
"""

from __future__ import annotations

import gzip
import json
import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.data.samples import Sample

SAMPLE_FILE = "samples.jsonl.gz"
FORMAT = "llm-deploy-gate samples"
VERSION = 1

# Column -> unit. Numbers are rounded to 0.01 ms (10 µs), below any clock's honesty here.
COLUMNS: dict[str, str] = {
    "intended_ms": "ms after t0_s; open loop only: when the schedule meant to send it",
    "sent_ms": "ms after t0_s: when it was actually sent",
    "status": "HTTP status, 0 when none",
    "error": "error kind (see harness/data/samples.py), null when it succeeded",
    "served_by": "X-Served-By",
    "cache": "X-Cache",
    "ttfb_ms": "ms: sent -> response headers",
    "ttft_ms": "ms: sent -> first generated text",
    "itl_ms": "ms: mean gap between text events of this request (guidellm's ITL)",
    "gap_p50_ms": "ms: median gap between text events of this request",
    "gap_max_ms": "ms: longest gap between text events of this request",
    "tpot_ms": "ms: (e2e - ttft) / (output tokens - 1)",
    "e2e_ms": "ms: sent -> response complete",
    "output_tokens": "tokens (the server's usage, else text events counted)",
    "retries": "1 when resent once on a new connection",
    "version": "X-Served-Version: the rollout's version that answered (baseline, candidate)",
    "first_event_ms": "ms: sent -> first event of the answer (text or not)",
    "gateway_ms": "ms: the gateway's own time up to its headers (Server-Timing gw)",
    "upstream_ms": "ms: the gateway's wait on the model server (Server-Timing upstream)",
    "server_prefill_ms": "ms: the model server's own prefill (its answer's timings)",
    "server_decode_ms": "ms: the model server's own decode (its answer's timings)",
}
TEXT_COLUMNS = frozenset({"error", "served_by", "cache", "version"})


def _r(v: float | None) -> float | None:
    return None if v is None else round(v, 2)


def _row(s: Sample, t0_s: float) -> list[Any]:
    gaps = s.token_gaps_ms
    return [
        None if s.intended_s is None else _r((s.intended_s - t0_s) * 1000.0),
        _r((s.sent_s - t0_s) * 1000.0),
        s.status,
        s.error,
        s.x_served_by,
        s.x_cache,
        _r(s.ttfb_ms),
        _r(s.ttft_ms),
        _r(s.itl_ms),
        _r(float(np.median(gaps))) if gaps else None,
        _r(max(gaps)) if gaps else None,
        _r(s.tpot_ms),
        _r(s.e2e_ms),
        s.tokens,
        s.retries,
        s.x_version,
        _r(s.first_event_ms),
        _r(s.gateway_ms),
        _r(s.upstream_ms),
        _r(s.server_prefill_ms),
        _r(s.server_decode_ms),
    ]


def write_sample_file(path: Path, samples: Sequence[Sample], t0_s: float | None = None) -> Path:
    """Write `samples` (any order; stored by send time) to `path`, atomically."""
    ordered = sorted(samples, key=lambda s: s.sent_s)
    if t0_s is None:
        t0_s = min((s.meant_s for s in ordered), default=0.0)
    header = {
        "format": FORMAT,
        "version": VERSION,
        "t0_s": t0_s,
        "count": len(ordered),
        "columns": list(COLUMNS),
        "units": COLUMNS,
    }
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    # mtime=0: the same samples give the same bytes.
    with tmp.open("wb") as raw, gzip.GzipFile(filename="", fileobj=raw, mode="wb", mtime=0) as gz:
        rows: Iterable[object] = (header, *(_row(s, t0_s) for s in ordered))
        gz.write("".join(json.dumps(r, separators=(",", ":")) + "\n" for r in rows).encode())
    tmp.replace(path)
    return path


@dataclass(frozen=True)
class SampleTable:
    """The columns of a sample file: numbers as float arrays (NaN: no value), text as lists."""

    t0_s: float
    numbers: dict[str, NDArray[Any]]
    text: dict[str, list[str | None]]

    def __len__(self) -> int:
        return len(self.numbers["sent_ms"])

    @property
    def ok(self) -> NDArray[Any]:
        """Which requests succeeded."""
        return np.array([e is None for e in self.text["error"]], dtype=bool)

    def values(self, column: str) -> NDArray[Any]:
        """The finite values of `column` over the requests that succeeded."""
        a = self.numbers[column][self.ok]
        kept: NDArray[Any] = a[np.isfinite(a)]
        return kept


class SampleFileError(ValueError):
    """The file is not a sample file this version can read."""


def read_sample_file(path: Path) -> SampleTable:
    try:
        with gzip.open(path, "rt") as f:
            text = f.read()
    except (OSError, EOFError) as exc:
        if not isinstance(exc, EOFError) and not str(exc).startswith("Not a gzipped"):
            raise
        raise SampleFileError(f"not a gzip file: {exc}") from None
    lines = text.split("\n")
    try:
        header = json.loads(lines[0])
    except ValueError:
        raise SampleFileError("first line is not the JSON header") from None
    if not isinstance(header, dict) or header.get("format") != FORMAT:
        raise SampleFileError(f"first line does not say format {FORMAT!r}")
    if header.get("version", 0) > VERSION:
        raise SampleFileError(f"version {header.get('version')} is newer than this harness reads")
    names: list[str] = list(header["columns"])
    rows: list[list[Any]] = []
    for line in lines[1:]:
        try:
            row = json.loads(line)
        except ValueError:
            continue  # a torn last line (or the empty one after the final newline)
        if isinstance(row, list) and len(row) == len(names):
            rows.append(row)
    numbers: dict[str, NDArray[Any]] = {}
    texts: dict[str, list[str | None]] = {}
    for i, name in enumerate(names):
        if name not in COLUMNS:
            continue
        col = [r[i] for r in rows]
        if name in TEXT_COLUMNS:
            texts[name] = col
        else:
            numbers[name] = np.array([math.nan if v is None else v for v in col], dtype=float)
    for name in COLUMNS:  # a column an older writer did not have
        if name in TEXT_COLUMNS:
            texts.setdefault(name, [None] * len(rows))
        else:
            numbers.setdefault(name, np.full(len(rows), math.nan))
    return SampleTable(t0_s=float(header.get("t0_s", 0.0)), numbers=numbers, text=texts)
