"""What a person reads of a rollout: one timeline over the rollout's seconds (the candidate's
share, each version's TTFT p95 and errors, the streams in flight, every traffic move and canary
decision), the canary's looks figure by figure, the moves, and where the rollout stopped. Pure
functions of the journal, shared by the HTML and the Markdown renderings."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence

from harness.report.rollout_journal import MoveRecord, RolloutJournal
from harness.verdict.rollout import FigureLook, StepLook

# Version -> colour. "none": requests no version answered (they failed before one did).
VERSION_COLOURS = {"baseline": "#0969da", "candidate": "#bc4c00", "none": "#6e7781"}
_OTHER_COLOUR = "#8250df"
_SHARE_COLOUR = "#1a7f37"
_IN_FLIGHT_COLOUR = "#57606a"
DECISION_COLOURS = {"promote": "#1a7f37", "abort": "#cf222e", "hold": "#6e7781"}
VERDICT_COLOURS = {"no_worse": "#1a7f37", "worse": "#cf222e", "undecided": "#9a6700"}
# Pixels per character of 10px text: enough to keep staggered labels from overlapping.
_CHAR_PX = 5.6


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def _shares(m: MoveRecord) -> str:
    """A move's share change; a replica replaced changes none."""
    if m.share_from is None or m.share_to is None:
        return "replica replaced"
    return f"{_pct(m.share_from)} -> {_pct(m.share_to)}"


def _versions(journal: RolloutJournal) -> list[str]:
    """Every version seen in the intervals: baseline, candidate, then any other (e.g. "none")."""
    seen = {v for row in journal.intervals for v in row.versions}
    known = [v for v in VERSION_COLOURS if v in seen]
    return known + sorted(seen - set(known))


def _colour(version: str) -> str:
    return VERSION_COLOURS.get(version, _OTHER_COLOUR)


def _tick_step(span: float) -> float:
    """A round step that puts at most ten ticks on the time axis."""
    for step in (1, 2, 5, 10, 15, 30, 60, 120, 300, 600, 900, 1800, 3600):
        if span / step <= 10:
            return float(step)
    return float(math.ceil(span / 10 / 3600) * 3600)


def _place(labels: Sequence[tuple[float, str]], x_max: float) -> list[tuple[float, str, int, str]]:
    """Stack labels into rows so none overlaps the one before it in its row: (x, text, row,
    anchor); labels near the right end hang to the left of their mark."""
    ends: list[float] = []  # per row, the rightmost pixel used
    out = []
    for x, text in labels:
        width = len(text) * _CHAR_PX + 6
        anchor = "end" if x + width > x_max else "start"
        lo, hi = (x - width, x) if anchor == "end" else (x, x + width)
        row = next((i for i, end in enumerate(ends) if end < lo), len(ends))
        if row == len(ends):
            ends.append(hi)
        else:
            ends[row] = hi
        out.append((x, text, row, anchor))
    return out


def _share_points(journal: RolloutJournal, span: float) -> list[tuple[float, float]]:
    """The candidate's share as a step line: flat between moves, a jump at each."""
    moves = sorted((m for m in journal.moves if m.share_to is not None), key=lambda m: m.at_s)
    first = moves[0].share_from if moves else None
    share = first if first is not None else journal.final_share
    pts = [(0.0, share)]
    for m in moves:
        assert m.share_to is not None
        pts += [(m.at_s, share), (m.at_s, m.share_to)]
        share = m.share_to
    pts.append((span, share))
    return pts


def _span(journal: RolloutJournal) -> float:
    ends = [
        *(row.t_s + journal.interval_s for row in journal.intervals),
        *(m.at_s for m in journal.moves),
        *(lk.t_s for lk in journal.looks),
    ]
    return max([1.0, *ends])


