"""Per-second view of a run: what was sent, finished, failed and how long it took, second by second.

Latency of a second is that of the requests *meant* for it (intended time in an open loop, send
time otherwise), so a stall shows up at the second it hit, not when its victims finally finished.
Completions, errors and tokens count in the second they finished.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from harness.data.samples import Sample
from harness.measure.stats import percentile


class SecondBucket(BaseModel):
    model_config = ConfigDict(extra="ignore")

    t_s: int  # seconds since the window start
    sent: int
    completed: int
    errors: int
    in_flight: int  # requests sent and not finished at the end of this second
    output_tokens: int
    ttft_p50_ms: float | None = None
    ttft_p95_ms: float | None = None
    e2e_p50_ms: float | None = None
    e2e_p95_ms: float | None = None
    e2e_from_intended_p95_ms: float | None = None


def _bucket(ts: NDArray[Any], start: float, n: int) -> NDArray[np.int64]:
    buckets: NDArray[np.int64] = np.clip(np.floor(ts - start), 0, n - 1).astype(np.int64)
    return buckets


def per_second(samples: Sequence[Sample], start_s: float, span_s: float) -> list[SecondBucket]:
    n = max(1, math.ceil(span_s - 1e-9))
    if not samples:
        return [
            SecondBucket(t_s=i, sent=0, completed=0, errors=0, in_flight=0, output_tokens=0)
            for i in range(n)
        ]
    sent = np.array([s.sent_s for s in samples])
    done = np.array([s.done_s for s in samples])
    meant = np.array([s.meant_s for s in samples])
    ok = np.array([s.ok for s in samples])
    tokens = np.array([s.tokens if s.ok else 0 for s in samples])
    b_sent, b_done, b_meant = (
        _bucket(sent, start_s, n),
        _bucket(done, start_s, n),
        _bucket(meant, start_s, n),
    )
    sent_n = np.bincount(b_sent, minlength=n)
    completed_n = np.bincount(b_done[ok], minlength=n)
    errors_n = np.bincount(b_done[~ok], minlength=n)
    tokens_n = np.bincount(b_done, weights=tokens, minlength=n)
    ends = start_s + np.arange(1, n + 1)
    sent_sorted, done_sorted = np.sort(sent), np.sort(done)
    in_flight = np.searchsorted(sent_sorted, ends, side="right") - np.searchsorted(
        done_sorted, ends, side="right"
    )
    nan = float("nan")
    ttft = np.array([s.ttft_ms if s.ttft_ms is not None else nan for s in samples])
    e2e = np.array([s.e2e_ms for s in samples])
    from_int = np.array(
        [(s.done_s - s.intended_s) * 1000.0 if s.intended_s is not None else nan for s in samples]
    )
    # Group the successful requests by the second they were meant for (one sort, then slices).
    keep = np.nonzero(ok)[0]
    order = keep[np.argsort(b_meant[keep], kind="stable")]
    bounds = np.searchsorted(b_meant[order], np.arange(n + 1))
    out: list[SecondBucket] = []
    for i in range(n):
        idx = order[bounds[i] : bounds[i + 1]]
        t, e, f = ttft[idx], e2e[idx], from_int[idx]
        t, f = t[~np.isnan(t)], f[~np.isnan(f)]
        out.append(
            SecondBucket(
                t_s=i,
                sent=int(sent_n[i]),
                completed=int(completed_n[i]),
                errors=int(errors_n[i]),
                in_flight=int(in_flight[i]),
                output_tokens=int(tokens_n[i]),
                ttft_p50_ms=percentile(t, 50),
                ttft_p95_ms=percentile(t, 95),
                e2e_p50_ms=percentile(e, 50),
                e2e_p95_ms=percentile(e, 95),
                e2e_from_intended_p95_ms=percentile(f, 95),
            )
        )
    return out


# How a request ended, for a timeline: who answered it, or that it failed.
OUTCOMES = ("primary", "fallback", "cache", "degraded", "error")


def outcome_of(s: Sample) -> str:
    """'degraded' (the gateway's 503 apology), 'error' (any other failure), else who answered."""
    served = (s.x_served_by or "").lower()
    if served == "degraded":
        return "degraded"
    if not s.ok:
        return "error"
    return served if served in OUTCOMES else "other"


def outcomes_per_second(
    samples: Sequence[Sample], start_s: float, span_s: float
) -> list[dict[str, int]]:
    """Per second the requests were meant for: how many each outcome had (keys of OUTCOMES, and
    'other' for an answer with no known X-Served-By)."""
    n = max(1, math.ceil(span_s - 1e-9))
    rows = [dict.fromkeys((*OUTCOMES, "other"), 0) for _ in range(n)]
    for s in samples:
        i = min(max(math.floor(s.meant_s - start_s), 0), n - 1)
        rows[i][outcome_of(s)] += 1
    return rows


class VersionFigures(BaseModel):
    """One rollout version's requests sent in an interval."""

    model_config = ConfigDict(extra="ignore")
    requests: int = 0
    errors: int = 0
    ttft_p95_ms: float | None = None


class VersionInterval(BaseModel):
    """A rollout interval: each version's requests sent in it, and those in flight at its end."""

    model_config = ConfigDict(extra="ignore")
    t_s: float  # the interval's start, seconds since the window start
    versions: dict[str, VersionFigures]
    in_flight: int


def per_version(
    samples: Sequence[Sample], start_s: float, span_s: float, every_s: float
) -> list[VersionInterval]:
    """Per interval of `every_s`, each version's requests (by the answer's version header;
    "none" for a request no version answered) and the streams in flight at its end."""
    n = max(1, math.ceil(span_s / every_s - 1e-9))
    out = []
    for i in range(n):
        lo, hi = start_s + i * every_s, start_s + (i + 1) * every_s
        sent = [s for s in samples if lo <= s.sent_s < hi]
        versions: dict[str, VersionFigures] = {}
        for name in sorted({s.x_version or "none" for s in sent}):
            mine = [s for s in sent if (s.x_version or "none") == name]
            p95 = percentile([s.ttft_ms for s in mine if s.ttft_ms is not None], 95)
            versions[name] = VersionFigures(
                requests=len(mine),
                errors=sum(1 for s in mine if not s.ok),
                ttft_p95_ms=None if p95 is None else round(p95, 1),
            )
        in_flight = sum(1 for s in samples if s.sent_s < hi < s.done_s)
        out.append(
            VersionInterval(t_s=round(i * every_s, 2), versions=versions, in_flight=in_flight)
        )
    return out
