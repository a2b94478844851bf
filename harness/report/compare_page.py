"""The comparison of two runs as Markdown (`compare.md`) and a self-contained HTML page
(`compare.html`) with both runs' distributions drawn as ECDFs (SVG, no external assets)."""

from __future__ import annotations

import html
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from harness.compare.runs import StoredRun
from harness.compare.runs_compare import Comparison
from harness.compare.stats import MetricComparison
from harness.report.render_html import svg_line_chart
from harness.verdict.rates import NAMES, RateComparison

_LABEL_COLOURS = {
    "regressed": "#cf222e",
    "improved": "#1a7f37",
    "same": "#1a7f37",
    "inconclusive": "#9a6700",
}
COLUMNS = (
    "figure",
    "n A / B",
    "median A -> B (ms)",
    "median change [CI]",
    "p95 A -> B (ms)",
    "p95 change [CI]",
    "Mann-Whitney p",
    "KS D (p)",
    "effect",
    "label",
)

RATE_COLUMNS = ("rate", "A", "B", "change [CI] (pp)", "Fisher p", "label")


def _p(v: float | None) -> str:
    return "-" if v is None else (f"{v:.2g}" if v < 0.01 else f"{v:.2f}")


def metric_row(m: MetricComparison) -> tuple[str, ...]:
    cells: list[str] = [m.metric, f"{m.n_a} / {m.n_b}"]
    by = {c.statistic: c for c in m.changes}
    for name in ("median", "p95"):
        c = by.get(name)
        if c is None:
            cells += ["-", "-"]
            continue
        cells += [
            f"{c.a:.1f} -> {c.b:.1f}",
            f"{c.rel:+.1%} [{c.rel_low:+.1%}, {c.rel_high:+.1%}] {c.label}"
            + (f" (~{c.samples_needed}/run to decide)" if c.samples_needed else ""),
        ]
    ks = "-" if m.ks_statistic is None else f"{m.ks_statistic:.3f} ({_p(m.ks_p)})"
    effect = "-" if m.effect_size is None else f"{m.effect_size:+.3f}"
    cells += [_p(m.mann_whitney_p), ks, effect, m.label.upper()]
    return tuple(cells)


def rate_row(r: RateComparison) -> tuple[str, ...]:
    def share(k: int, n: int) -> str:
        return f"{k / n:.1%} ({k}/{n})" if n else "-"

    change = "-"
    if r.diff_pp is not None and r.low_pp is not None and r.high_pp is not None:
        change = f"{r.diff_pp:+.1f} [{r.low_pp:+.1f}, {r.high_pp:+.1f}]" + (
            f" (~{r.samples_needed}/run to decide)" if r.samples_needed else ""
        )
    return (
        NAMES.get(r.metric, r.metric),
        share(r.k_a, r.n_a),
        share(r.k_b, r.n_b),
        change,
        _p(r.fisher_p),
        r.label.upper(),
    )


def _how_to_read(c: Comparison) -> str:
    return (
        f"Changes are B relative to A with {c.level:.0%} bootstrap intervals; the smallest "
        f"change that matters is {c.min_effect_pct:g}%. same: the interval lies inside "
        f"+-{c.min_effect_pct:g}%; regressed / improved: it excludes 0 and the change is at "
        f"least {c.min_effect_pct:g}%; inconclusive: more requests would decide. Effect: "
        "rank-biserial correlation, > 0 when B's requests tend to be slower."
    )


def _how_to_read_rates(c: Comparison) -> str:
    return (
        "Rates: errors of all requests, fallback and degraded answers (X-Served-By) of those "
        "answered; the change is B - A in percentage points (pp) with Newcombe's "
        f"{c.level:.0%} interval, and the smallest change that matters is "
        f"{c.min_effect_pp:g} pp; labels as above."
    )


def render_compare_markdown(c: Comparison) -> str:
    lines = [
        f"# Comparison: {c.label.upper()} ({c.verdict})",
        "",
        f"- A (baseline): {c.a.label}, {c.a.requests} requests, {c.a.errors} errors, "
        f"outcome {c.a.outcome}",
        f"- B (candidate): {c.b.label}, {c.b.requests} requests, {c.b.errors} errors, "
        f"outcome {c.b.outcome}",
    ]
    if c.blocking:
        lines.append(f"- **blocking regression: {', '.join(c.blocking)}**")
    lines += [
        "",
        _how_to_read(c),
        "",
        "| " + " | ".join(COLUMNS) + " |",
        "|" + "---|" * len(COLUMNS),
    ]
    lines += ["| " + " | ".join(metric_row(m)) + " |" for m in c.metrics]
    if c.rates:
        lines += ["", _how_to_read_rates(c), "", *(f"- {r.reason}" for r in c.rates)]
    return "\n".join(lines) + "\n"


