"""A nightly report's view of the history: each key figure over the last runs, this run last."""

from __future__ import annotations

from typing import Any

from harness.verdict.baseline import KEY_METRICS

# (title, unit, figures on one chart)
HISTORY_CHARTS = (
    ("Time to first token over runs", " ms", ("ttft_p50_ms", "ttft_p95_ms")),
    ("Inter-token / per-token latency over runs", " ms", ("itl_p95_ms", "tpot_p95_ms")),
    ("End-to-end latency over runs", " ms", ("e2e_p95_ms",)),
    ("Output tokens per second over runs", "", ("output_tokens_per_second",)),
)
HISTORY_COLUMNS = ("run", "commit", "outcome", *KEY_METRICS)


def series(history: list[dict[str, Any]], figure: str) -> list[float | None]:
    out: list[float | None] = []
    for row in history:
        value = (row.get("metrics") or {}).get(figure)
        out.append(float(value) if isinstance(value, (int, float)) else None)
    return out


def history_rows(history: list[dict[str, Any]], last: int = 10) -> list[tuple[str, ...]]:
    """The newest `last` runs, newest first, cells as HISTORY_COLUMNS."""
    rows = []
    for row in reversed(history[-last:]):
        metrics = row.get("metrics") or {}
        rows.append((
            str(row.get("started_at", ""))[:19],
            str(row.get("git_sha") or "")[:10],
            str(row.get("outcome", "")),
            *(f"{v:,.1f}" if isinstance(v := metrics.get(k), (int, float)) else "-"
              for k in KEY_METRICS),
        ))  # fmt: skip
    return rows
