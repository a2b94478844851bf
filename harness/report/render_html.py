"""A self-contained HTML report (no external assets): outcome, checks, load figures, SVG plots."""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence

from harness.load.report import LoadReport
from harness.report.breakdown_figures import breakdown_html
from harness.report.evidence import render_evidence
from harness.report.experiment_figures import (
    FATE_COLUMNS,
    PHASE_COLUMNS,
    RECOVERY_COLUMNS,
    experiment_figure,
    fate_rows,
    phase_rows,
    recovery_rows,
)
from harness.report.history_figures import HISTORY_CHARTS, HISTORY_COLUMNS, history_rows, series
from harness.report.load_figures import load_highlights, load_timeseries
from harness.report.model import RunReport
from harness.report.rollout_figures import rollout_html
from harness.report.verdict_figures import CONFIDENCE_COLUMNS, calibration_line, confidence_rows

_COLOURS = {
    "pass": "#1a7f37",
    "warn": "#9a6700",
    "fail": "#cf222e",
    "error": "#8250df",
    "skipped": "#6e7781",
}
_OUTCOME_COLOURS = {
    "passed": "#1a7f37",
    "failed": "#cf222e",
    "error": "#8250df",
    "interrupted": "#9a6700",
    "running": "#6e7781",
}


def _fmt(v: object) -> str:
    """Numbers as a person reads them: no exponents, no 12-digit fractions."""
    if isinstance(v, bool) or not isinstance(v, (int, float)):
        return str(v)
    if v == int(v) and abs(v) < 1e15:
        return f"{int(v):,}"
    return f"{v:,.0f}" if abs(v) >= 100 else f"{v:.3g}"


def _measured(values: Mapping[str, object]) -> str:
    return ", ".join(f"{k}={_fmt(v)}" for k, v in values.items())


def svg_line_chart(
    title: str,
    xs: Sequence[float],
    series: dict[str, Sequence[float | None]],
    unit: str = "",
    width: int = 560,
    height: int = 200,
    x_labels: tuple[str, str] | None = None,
    dots: bool = False,
) -> str:
    """One chart, one or more lines over a shared x axis (seconds into the run, unless
    `x_labels` names its two ends); `dots` marks every point (a lone point shows too)."""
    pad_l, pad_r, pad_t, pad_b = 68, 12, 24, 28
    values = [v for ys in series.values() for v in ys if v is not None]
    if not xs or not values:
        return ""
    x0, x1 = min(xs), max(xs) if max(xs) > min(xs) else min(xs) + 1
    y1 = max(values) * 1.1 or 1.0
    w, h = width - pad_l - pad_r, height - pad_t - pad_b

    def px(x: float) -> float:
        return pad_l + (x - x0) / (x1 - x0) * w

    def py(y: float) -> float:
        return pad_t + h - (y / y1) * h

    ends = x_labels or (f"{x0:.0f} s", f"{x1:.0f} s")
    palette = ["#0969da", "#cf222e", "#1a7f37", "#9a6700", "#8250df"]
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" '
        f'role="img" aria-label="{html.escape(title)}">',
        f'<text x="{pad_l}" y="15" font-size="13" font-weight="600">{html.escape(title)}</text>',
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#999"/>',
        f'<line x1="{pad_l}" y1="{pad_t}" x2="{pad_l}" y2="{pad_t + h}" stroke="#999"/>',
    ]
    for frac in (0.0, 0.5, 1.0):
        yv = y1 * frac
        parts.append(
            f'<text x="{pad_l - 4}" y="{py(yv) + 4:.1f}" font-size="10" text-anchor="end">'
            f"{_fmt(yv)}{html.escape(unit)}</text>"
        )
    parts.append(
        f'<text x="{pad_l + w}" y="{height - 6}" font-size="10" text-anchor="end">'
        f"{html.escape(ends[1])}</text>"
        f'<text x="{pad_l}" y="{height - 6}" font-size="10">{html.escape(ends[0])}</text>'
    )
    for i, (name, ys) in enumerate(series.items()):
        colour = palette[i % len(palette)]
        pts = " ".join(
            f"{px(x):.1f},{py(y):.1f}" for x, y in zip(xs, ys, strict=False) if y is not None
        )
        parts.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts}"/>')
        if dots:
            parts += [
                f'<circle cx="{px(x):.1f}" cy="{py(y):.1f}" r="2.5" fill="{colour}"/>'
                for x, y in zip(xs, ys, strict=False)
                if y is not None
            ]
        parts.append(
            f'<text x="{pad_l + 8 + i * 120}" y="{pad_t + 12}" font-size="11" fill="{colour}">'
            f"{html.escape(name)}</text>"
        )
    parts.append("</svg>")
    return "".join(parts)