def svg_rollout_timeline(journal: RolloutJournal, width: int = 1000) -> str:
    """The rollout over its seconds, in four panels on one time axis: the candidate's share (a
    step line), each version's TTFT p95 per interval, each version's errors per interval (bars),
    and the streams in flight at each interval's end; a solid line at every traffic move and a
    dashed one at every canary decision (promote or abort) across all of them. "" when the
    journal has neither intervals nor moves."""
    if not journal.intervals and not journal.moves:
        return ""
    e = html.escape
    span = _span(journal)
    versions = _versions(journal)
    step_s = journal.interval_s or 1.0
    pad_l, pad_r = 64, 16
    w = width - pad_l - pad_r

    def px(t: float) -> float:
        return pad_l + min(max(t, 0.0), span) / span * w

    decisions = [lk for lk in journal.looks if lk.decision != "hold"]
    moves = sorted(journal.moves, key=lambda m: m.at_s)
    move_labels = _place([(px(m.at_s), f"{m.label} ({m.at_s:.1f} s)") for m in moves], width)
    decision_labels = _place(
        [
            (px(lk.t_s), f"{lk.decision} at {_pct(lk.share)}, look {lk.look}/{lk.max_looks}")
            for lk in decisions
        ],
        width,
    )
    move_rows = max((r for *_, r, _ in move_labels), default=-1) + 1
    decision_rows = max((r for *_, r, _ in decision_labels), default=-1) + 1
    # Panels top-down: (key, title, height).
    panels = [
        ("share", "candidate share", 84),
        ("ttft", "TTFT p95 (ms)", 110),
        ("errors", "errors", 64),
        ("in_flight", "in flight", 56),
    ]
    gap = 18
    top = 50 + move_rows * 12
    tops: dict[str, tuple[float, float]] = {}  # key -> (y of the panel's top, its height)
    y = float(top)
    for key, _, panel_h in panels:
        tops[key] = (y, panel_h)
        y += panel_h + gap
    bottom = y - gap  # the time axis
    height = int(bottom + 22 + decision_rows * 12 + 6)

    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="rollout timeline">',
        f'<text x="{pad_l}" y="15" font-size="13" font-weight="600">'
        f"{e(journal.strategy.replace('_', '-'))} rollout: candidate share, both versions per "
        f"{step_s:g} s, moves and decisions</text>",
    ]
    legend = [
        ("no version answered: errors" if v == "none" else f"{v}: TTFT p95, errors", _colour(v))
        for v in versions
    ] + [
        ("candidate share", _SHARE_COLOUR),
        ("in flight", _IN_FLIGHT_COLOUR),
        ("move", "#1f2328"),
        *(
            (d, DECISION_COLOURS[d])
            for d in ("promote", "abort")
            if any(lk.decision == d for lk in decisions)
        ),
    ]
    lx = float(pad_l)
    for text, colour in legend:
        parts.append(
            f'<text x="{lx:.0f}" y="32" font-size="11" font-weight="600" fill="{colour}">'
            f"{e(text)}</text>"
        )
        lx += len(text) * 6.2 + 16

    # Panel frames, titles and y ranges.
    for key, title, _ in panels:
        py0, ph = tops[key]
        parts.append(
            f'<line x1="{pad_l}" y1="{py0 + ph:.1f}" x2="{pad_l + w}" y2="{py0 + ph:.1f}" '
            f'stroke="#999"/><line x1="{pad_l}" y1="{py0:.1f}" x2="{pad_l}" y2="{py0 + ph:.1f}" '
            f'stroke="#999"/>'
        )
        # Titles run up the left margin, where no mark of the timeline can cross them.
        cx, cy = 14, py0 + ph / 2
        parts.append(
            f'<text x="{cx}" y="{cy:.1f}" font-size="10" fill="#59636e" text-anchor="middle" '
            f'transform="rotate(-90 {cx} {cy:.1f})">{e(title)}</text>'
        )

    def y_labels(key: str, top_value: str) -> None:
        py0, ph = tops[key]
        parts.append(
            f'<text x="{pad_l - 4}" y="{py0 + 8:.1f}" font-size="10" text-anchor="end">'
            f'{e(top_value)}</text><text x="{pad_l - 4}" y="{py0 + ph:.1f}" font-size="10" '
            f'text-anchor="end">0</text>'
        )

    # Share: a filled step line, 0..100%.
    sy0, sh = tops["share"]
    pts = [(px(t), sy0 + sh - s * sh) for t, s in _share_points(journal, span)]
    line = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in pts)
    area = f"{pad_l:.1f},{sy0 + sh:.1f} {line} {px(span):.1f},{sy0 + sh:.1f}"
    parts.append(
        f'<polygon points="{area}" fill="{_SHARE_COLOUR}" fill-opacity="0.12"/>'
        f'<polyline fill="none" stroke="{_SHARE_COLOUR}" stroke-width="2" points="{line}"/>'
    )
    y_labels("share", "100%")
    for m in journal.moves:  # each level's share beside the jump to it
        if m.share_to is None:
            continue
        level = sy0 + sh - m.share_to * sh
        # Under a high line: above it, the label would meet the move's own label.
        label_y = level + 12 if m.share_to > 0.75 else level - 4
        parts.append(
            f'<text x="{px(m.at_s) + 4:.1f}" y="{label_y:.1f}" '
            f'font-size="10" fill="{_SHARE_COLOUR}">{_pct(m.share_to)}</text>'
        )
    # Looks that held: a small tick on the share line, the figures in its tooltip.
    for lk in journal.looks:
        if lk.decision == "hold":
            x, yy = px(lk.t_s), sy0 + sh - lk.share * sh
            parts.append(
                f'<circle cx="{x:.1f}" cy="{yy:.1f}" r="3" fill="#fff" stroke="#6e7781">'
                f"<title>{e(_look_title(lk))}</title></circle>"
            )

    # TTFT p95: one line per version through the intervals' middles, broken where a version
    # had no requests (joining across the gap would draw a value no request had).
    ty0, th = tops["ttft"]
    ttfts = [
        f.ttft_p95_ms
        for row in journal.intervals
        for f in row.versions.values()
        if f.ttft_p95_ms is not None
    ]
    ttft_top = max(ttfts, default=0.0) * 1.1 or 1.0
    for v in versions:
        colour = _colour(v)
        runs: list[list[tuple[float, float, float]]] = [[]]
        for row in journal.intervals:
            fig = row.versions.get(v)
            if fig is None or fig.ttft_p95_ms is None:
                if runs[-1]:
                    runs.append([])
                continue
            runs[-1].append((row.t_s, px(row.t_s + step_s / 2), fig.ttft_p95_ms))
        for run in runs:
            if len(run) > 1:
                pts_s = " ".join(
                    f"{x:.1f},{ty0 + th - val / ttft_top * th:.1f}" for _, x, val in run
                )
                parts.append(
                    f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{pts_s}"/>'
                )
            parts += [
                f'<circle cx="{x:.1f}" cy="{ty0 + th - val / ttft_top * th:.1f}" r="2" '
                f'fill="{colour}"><title>{t:g}-{t + step_s:g} s: {e(v)} TTFT p95 {val:,.1f} ms'
                f"</title></circle>"
                for t, x, val in run
            ]
    y_labels("ttft", f"{ttft_top:,.0f}")

    # Errors: per interval, one bar per version side by side.
    ey0, eh = tops["errors"]
    err_top = max((f.errors for row in journal.intervals for f in row.versions.values()), default=0)
    if err_top:
        slot = (px(step_s) - px(0)) / max(1, len(versions))
        for row in journal.intervals:
            for j, v in enumerate(versions):
                fig = row.versions.get(v)
                if fig is None or not fig.errors:
                    continue
                bh = max(1.0, fig.errors / err_top * eh)
                parts.append(
                    f'<rect x="{px(row.t_s) + j * slot + 0.5:.1f}" y="{ey0 + eh - bh:.1f}" '
                    f'width="{max(1.0, slot - 1):.1f}" height="{bh:.1f}" fill="{_colour(v)}">'
                    f"<title>{row.t_s:g}-{row.t_s + step_s:g} s: {e(v)} {fig.errors} errors of "
                    f"{fig.requests} requests</title></rect>"
                )
                if slot >= 14:  # room for the count over its bar
                    parts.append(
                        f'<text x="{px(row.t_s) + (j + 0.5) * slot:.1f}" '
                        f'y="{ey0 + eh - bh - 2:.1f}" font-size="9" text-anchor="middle" '
                        f'fill="{_colour(v)}">{fig.errors}</text>'
                    )
        y_labels("errors", str(err_top))
    else:
        parts.append(
            f'<text x="{pad_l + w / 2:.1f}" y="{ey0 + eh / 2 + 4:.1f}" font-size="11" '
            f'fill="#1a7f37" text-anchor="middle">no errors</text>'
        )

    # In flight: the streams open at each interval's end.
    iy0, ih = tops["in_flight"]
    flight_top = max((row.in_flight for row in journal.intervals), default=0) or 1
    if journal.intervals:
        pts_f = " ".join(
            f"{px(row.t_s + step_s):.1f},{iy0 + ih - row.in_flight / flight_top * ih:.1f}"
            for row in journal.intervals
        )
        parts.append(
            f'<polyline fill="none" stroke="{_IN_FLIGHT_COLOUR}" stroke-width="1.5" '
            f'points="{pts_f}"/>'
        )
    y_labels("in_flight", str(flight_top))

    # Moves (solid) and decisions (dashed) across every panel, labelled above and below.
    for (x, text, line_no, anchor), m in zip(move_labels, moves, strict=True):
        dx = -3 if anchor == "end" else 3
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="#1f2328" '
            f'stroke-width="1.2"><title>{e(_move_title(m))}</title></line>'
            f'<text x="{x + dx:.1f}" y="{top - 6 - line_no * 12}" font-size="10" '
            f'text-anchor="{anchor}">{e(text)}</text>'
        )
    for (x, text, line_no, anchor), lk in zip(decision_labels, decisions, strict=True):
        dx = -3 if anchor == "end" else 3
        colour = DECISION_COLOURS[lk.decision]
        parts.append(
            f'<line x1="{x:.1f}" y1="{top:.1f}" x2="{x:.1f}" y2="{bottom + 6:.1f}" '
            f'stroke="{colour}" stroke-width="1.5" stroke-dasharray="4,3">'
            f"<title>{e(_look_title(lk))}</title></line>"
            f'<text x="{x + dx:.1f}" y="{bottom + 28 + line_no * 12:.1f}" font-size="10" '
            f'fill="{colour}" text-anchor="{anchor}">{e(text)}</text>'
        )

    # The time axis under the last panel.
    tick = _tick_step(span)
    t = 0.0
    while t <= span + 1e-9:
        parts.append(
            f'<text x="{px(t):.1f}" y="{bottom + 14:.1f}" font-size="10" '
            f'text-anchor="middle">{t:g} s</text>'
        )
        t += tick
    parts.append("</svg>")
    return "".join(parts)


