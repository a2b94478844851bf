"""The nightly trend page: each figure over the history's runs (this one last), the change
points e-divisive found marked, and the runs with their label against the pinned baseline."""

from __future__ import annotations

import html
from pathlib import Path

from harness.measure.history import HistoryRecord, PinnedBaseline
from harness.report.render_html import svg_line_chart
from harness.verdict.baseline import is_accepted

_CHARTS = (
    ("Time to first token", ("ttft_p50_ms", "ttft_p95_ms")),
    ("Inter-token latency", ("itl_p50_ms", "itl_p95_ms")),
    ("End-to-end latency", ("e2e_p50_ms", "e2e_p95_ms")),
)
COLUMNS = (
    "run",
    "started",
    "commit",
    "gate",
    "vs baseline",
    "accepted",
    "requests",
    "TTFT p50/p95 ms",
    "ITL p95 ms",
    "e2e p95 ms",
)


def _v(r: HistoryRecord, key: str) -> str:
    x = r.figures.get(key)
    return "-" if x is None else f"{x:.1f}"


def run_row(r: HistoryRecord) -> tuple[str, ...]:
    return (
        r.run or "-",
        r.started_at,
        (r.git_sha or "-")[:10],
        r.outcome,
        (r.label or "-") + (f" ({', '.join(r.blocking)})" if r.blocking else ""),
        "yes" if is_accepted(r) else "no",
        str(r.requests),
        f"{_v(r, 'ttft_p50_ms')} / {_v(r, 'ttft_p95_ms')}",
        _v(r, "itl_p95_ms"),
        _v(r, "e2e_p95_ms"),
    )


def change_lines(records: list[HistoryRecord], points: dict[str, list[int]]) -> list[str]:
    out = []
    for figure, idx in points.items():
        for i in idx:
            before = records[i - 1].figures.get(figure) if i > 0 else None
            now = records[i].figures.get(figure)
            unit = " ms" if figure.endswith("_ms") else ""
            shift = f" ({before:.1f} -> {now:.1f}{unit})" if before and now else ""
            out.append(
                f"{figure}: level changed at run {records[i].run or '-'} "
                f"(commit {(records[i].git_sha or '-')[:10]}){shift}"
            )
    return out


def render_trend_markdown(
    records: list[HistoryRecord], points: dict[str, list[int]], baseline: PinnedBaseline | None
) -> str:
    lines = ["# Nightly trend", ""]
    lines.append(
        f"Pinned baseline: {baseline.run} ({baseline.started_at}; {baseline.why})"
        if baseline
        else "Pinned baseline: none"
    )
    found = change_lines(records, points)
    lines += ["", "## Change points (e-divisive means, p < 0.05)", ""]
    lines += [f"- {x}" for x in found] or ["- none in the last runs"]
    lines += ["", "## Runs", "", "| " + " | ".join(COLUMNS) + " |", "|" + "---|" * len(COLUMNS)]
    lines += ["| " + " | ".join(run_row(r)) + " |" for r in reversed(records)]
    return "\n".join(lines) + "\n"


def _mark(chart: str, n: int, indices: list[int], width: int = 560, height: int = 200) -> str:
    """Vertical dashed lines at the change points (the chart's own margins: 68 left, 12 right,
    24 top, 28 bottom; x is the run's index)."""
    if not indices or not chart:
        return chart
    span = max(n - 1, 1)
    w = width - 68 - 12
    lines = "".join(
        f'<line x1="{68 + i / span * w:.1f}" y1="24" x2="{68 + i / span * w:.1f}" '
        f'y2="{height - 28}" stroke="#cf222e" stroke-dasharray="4 3"/>'
        for i in indices
    )
    return chart.replace("</svg>", lines + "</svg>")


def render_trend_html(
    records: list[HistoryRecord], points: dict[str, list[int]], baseline: PinnedBaseline | None
) -> str:
    e = html.escape
    xs = [float(i) for i in range(len(records))]
    ends = (records[0].started_at[:10], records[-1].started_at[:10]) if records else ("", "")
    charts = []
    for title, figures in _CHARTS:
        chart = svg_line_chart(
            title,
            xs,
            {f: [r.figures.get(f) for r in records] for f in figures},
            " ms",
            x_labels=ends,
            dots=True,
        )
        marks = sorted({i for f in figures for i in points.get(f, [])})
        if chart:
            charts.append(f"<div class=chart>{_mark(chart, len(records), marks)}</div>")
    head = "".join(f"<th>{e(c)}</th>" for c in COLUMNS)
    rows = "".join(
        "<tr>" + "".join(f"<td>{e(x)}</td>" for x in run_row(r)) + "</tr>"
        for r in reversed(records)
    )
    found = "".join(f"<li>{e(x)}</li>" for x in change_lines(records, points))
    base = (
        f"{e(baseline.run)} ({e(baseline.started_at)}; {e(baseline.why)})" if baseline else "none"
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Nightly trend</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1f2328; max-width: 1200px; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }}
.meta {{ color: #59636e; }}
.chart {{ display: inline-block; margin: 0 1rem 1rem 0; }}
</style></head><body>
<h1>Nightly trend</h1>
<p class=meta>{len(records)} runs; pinned baseline: {base}. Dashed red lines: change points
(e-divisive means, p &lt; 0.05).</p>
{"".join(charts)}
<h2>Change points</h2><ul>{found or "<li>none in the last runs</li>"}</ul>
<h2>Runs (newest first)</h2><table><tr>{head}</tr>{rows}</table>
</body></html>
"""


def write_trend(
    records: list[HistoryRecord],
    points: dict[str, list[int]],
    baseline: PinnedBaseline | None,
    *folders: Path,
) -> list[Path]:
    """trend.md and trend.html into each folder."""
    md = render_trend_markdown(records, points, baseline)
    page = render_trend_html(records, points, baseline)
    out = []
    for folder in folders:
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "trend.md").write_text(md)
        (folder / "trend.html").write_text(page)
        out += [folder / "trend.md", folder / "trend.html"]
    return out