# Charts of the per-second series: (title, unit, keys of each row to plot).
_CHARTS = (
    ("Requests per second", "", ("sent", "completed", "errors")),
    ("Time to first token", " ms", ("ttft_p50_ms", "ttft_p95_ms")),
    ("End-to-end latency", " ms", ("e2e_p50_ms", "e2e_p95_ms", "e2e_from_intended_p95_ms")),
    ("Output tokens per second", "", ("output_tokens",)),
    ("Requests in flight", "", ("in_flight",)),
)


def _charts(load: LoadReport | None) -> list[str]:
    """Plots of the per-second time series of the load run, when there is one."""
    rows = [r.model_dump() for r in load_timeseries(load)]
    if not rows:
        return []
    xs = [float(r["t_s"]) for r in rows]

    def col(key: str) -> list[float | None]:
        return [float(r[key]) if isinstance(r.get(key), (int, float)) else None for r in rows]

    out = []
    for title, unit, keys in _CHARTS:
        present = [k for k in keys if any(isinstance(r.get(k), (int, float)) for r in rows)]
        if present:
            out.append(svg_line_chart(title, xs, {k: col(k) for k in present}, unit))
    return [c for c in out if c]


def _table(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    """A plain table of escaped text cells ("" without rows)."""
    e = html.escape
    if not rows:
        return ""
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def _experiments(report: RunReport) -> str:
    e = html.escape
    out = []
    for exp in report.experiments:
        figure = experiment_figure(exp)
        out.append(
            f"<h3>{e(exp.title)}</h3>"
            f"<p class=meta>{e(exp.file)}</p>"
            + (f"<div class=chart>{figure}</div>" if figure else "")
            + _table(PHASE_COLUMNS, phase_rows(exp))
            + (
                f"<p>The fate of each request</p>{_table(FATE_COLUMNS, fates)}"
                if (fates := fate_rows(exp))
                else ""
            )
            + _table(RECOVERY_COLUMNS, recovery_rows(exp))
        )
    return f"<h2>Chaos experiments</h2>{''.join(out)}" if out else ""


_CHECKLIST_COLOURS = {
    "proven": "#1a7f37",
    "warning": "#9a6700",
    "failed": "#cf222e",
    "not checked": "#6e7781",
    "outside the gate": "#6e7781",
}


def _confidence(report: RunReport) -> str:
    rows = confidence_rows(report)
    if not rows:
        return ""
    return f"<h2>How sure (95% confidence bounds)</h2>{_table(CONFIDENCE_COLUMNS, rows)}"


def _checklist(report: RunReport) -> str:
    e = html.escape
    rows = "".join(
        f"<tr><td>{e(r.stage)}</td><td>{e(r.item)}</td>"
        f'<td style="color:{_CHECKLIST_COLOURS[r.status]};font-weight:600">{e(r.status)}</td>'
        f"<td>{e(r.proven_by())}</td></tr>"
        for r in report.checklist
    )
    return (
        "<h2>Deployment checklist (PRACTICES.md)</h2><table><tr><th>stage</th><th>item</th>"
        f"<th>status</th><th>proven by</th></tr>{rows}</table>"
    )


def _history(report: RunReport) -> str:
    """Key figures over the last runs of the history, this run last."""
    runs = report.history
    if not runs:
        return ""
    xs = [float(i) for i in range(len(runs))]
    ends = (f"{len(runs) - 1} runs ago" if len(runs) > 1 else "", "this run")
    charts = "".join(
        f"<div class=chart>{chart}</div>"
        for title, unit, figures in HISTORY_CHARTS
        if (
            chart := svg_line_chart(
                title, xs, {f: series(runs, f) for f in figures}, unit, x_labels=ends, dots=True
            )
        )
    )
    return f"<h2>History</h2>{charts}{_table(HISTORY_COLUMNS, history_rows(runs))}"


def render_html(report: RunReport) -> str:
    e = html.escape
    colour = _OUTCOME_COLOURS.get(report.outcome, "#333")
    rows = "".join(
        f'<tr><td style="color:{_COLOURS[c.outcome]};font-weight:600">{c.outcome.upper()}</td>'
        f"<td>{e(c.name)}</td><td>{e(c.category)}</td>"
        f"<td>{'<br>'.join(e(r) for r in c.reasons)}</td>"
        f"<td><code>{e(_measured(c.measured))}</code></td></tr>{render_evidence(c.evidence)}"
        for c in report.checks
    )
    load_rows = "".join(
        f"<tr><td>{e(k)}</td><td>{e(v)}</td></tr>" for k, v in load_highlights(report.load)
    )
    charts = "".join(f"<div class=chart>{c}</div>" for c in _charts(report.load))
    resources = "".join(
        f"<tr><td>{e(r.service)}</td><td>{_fmt(r.cpu_percent_mean)}</td>"
        f"<td>{_fmt(r.cpu_percent_max)}</td><td>{_fmt(r.rss_mb_max)}</td></tr>"
        for r in report.resources
    )
    errors = "".join(f"<li><pre>{e(x)}</pre></li>" for x in report.errors)
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{report.kind_title}: {e(report.outcome)}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1f2328; max-width: 1200px; }}
h1 span {{ color: {colour}; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left;
         vertical-align: top; }}