def _move_title(m: MoveRecord) -> str:
    drain = "" if m.drain_s is None else f"; drained in {m.drain_s:.2f} s"
    if m.drained is False:
        drain += " (not within its bound)"
    return f"{m.label}: {_shares(m)} at {m.at_s:.2f} s ({m.mode}){drain}"


def _look_title(lk: StepLook) -> str:
    return (
        f"{_pct(lk.share)}, look {lk.look}/{lk.max_looks} at {lk.t_s:.1f} s: {lk.decision}; "
        + "; ".join(lk.reasons)
    )


def _signed(x: float, unit: str) -> str:
    return f"{x:+.1%}" if unit == "relative" else f"{x:+.2f} pp"


def figure_parts(f: FigureLook) -> tuple[str, str, str, str]:
    """(effect, [low, high], margin, verdict) of one figure, as text; effect and bounds "-"
    while the figure had too few values for an interval."""
    effect = "-" if f.effect is None else _signed(f.effect, f.unit)
    if f.low is None or f.high is None:
        bounds = "-"
    else:
        bounds = f"[{_signed(f.low, f.unit)}, {_signed(f.high, f.unit)}]"
    margin = f"{f.margin:+.0%}" if f.unit == "relative" else f"{f.margin:+g} pp"
    return effect, bounds, margin, f.verdict.replace("_", " ")


