"""Where the time to first token went: a stacked bar per percentile (the requests around the
run's TTFT p50 and p95, each part the mean over them) and the table behind it."""

from __future__ import annotations

import html

from harness.load.report import LoadReport
from harness.measure.breakdown import PART_LABELS, TtftBreakdown, breakdown_rows, decode_line

BREAKDOWN_COLUMNS = ("part", "p50 ms", "p95 ms", "measured by")
_COLOURS = {
    "gateway_ms": "#0969da",
    "server_queue_ms": "#bf8700",
    "server_prefill_ms": "#1a7f37",
    "upstream_rest_ms": "#8250df",
    "first_text_wait_ms": "#57606a",
    "unexplained_ms": "#cf222e",
}


def breakdown_of(load: LoadReport | None) -> TtftBreakdown | None:
    return load.ttft_breakdown if load is not None else None


def breakdown_note(b: TtftBreakdown) -> str:
    """One line under the table: n, what was left out, and the agreement check's word."""
    left = ", ".join(f"{k} {v}" for k, v in b.left_out.items())
    u = b.unexplained_ms
    text = f"{b.requests} requests broken down" + (f" (left out: {left})" if left else "")
    if u.count:
        text += f"; unexplained per request p50 {u.p50:.1f} ms, p95 {u.p95:.1f} ms"
    if (decode := decode_line(b)) is not None:
        text += f"; {decode}"
    if b.agreement is not None:
        text += f". Client vs server: {b.agreement.decision}: {b.agreement.reason}"
    return text


def breakdown_svg(b: TtftBreakdown, width: int = 760) -> str:
    """Horizontal stacked bars, one per percentile band, on one ms scale; a negative part (a
    histogram mean above a request's own time) is drawn as nothing and kept in the table."""
    bands = [x for x in b.bands if x.requests]
    if not bands:
        return ""
    pad_l, pad_r, bar_h, gap = 40, 120, 22, 14  # the right pad holds each bar's total
    columns = 3
    rows = -(-len(PART_LABELS) // columns)
    top = 26 + rows * 16
    height = top + len(bands) * (bar_h + gap) + 28
    scale_max = max(max(x.ttft_ms, sum(max(0.0, v) for v in x.parts_ms.values())) for x in bands)
    scale_max = scale_max or 1.0
    w = width - pad_l - pad_r
    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        'aria-label="Where the time to first token went">',
        '<text x="0" y="15" font-size="13" font-weight="600">'
        "Where the time to first token went (ms)</text>",
    ]
    for i, (key, label) in enumerate(PART_LABELS.items()):
        lx, ly = (i % columns) * width / columns, 22 + (i // columns) * 16
        parts.append(
            f'<rect x="{lx:.0f}" y="{ly}" width="10" height="10" fill="{_COLOURS[key]}"/>'
            f'<text x="{lx + 14:.0f}" y="{ly + 9}" font-size="11">{e(label)}</text>'
        )
    for i, band in enumerate(bands):
        y = top + i * (bar_h + gap)
        parts.append(
            f'<text x="{pad_l - 6}" y="{y + bar_h / 2 + 4:.0f}" font-size="11" '
            f'text-anchor="end">p{band.percentile:g}</text>'
        )
        x = float(pad_l)
        for key in PART_LABELS:
            ms = max(0.0, band.parts_ms[key])
            span = ms / scale_max * w
            if span > 0:
                parts.append(
                    f'<rect x="{x:.1f}" y="{y}" width="{span:.1f}" height="{bar_h}" '
                    f'fill="{_COLOURS[key]}"><title>{e(PART_LABELS[key])}: {ms:.1f} ms'
                    "</title></rect>"
                )
            x += span
        parts.append(
            f'<text x="{x + 4:.1f}" y="{y + bar_h / 2 + 4:.0f}" font-size="11">'
            f"{band.ttft_ms:.1f} ms (n={band.requests})</text>"
        )
    axis_y = top + len(bands) * (bar_h + gap)
    parts.append(
        f'<line x1="{pad_l}" y1="{axis_y}" x2="{pad_l + w}" y2="{axis_y}" stroke="#999"/>'
        f'<text x="{pad_l}" y="{axis_y + 14}" font-size="10">0</text>'
        f'<text x="{pad_l + w}" y="{axis_y + 14}" font-size="10" text-anchor="end">'
        f"{scale_max:.0f} ms</text></svg>"
    )
    return "".join(parts)


def breakdown_html(load: LoadReport | None) -> str:
    """The figure, its table and its note ("" when the run has no breakdown)."""
    b = breakdown_of(load)
    if b is None:
        return ""
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in BREAKDOWN_COLUMNS)
    body = "".join(
        "<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in breakdown_rows(b)
    )
    return (
        f"<h3>Where the time to first token went</h3><div class=chart>{breakdown_svg(b)}</div>"
        f"<table><tr>{head}</tr>{body}</table><p class=meta>{e(breakdown_note(b))}</p>"
    )
