"""A gate report's view of its history: each key figure (the ones the gate judges) over the last
runs, this run last."""

from __future__ import annotations

from harness.measure.history import HistoryRecord
from harness.verdict.baseline import KEY_METRICS

# (title, unit, figures on one chart)
HISTORY_CHARTS = (
    ("Time to first token over runs", " ms", ("ttft_p50_ms", "ttft_p95_ms")),
    ("Inter-token / per-token latency over runs", " ms", ("itl_p95_ms", "tpot_p95_ms")),
    ("End-to-end latency over runs", " ms", ("e2e_p95_ms",)),
    ("Output tokens per second over runs", "", ("output_tokens_per_second",)),
)
HISTORY_COLUMNS = ("run", "commit", "outcome", *KEY_METRICS)


def series(history: list[HistoryRecord], figure: str) -> list[float | None]:
    return [row.figures.get(figure) for row in history]


def history_rows(history: list[HistoryRecord], last: int = 10) -> list[tuple[str, ...]]:
    """The newest `last` runs, newest first, cells as HISTORY_COLUMNS."""
    rows = []
    for row in reversed(history[-last:]):
        rows.append(
            (
                row.started_at[:19],
                (row.git_sha or "")[:10],
                row.outcome,
                *(
                    f"{v:,.1f}" if (v := row.figures.get(k)) is not None else "-"
                    for k in KEY_METRICS
                ),
            )
        )
    return rows