def figure_text(f: FigureLook) -> str:
    effect, bounds, margin, verdict = figure_parts(f)
    return f"{effect} {bounds} vs {margin}: {verdict}"


def figure_names(looks: Sequence[StepLook]) -> list[str]:
    """Every figure judged in any of the looks, in the order they were judged."""
    names: list[str] = []
    for lk in looks:
        names += [f.name for f in lk.figures if f.name not in names]
    return names


def look_columns(looks: Sequence[StepLook]) -> tuple[str, ...]:
    return ("step", "look", "alpha", "n baseline / candidate", *figure_names(looks), "decision")


def look_head(lk: StepLook) -> tuple[str, str, str, str]:
    """The cells of a look before its figures: step, look k/K, alpha, requests per version."""
    return (
        _pct(lk.share),
        f"{lk.look}/{lk.max_looks}",
        f"{lk.alpha:.2g}",
        f"{lk.n_baseline:,} / {lk.n_candidate:,}",
    )


def decided_looks(looks: Sequence[StepLook]) -> list[StepLook]:
    """The looks that decided a step (promote or abort), and the last look whatever it said:
    the one an interrupted rollout stopped at."""
    out = [lk for lk in looks if lk.decision != "hold"]
    if looks and looks[-1] not in out:
        out.append(looks[-1])
    return out


