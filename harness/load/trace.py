"""Request traces: when each request arrived and its sizes in tokens, from a recorded trace.

mooncake: JSONL, {"timestamp": ms, "input_length": n, "output_length": n, "hash_ids": [...]}.
azure: CSV with a header TIMESTAMP, ContextTokens, GeneratedTokens (TIMESTAMP a date-time such as
"2023-11-16 18:15:46.6805900", or seconds). Offsets count from the trace's first request.
"""

from __future__ import annotations

import csv
import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from harness.errors import ConfigError, ConfigProblem
from harness.spec.load import Trace

FIELD = "load.trace.path"


@dataclass(frozen=True)
class TraceEntry:
    offset_s: float  # from the trace's first request, already divided by the speedup
    input_tokens: int
    output_tokens: int
    # Mooncake: ids of the prompt's blocks; requests sharing leading ids share that prefix.
    hash_ids: tuple[int, ...] = ()


def _fmt(path: Path, given: str) -> str:
    if given != "auto":
        return given
    return "azure" if path.suffix.lower() == ".csv" else "mooncake"


def _azure_time(value: str) -> float:
    try:
        return float(value)
    except ValueError:
        pass
    text = value.strip()
    if "." in text:  # Python parses at most 6 fraction digits; the Azure traces have 7
        head, frac = text.split(".", 1)
        text = f"{head}.{frac[:6]}"
    return datetime.fromisoformat(text).timestamp()


_Row = tuple[float, int, int, tuple[int, ...]]


def _rows(path: Path, fmt: str) -> list[_Row]:
    problems: list[ConfigProblem] = []
    rows: list[_Row] = []
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(str(path), [ConfigProblem(FIELD, f"cannot read: {exc}")]) from None
    if fmt == "mooncake":
        for n, line in enumerate(text.splitlines(), 1):
            if not line.strip():
                continue
            try:
                d = json.loads(line)
                ids = tuple(int(h) for h in d.get("hash_ids") or ())
                ms, inp, out = (
                    float(d["timestamp"]),
                    int(d["input_length"]),
                    int(d["output_length"]),
                )
                rows.append((ms / 1000.0, inp, out, ids))
            except (ValueError, KeyError, TypeError) as exc:
                problems.append(
                    ConfigProblem(
                        f"line {n}",
                        "expected a JSON object with numbers timestamp (ms), input_length, "
                        f"output_length ({type(exc).__name__}: {exc})",
                    )
                )
            if len(problems) >= 5:
                break
    else:
        reader = csv.DictReader(text.splitlines())
        need = {"TIMESTAMP", "ContextTokens", "GeneratedTokens"}
        missing = need - set(reader.fieldnames or [])
        if missing:
            raise ConfigError(
                str(path),
                [ConfigProblem("header", f"missing column(s) {', '.join(sorted(missing))}")],
            )
        for n, r in enumerate(reader, 2):
            try:
                t, inp = _azure_time(r["TIMESTAMP"]), int(r["ContextTokens"])
                rows.append((t, inp, int(r["GeneratedTokens"]), ()))
            except (ValueError, TypeError) as exc:
                problems.append(
                    ConfigProblem(
                        f"line {n}",
                        "expected TIMESTAMP (date-time or seconds) and whole numbers "
                        f"ContextTokens, GeneratedTokens ({exc})",
                    )
                )
            if len(problems) >= 5:
                break
    if problems:
        raise ConfigError(str(path), problems)
    return rows


def read_trace(path: Path, trace: Trace) -> list[TraceEntry]:
    """The trace's requests in time order, after `offset`, at most `max_requests`."""
    rows = sorted(_rows(path, _fmt(path, trace.format)), key=lambda r: r[0])
    rows = rows[trace.offset : trace.offset + trace.max_requests]
    if not rows:
        raise ConfigError(
            str(path), [ConfigProblem(FIELD, "no request in the trace (after offset)")]
        )
    t0 = rows[0][0]
    return [
        TraceEntry((t - t0) / trace.speedup, max(1, inp), max(1, out), ids)
        for t, inp, out, ids in rows
    ]