def ecdf_chart(metric: str, a: NDArray[Any], b: NDArray[Any]) -> str:
    """Both runs' ECDFs of one figure on a shared grid (0.5th to 99.5th percentile of both)."""
    if a.size == 0 or b.size == 0:
        return ""
    both = np.concatenate([a, b])
    lo, hi = np.quantile(both, [0.005, 0.995])
    grid = np.linspace(lo, hi, 120)
    sa, sb = np.sort(a), np.sort(b)
    ya = np.searchsorted(sa, grid, side="right") / sa.size
    yb = np.searchsorted(sb, grid, side="right") / sb.size
    return svg_line_chart(
        f"{metric}: share of requests at or below",
        [float(x) for x in grid],
        {"A (baseline)": [float(y) for y in ya], "B (candidate)": [float(y) for y in yb]},
        x_labels=(f"{lo:.1f} ms", f"{hi:.1f} ms"),
    )


def _html_table(columns: tuple[str, ...], rows: list[tuple[tuple[str, ...], str]]) -> str:
    """A table whose last cell, the label, is coloured by `label` of (cells, label)."""
    e = html.escape
    head = "".join(f"<th>{e(x)}</th>" for x in columns)
    body = "".join(
        "<tr>"
        + "".join(f"<td>{e(x)}</td>" for x in cells[:-1])
        + f'<td style="color:{_LABEL_COLOURS[label]};font-weight:600">{e(cells[-1])}</td>'
        "</tr>"
        for cells, label in rows
    )
    return f"<table><tr>{head}</tr>{body}</table>"


def render_compare_html(c: Comparison, a: StoredRun, b: StoredRun) -> str:
    e = html.escape
    colour = _LABEL_COLOURS[c.label]
    figures = _html_table(COLUMNS, [(metric_row(m), m.label) for m in c.metrics])
    rates = (
        f"<h2>Rates</h2><p>{e(_how_to_read_rates(c))}</p>"
        + _html_table(RATE_COLUMNS, [(rate_row(r), r.label) for r in c.rates])
        if c.rates
        else ""
    )
    charts = "".join(
        f"<div class=chart>{chart}</div>"
        for m in c.metrics
        if (chart := ecdf_chart(m.metric, a.samples.values(m.metric), b.samples.values(m.metric)))
    )
    blocking = (
        f"<p><strong>Blocking regression: {e(', '.join(c.blocking))}</strong></p>"
        if c.blocking
        else ""
    )
    return f"""<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>Comparison: {c.label}</title>
<style>
body {{ font: 14px/1.45 system-ui, sans-serif; margin: 2rem; color: #1f2328; max-width: 1200px; }}
h1 span {{ color: {colour}; }}
table {{ border-collapse: collapse; width: 100%; margin: 1rem 0; }}
td, th {{ border-bottom: 1px solid #d0d7de; padding: 4px 8px; text-align: left; }}
.meta {{ color: #59636e; }}
.chart {{ display: inline-block; margin: 0 1rem 1rem 0; }}
</style></head><body>
<h1>Comparison: <span>{c.label.upper()}</span> ({c.verdict})</h1>
<p class=meta>A (baseline): {e(c.a.label)}, {c.a.requests} requests, {c.a.errors} errors<br>
B (candidate): {e(c.b.label)}, {c.b.requests} requests, {c.b.errors} errors</p>
{blocking}
<p>{e(_how_to_read(c))}</p>
{figures}
{rates}
<h2>Distributions (ECDF)</h2>{charts}
</body></html>
"""


def write_comparison(c: Comparison, a: StoredRun, b: StoredRun, out_dir: Path) -> list[Path]:
    """compare.json, compare.md and compare.html in `out_dir`."""
    out_dir.mkdir(parents=True, exist_ok=True)
    files = {
        out_dir / "compare.json": c.model_dump_json(indent=2) + "\n",
        out_dir / "compare.md": render_compare_markdown(c),
        out_dir / "compare.html": render_compare_html(c, a, b),
    }
    for path, text in files.items():
        path.write_text(text)
    return list(files)