def look_rows(looks: Sequence[StepLook]) -> list[tuple[str, ...]]:
    """One row per look, cells as `look_columns`: each figure as effect [low, high] vs margin."""
    names = figure_names(looks)
    rows = []
    for lk in looks:
        by_name = {f.name: f for f in lk.figures}
        cells = [figure_text(by_name[n]) if n in by_name else "-" for n in names]
        rows.append((*look_head(lk), *cells, lk.decision))
    return rows


MOVE_COLUMNS = ("move", "candidate share", "at", "mode", "drained")


def move_rows(journal: RolloutJournal) -> list[tuple[str, ...]]:
    rows: list[tuple[str, ...]] = []
    for m in journal.moves:
        if m.drain_s is None:
            drained = "-"
        else:
            drained = f"in {m.drain_s:.2f} s" + ("" if m.drained is not False else " (too slow)")
        rows.append(
            (
                m.label,
                _shares(m),
                f"{m.at_s:.1f} s",
                m.mode,
                drained,
            )
        )
    return rows


def rollout_facts(journal: RolloutJournal) -> list[str]:
    """What frames where it stopped: the strategy and its steps, the candidate's share at the
    end, and whether the rollout was interrupted (an interrupted one never reached a verdict)."""
    steps = " -> ".join(_pct(s) for s in journal.steps)
    return [
        journal.strategy.replace("_", "-") + (f", steps {steps}" if steps else ""),
        f"candidate share at the end {_pct(journal.final_share)}",
        "interrupted before it finished" if journal.interrupted else "not interrupted",
    ]


def stopped_line(journal: RolloutJournal) -> str:
    """Where the rollout stopped, and its facts."""
    return f"stopped: {journal.stopped or 'no stop recorded'} ({'; '.join(rollout_facts(journal))})"


def _cells(columns: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    e = html.escape
    head = "".join(f"<th>{e(c)}</th>" for c in columns)
    body = "".join("<tr>" + "".join(f"<td>{e(c)}</td>" for c in row) + "</tr>" for row in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def look_table_html(looks: Sequence[StepLook]) -> str:
    """Every look, a row each: each figure's effect, its bounds and margin, coloured by its
    verdict (the reason in its tooltip), and the decision; "" without looks."""
    if not looks:
        return ""
    e = html.escape
    names = figure_names(looks)
    head = "".join(f"<th>{e(c)}</th>" for c in look_columns(looks))
    body = []
    for lk in looks:
        by_name = {f.name: f for f in lk.figures}
        cells = [f"<td>{e(c)}</td>" for c in look_head(lk)]
        for name in names:
            f = by_name.get(name)
            if f is None:
                cells.append("<td>-</td>")
                continue
            effect, bounds, margin, verdict = figure_parts(f)
            cells.append(
                f'<td title="{e(f.reason)}">{e(effect)} <small>{e(bounds)}</small><br>'
                f'<small>margin {e(margin)}</small> <span style="color:'
                f'{VERDICT_COLOURS[f.verdict]};font-weight:600">{e(verdict)}</span></td>'
            )
        cells.append(
            f'<td title="{e("; ".join(lk.reasons))}" style="color:'
            f'{DECISION_COLOURS[lk.decision]};font-weight:600">{e(lk.decision)}</td>'
        )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def rollout_html(journal: RolloutJournal) -> str:
    """The report's Rollout section: where it stopped, the timeline, the moves, the looks."""
    e = html.escape
    figure = svg_rollout_timeline(journal)
    looks = look_table_html(journal.looks)
    return (
        "<h2>Rollout</h2>"
        f"<p><strong>Stopped: {e(journal.stopped or 'no stop recorded')}</strong> &middot; "
        + " &middot; ".join(
            f'<span style="color:#9a6700;font-weight:600">{e(fact)}</span>'
            if fact.startswith("interrupted")
            else e(fact)
            for fact in rollout_facts(journal)
        )
        + "</p>"
        + (f"<div class=chart>{figure}</div>" if figure else "")
        + (
            f"<h3>Traffic moves</h3>{_cells(MOVE_COLUMNS, rows)}"
            if (rows := move_rows(journal))
            else ""
        )
        + (
            "<h3>Canary looks</h3><p class=meta>Each figure: the candidate against the baseline "
            "on the same window, effect [low, high] at the look's one-sided alpha; no worse "
            "when the high bound is within the margin, worse when the low bound is beyond it."
            f"</p>{looks}"
            if looks
            else ""
        )
    )