code, pre {{ font-size: 12px; white-space: pre-wrap; }}
.meta {{ color: #59636e; }}
.chart {{ display: inline-block; margin: 0 1rem 1rem 0; }}
</style></head><body>
<h1>{report.kind_title}: <span>{e(report.outcome.upper())}</span></h1>
<p class=meta>{e(report.name)} &middot; started {e(report.started_at)} &middot;
{report.duration_s or 0:.1f} s &middot; harness {e(report.harness_version)} &middot;
commit {e((report.git_sha or "unknown")[:12])} &middot; {e(report.host.hostname)}
{f"&middot; stack up in {report.startup_seconds:.1f} s" if report.startup_seconds else ""}</p>
{f"<p class=meta>{e(cal)}</p>" if (cal := calibration_line(report)) else ""}
{f"<h2>Errors</h2><ul>{errors}</ul>" if errors else ""}
<h2>Checks</h2>
<table><tr><th>outcome</th><th>check</th><th>category</th><th>details</th><th>measured</th></tr>
{rows}</table>
{rollout_html(report.rollout) if report.rollout is not None else ""}
{_confidence(report)}
{_checklist(report)}
{f"<h2>Load</h2>{charts}<table>{load_rows}</table>" if (charts or load_rows) else ""}
{breakdown_html(report.load)}
{
        f"<h2>Resources during the load</h2><table><tr><th>service</th><th>CPU % mean</th>"
        f"<th>CPU % max</th><th>peak RSS MB</th></tr>{resources}</table>"
        if resources
        else ""
    }
{_experiments(report)}
{_history(report)}
</body></html>
"""
