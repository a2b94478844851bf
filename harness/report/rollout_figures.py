"""What a person reads of a rollout: one timeline over the rollout's seconds (what the strategy
moves: the candidate's share, the replicas out of rotation, or the autoscaler's replicas and
signal; each version's TTFT p95 and errors, the streams in flight, every traffic move, scale
event and canary decision), the canary's looks figure by figure, the moves, the scale events, and
where the rollout stopped. Pure functions of the journal, shared by the HTML and the Markdown
renderings."""

from __future__ import annotations

import html
import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from harness.report.rollout_journal import MoveRecord, RolloutJournal, ScaleRecord
from harness.verdict.rollout import FigureLook, StepLook

# Version -> colour. "none": requests no version answered (they failed before one did).
VERSION_COLOURS = {"baseline": "#0969da", "candidate": "#bc4c00", "none": "#6e7781"}
_OTHER_COLOUR = "#8250df"
_SHARE_COLOUR = "#1a7f37"
_IN_FLIGHT_COLOUR = "#57606a"
_MOVE_COLOUR = "#1f2328"
_OUT_COLOUR = "#9a6700"  # a replica out of rotation
_SIGNAL_COLOUR = "#8250df"
_TARGET_COLOUR = "#cf222e"
SCALE_COLOURS = {"out": "#1f2328", "in": "#9a6700"}
# Strategies that move no candidate share: their moves take replicas out (share None).
SHARELESS = ("rolling", "scale_out")
DECISION_COLOURS = {"promote": "#1a7f37", "abort": "#cf222e", "hold": "#6e7781"}
VERDICT_COLOURS = {"no_worse": "#1a7f37", "worse": "#cf222e", "undecided": "#9a6700"}
# Pixels per character of 10px text: enough to keep staggered labels from overlapping.
_CHAR_PX = 5.6


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{x * 100:.0f}%"


def _shares(m: MoveRecord, strategy: str = "") -> str:
    """A move's share change; a replica replaced (or, under the autoscaler, removed) changes
    none."""
    if m.share_from is None or m.share_to is None:
        return "replica removed" if strategy == "scale_out" else "replica replaced"
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
        *(m.until_s for m in journal.moves if m.until_s is not None),
        *(lk.t_s for lk in journal.looks),
        *(p.t_s for p in journal.signal),
        *(t for ev in journal.scale_events for t in _event_times(ev) if t is not None),
    ]
    return max([1.0, *ends])


def _event_times(ev: ScaleRecord) -> tuple[float | None, ...]:
    return (ev.crossed_s, ev.decided_s, ev.ready_s, ev.in_rotation_s, ev.serving_s)


def _by_time(moves: Sequence[MoveRecord]) -> list[MoveRecord]:
    return sorted(moves, key=lambda m: m.at_s)


def _replica(m: MoveRecord, i: int) -> str:
    """The replica a move took out: as its label names it ("rolling update: primary-1
    replaced", "primary-1 replaced"), else by its place in the rollout (a label of only
    "rolling update" names none)."""
    if found := re.search(r"([\w.-]+) (?:replaced|removed)$", m.label):
        return found.group(1)
    if found := re.search(r"[A-Za-z][\w.]*-\d+", m.label):
        return found.group(0)
    return f"replica {i + 1}"


def _cold_start(m: MoveRecord) -> str | None:
    """The new replica's cold start as text; None where the move keeps no such figure."""
    if "cold_start_s" not in m.figures:
        return None
    cold = m.figures["cold_start_s"]
    return "no first token" if cold is None else f"{cold:.2f} s"


def _version_name(journal: RolloutJournal, version: str) -> str:
    # Without a split front no response names its version: there "none" is every request.
    if version == "none" and journal.strategy in SHARELESS:
        return "all requests"
    return version


@dataclass
class _Canvas:
    """What each panel draws with: the time scale, every panel's place, the SVG so far."""

    px: Callable[[float], float]
    span: float
    pad_l: int
    tops: dict[str, tuple[float, float]]  # key -> (y of the panel's top, its height)
    parts: list[str]

    def y_labels(self, key: str, top_value: str) -> None:
        py0, ph = self.tops[key]
        self.parts.append(
            f'<text x="{self.pad_l - 4}" y="{py0 + 8:.1f}" font-size="10" text-anchor="end">'
            f'{html.escape(top_value)}</text><text x="{self.pad_l - 4}" y="{py0 + ph:.1f}" '
            f'font-size="10" text-anchor="end">0</text>'
        )


def _draw_share(journal: RolloutJournal, c: _Canvas) -> None:
    """The candidate's share: a filled step line, 0..100%, the looks that held on it."""
    e = html.escape
    px, parts = c.px, c.parts
    sy0, sh = c.tops["share"]
    pts = [(px(t), sy0 + sh - s * sh) for t, s in _share_points(journal, c.span)]
    line = " ".join(f"{x:.1f},{yy:.1f}" for x, yy in pts)
    area = f"{c.pad_l:.1f},{sy0 + sh:.1f} {line} {px(c.span):.1f},{sy0 + sh:.1f}"
    parts.append(
        f'<polygon points="{area}" fill="{_SHARE_COLOUR}" fill-opacity="0.12"/>'
        f'<polyline fill="none" stroke="{_SHARE_COLOUR}" stroke-width="2" points="{line}"/>'
    )
    c.y_labels("share", "100%")
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


Placed = list[tuple[float, str, int, str]]


def _rotation_labels(journal: RolloutJournal, px: Callable[[float], float], width: int) -> Placed:
    """Each replica's label, "primary-1, cold start 0.15 s", stacked into rows (placed before
    the panels, whose height the rows set)."""
    labels = []
    for i, m in enumerate(_by_time(journal.moves)):
        cold = _cold_start(m)
        labels.append(
            (px(m.at_s), _replica(m, i) + ("" if cold is None else f", cold start {cold}"))
        )
    return _place(labels, width)


def _draw_rotation(journal: RolloutJournal, c: _Canvas, labels: Placed) -> None:
    """A rolling update: each replica's time out of rotation (taken out .. back in), shaded in
    its panel, and faintly across the others, where what it did to the requests shows."""
    e = html.escape
    py0, ph = c.tops["rotation"]
    first_y = min(y0 for y0, _ in c.tops.values())
    last_y = max(y0 + h for y0, h in c.tops.values())
    for (x, text, row, anchor), m in zip(labels, _by_time(journal.moves), strict=True):
        back = m.until_s if m.until_s is not None else c.span  # never back: out to the end
        width = max(c.px(back) - x, 1.0)
        title = f"{text}: out of rotation {m.at_s:.2f}-" + (
            f"{m.until_s:.2f} s ({m.until_s - m.at_s:.2f} s)"
            if m.until_s is not None
            else "the end (never back)"
        )
        if m.drain_s is not None:
            title += f"; drained in {m.drain_s:.2f} s"
        dx = -3 if anchor == "end" else 3
        c.parts.append(
            f'<rect x="{x:.1f}" y="{first_y:.1f}" width="{width:.1f}" '
            f'height="{last_y - first_y:.1f}" fill="{_OUT_COLOUR}" fill-opacity="0.07"/>'
            f'<rect x="{x:.1f}" y="{py0:.1f}" width="{width:.1f}" height="{ph:.1f}" '
            f'fill="{_OUT_COLOUR}" fill-opacity="0.3"><title>{e(title)}</title></rect>'
            f'<text x="{x + dx:.1f}" y="{py0 + 12 + row * 12:.1f}" font-size="10" '
            f'fill="{_OUT_COLOUR}" text-anchor="{anchor}">{e(text)}</text>'
        )
    if not journal.moves:
        c.parts.append(
            f'<text x="{c.px(c.span / 2):.1f}" y="{py0 + ph / 2 + 4:.1f}" font-size="11" '
            f'fill="#59636e" text-anchor="middle">no replica taken out</text>'
        )


def _draw_replicas(journal: RolloutJournal, c: _Canvas) -> None:
    """The autoscaler's replicas in rotation at each read (a step line, each new count beside
    its jump), and each added replica's way into service: a bar from the decision with a tick
    at ready and at serving, so the slow step reads off the gaps."""
    e = html.escape
    px, parts = c.px, c.parts
    ry0, rh = c.tops["replicas"]
    counts = [p.replicas for p in journal.signal]
    r_top = max([1, *counts, *(ev.replicas_after for ev in journal.scale_events)])

    def ry(n: float) -> float:
        return ry0 + rh - n / r_top * rh

    if journal.signal:
        level = journal.signal[0].replicas
        pts = [(journal.signal[0].t_s, level)]
        for p in journal.signal[1:]:
            if p.replicas != level:
                pts.append((p.t_s, level))
                parts.append(
                    f'<text x="{px(p.t_s) + 3:.1f}" y="{ry(p.replicas) + 11:.1f}" '
                    f'font-size="10" fill="{_SHARE_COLOUR}">{p.replicas}</text>'
                )
            pts.append((p.t_s, p.replicas))
            level = p.replicas
        line = " ".join(f"{px(t):.1f},{ry(n):.1f}" for t, n in pts)
        parts.append(
            f'<polyline fill="none" stroke="{_SHARE_COLOUR}" stroke-width="2" points="{line}"/>'
        )
    c.y_labels("replicas", str(r_top))
    colour = SCALE_COLOURS["out"]
    for ev in journal.scale_events:
        if ev.kind != "out":
            continue
        yy = ry0 + 5
        reached = [t for t in (ev.ready_s, ev.in_rotation_s, ev.serving_s) if t is not None]
        if reached:
            parts.append(
                f'<line x1="{px(ev.decided_s):.1f}" y1="{yy:.1f}" x2="{px(max(reached)):.1f}" '
                f'y2="{yy:.1f}" stroke="{colour}" stroke-width="1"/>'
            )
        for step, t in (("ready", ev.ready_s), ("serving", ev.serving_s)):
            if t is not None:
                parts.append(
                    f'<line x1="{px(t):.1f}" y1="{yy - 4:.1f}" x2="{px(t):.1f}" '
                    f'y2="{yy + 4:.1f}" stroke="{colour}" stroke-width="2"><title>'
                    f"{e(ev.replica)} {step} at {t:.2f} s, {t - ev.decided_s:.2f} s after the "
                    f"decision</title></line>"
                )


def _draw_signal(journal: RolloutJournal, c: _Canvas) -> None:
    """The autoscaler's signal (req/s per replica in rotation) and its target, dashed."""
    px, parts = c.px, c.parts
    sy0, sh = c.tops["signal"]
    target = journal.target_rps_per_replica
    values = [p.per_replica_rps for p in journal.signal if p.per_replica_rps is not None]
    s_top = max([*values, target or 0.0]) * 1.15 or 1.0

    def sy(v: float) -> float:
        return sy0 + sh - v / s_top * sh

    # Broken where a read had no rate: a line across the gap would draw a rate none read.
    runs: list[list[tuple[float, float]]] = [[]]
    for p in journal.signal:
        if p.per_replica_rps is None:
            if runs[-1]:
                runs.append([])
            continue
        runs[-1].append((p.t_s, p.per_replica_rps))
    for run in runs:
        if len(run) > 1:
            line = " ".join(f"{px(t):.1f},{sy(v):.1f}" for t, v in run)
            parts.append(
                f'<polyline fill="none" stroke="{_SIGNAL_COLOUR}" stroke-width="1.5" '
                f'points="{line}"/>'
            )
        parts += [
            f'<circle cx="{px(t):.1f}" cy="{sy(v):.1f}" r="1.5" fill="{_SIGNAL_COLOUR}">'
            f"<title>{t:g} s: {v:,.2f} req/s per replica</title></circle>"
            for t, v in run
        ]
    if target is not None:
        x1 = px(c.span)
        parts.append(
            f'<line x1="{c.pad_l}" y1="{sy(target):.1f}" x2="{x1:.1f}" y2="{sy(target):.1f}" '
            f'stroke="{_TARGET_COLOUR}" stroke-width="1.2" stroke-dasharray="5,4"/>'
            f'<text x="{x1 - 2:.1f}" y="{sy(target) - 3:.1f}" font-size="10" text-anchor="end" '
            f'fill="{_TARGET_COLOUR}">target {target:g} req/s per replica</text>'
        )
    c.y_labels("signal", f"{s_top:,.1f}")


def _marks(journal: RolloutJournal) -> list[tuple[float, str, str, str]]:
    """The solid lines across every panel, (t, label, colour, tooltip): one per traffic move,
    or under the autoscaler one per scale event (a scale-in's move is its event)."""
    if journal.strategy == "scale_out":
        return [
            (
                ev.decided_s,
                f"{'+' if ev.kind == 'out' else '-'}{ev.replica} ({ev.decided_s:.1f} s)",
                SCALE_COLOURS.get(ev.kind, _OTHER_COLOUR),
                _scale_title(ev),
            )
            for ev in sorted(journal.scale_events, key=lambda ev: ev.decided_s)
        ]
    return [
        (m.at_s, f"{m.label} ({m.at_s:.1f} s)", _MOVE_COLOUR, _move_title(m, journal.strategy))
        for m in _by_time(journal.moves)
    ]


def _legend(journal: RolloutJournal, versions: Sequence[str]) -> list[tuple[str, str]]:
    decisions = {lk.decision for lk in journal.looks}
    named = [
        (
            "no version answered: errors"
            if _version_name(journal, v) == "none"
            else f"{_version_name(journal, v)}: TTFT p95, errors",
            _colour(v),
        )
        for v in versions
    ]
    if journal.strategy == "rolling":
        moved = [("out of rotation", _OUT_COLOUR)]
    elif journal.strategy == "scale_out":
        moved = [("replicas in rotation", _SHARE_COLOUR), ("req/s per replica", _SIGNAL_COLOUR)]
        if journal.target_rps_per_replica is not None:
            moved.append(("target", _TARGET_COLOUR))
    else:
        moved = [("candidate share", _SHARE_COLOUR)]
    if journal.strategy == "scale_out":
        kinds = {ev.kind for ev in journal.scale_events}
        marks = [
            (text, SCALE_COLOURS[kind])
            for kind, text in (("out", "scale-out (ticks: ready, serving)"), ("in", "scale-in"))
            if kind in kinds
        ]
    else:
        marks = [("move", _MOVE_COLOUR)]
    return [
        *named,
        *moved,
        ("in flight", _IN_FLIGHT_COLOUR),
        *marks,
        *((d, DECISION_COLOURS[d]) for d in ("promote", "abort") if d in decisions),
    ]


def svg_rollout_timeline(journal: RolloutJournal, width: int = 1000) -> str:
    """The rollout over its seconds, in panels on one time axis: what the strategy moves (the
    candidate's share, a step line; a rolling update's replicas out of rotation; the
    autoscaler's replicas in rotation and its signal against the target), each version's TTFT
    p95 per interval, each version's errors per interval (bars), and the streams in flight at
    each interval's end; a solid line at every traffic move (or scale event) and a dashed one
    at every canary decision (promote or abort) across all of them. "" when the journal has
    nothing to draw."""
    if not (journal.intervals or journal.moves or journal.signal or journal.scale_events):
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
    marks = _marks(journal)
    mark_labels = _place([(px(t), text) for t, text, *_ in marks], width)
    decision_labels = _place(
        [
            (px(lk.t_s), f"{lk.decision} at {_pct(lk.share)}, look {lk.look}/{lk.max_looks}")
            for lk in decisions
        ],
        width,
    )
    mark_rows = max((r for *_, r, _ in mark_labels), default=-1) + 1
    decision_rows = max((r for *_, r, _ in decision_labels), default=-1) + 1
    # Panels top-down: (key, title, height); first what the strategy moves.
    rotation_labels: Placed = []
    if journal.strategy == "rolling":
        rotation_labels = _rotation_labels(journal, px, width)
        label_rows = max((r for *_, r, _ in rotation_labels), default=0) + 1
        moved = [("rotation", "out of rotation", max(56, 24 + label_rows * 12))]
        heading = f"replicas out of rotation, requests per {step_s:g} s, moves"
    elif journal.strategy == "scale_out":
        moved = [("replicas", "replicas", 64), ("signal", "req/s per replica", 72)]
        heading = (
            f"replicas in rotation, the autoscaler's signal, requests per {step_s:g} s, "
            "scale events"
        )
    else:
        moved = [("share", "candidate share", 84)]
        heading = f"candidate share, both versions per {step_s:g} s, moves and decisions"
    panels = [
        *moved,
        ("ttft", "TTFT p95 (ms)", 110),
        ("errors", "errors", 64),
        ("in_flight", "in flight", 56),
    ]
    gap = 18
    top = 50 + mark_rows * 12
    tops: dict[str, tuple[float, float]] = {}
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
        f"{e(journal.strategy.replace('_', '-'))} rollout: {e(heading)}</text>",
    ]
    lx = float(pad_l)
    for text, colour in _legend(journal, versions):
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

    canvas = _Canvas(px=px, span=span, pad_l=pad_l, tops=tops, parts=parts)
    if journal.strategy == "rolling":
        _draw_rotation(journal, canvas, rotation_labels)
    elif journal.strategy == "scale_out":
        _draw_replicas(journal, canvas)
        _draw_signal(journal, canvas)
    else:
        _draw_share(journal, canvas)

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
        name = _version_name(journal, v)
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
                f'fill="{colour}"><title>{t:g}-{t + step_s:g} s: {e(name)} TTFT p95 '
                f"{val:,.1f} ms</title></circle>"
                for t, x, val in run
            ]
    canvas.y_labels("ttft", f"{ttft_top:,.0f}")

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
                    f"<title>{row.t_s:g}-{row.t_s + step_s:g} s: {e(_version_name(journal, v))} "
                    f"{fig.errors} errors of {fig.requests} requests</title></rect>"
                )
                if slot >= 14:  # room for the count over its bar
                    parts.append(
                        f'<text x="{px(row.t_s) + (j + 0.5) * slot:.1f}" '
                        f'y="{ey0 + eh - bh - 2:.1f}" font-size="9" text-anchor="middle" '
                        f'fill="{_colour(v)}">{fig.errors}</text>'
                    )
        canvas.y_labels("errors", str(err_top))
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
    canvas.y_labels("in_flight", str(flight_top))

    # Moves or scale events (solid) and decisions (dashed) across every panel, labelled above
    # and below.
    for (x, text, line_no, anchor), (_, _, colour, tip) in zip(mark_labels, marks, strict=True):
        dx = -3 if anchor == "end" else 3
        fill = "" if colour == _MOVE_COLOUR else f' fill="{colour}"'
        parts.append(
            f'<line x1="{x:.1f}" y1="{top - 4}" x2="{x:.1f}" y2="{bottom:.1f}" stroke="{colour}" '
            f'stroke-width="1.2"><title>{e(tip)}</title></line>'
            f'<text x="{x + dx:.1f}" y="{top - 6 - line_no * 12}" font-size="10"{fill} '
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


def _move_title(m: MoveRecord, strategy: str = "") -> str:
    drain = "" if m.drain_s is None else f"; drained in {m.drain_s:.2f} s"
    if m.drained is False:
        drain += " (not within its bound)"
    return f"{m.label}: {_shares(m, strategy)} at {m.at_s:.2f} s ({m.mode}){drain}"


def _scale_title(ev: ScaleRecord) -> str:
    steps = " -> ".join(
        f"{step} {t:.2f} s"
        for step, t in (
            ("crossed", ev.crossed_s),
            ("decided", ev.decided_s),
            ("ready", ev.ready_s),
            ("in rotation", ev.in_rotation_s),
            ("serving", ev.serving_s),
        )
        if t is not None
    )
    added = "added" if ev.kind == "out" else "removed"
    return f"{ev.replica} {added}, {ev.replicas_after} replicas after: {steps}"


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
    verdict = f.verdict.replace("_", " ") + ("" if f.judged else " (not judged)")
    return effect, bounds, margin, verdict


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


def _with_cold_start(journal: RolloutJournal) -> bool:
    return any("cold_start_s" in m.figures for m in journal.moves)


def move_columns(journal: RolloutJournal) -> tuple[str, ...]:
    """`MOVE_COLUMNS`; where no move changes the share, "change" for its share, and a cold
    start column where a move kept one (a replica replaced)."""
    columns = MOVE_COLUMNS
    if journal.moves and all(m.share_to is None for m in journal.moves):
        columns = ("move", "change", *MOVE_COLUMNS[2:])
    return (*columns, "cold start") if _with_cold_start(journal) else columns


def move_rows(journal: RolloutJournal) -> list[tuple[str, ...]]:
    """One row per move, cells as `move_columns`; a move that took a while (a replica out of
    rotation and back) shows when it ended."""
    cold_column = _with_cold_start(journal)
    rows: list[tuple[str, ...]] = []
    for i, m in enumerate(journal.moves):
        if m.drain_s is None:
            drained = "-"
        else:
            drained = f"in {m.drain_s:.2f} s" + ("" if m.drained is not False else " (too slow)")
        at = f"{m.at_s:.1f} s" if m.until_s is None else f"{m.at_s:.1f} -> {m.until_s:.1f} s"
        # "rolling update" alone names no replica: the replica's name (or place) goes with it.
        label = m.label
        if m.share_to is None and journal.strategy == "rolling" and m.label == "rolling update":
            label = f"{m.label}: {_replica(m, i)}"
        row = (label, _shares(m, journal.strategy), at, m.mode, drained)
        rows.append((*row, _cold_start(m) or "-") if cold_column else row)
    return rows


SCALE_COLUMNS = (
    "replica",
    "kind",
    "decided at",
    "crossed -> decided",
    "decided -> ready",
    "-> in rotation",
    "-> serving",
    "replicas after",
)


def scale_rows(journal: RolloutJournal) -> list[tuple[str, ...]]:
    """One row per scale event, by its decision: each step's time after the step before it
    ("-" before a step that never happened; "not reached" for an added replica's step that
    did not come)."""
    rows: list[tuple[str, ...]] = []
    for ev in sorted(journal.scale_events, key=lambda ev: ev.decided_s):
        crossed = "-" if ev.crossed_s is None else f"{ev.decided_s - ev.crossed_s:.2f} s"
        cells = []
        before: float | None = ev.decided_s
        for t in (ev.ready_s, ev.in_rotation_s, ev.serving_s):
            if t is None:
                # A replica removed has none of these steps; one added that lacks one stalled.
                cells.append("not reached" if ev.kind == "out" and before is not None else "-")
            elif before is None:
                cells.append(f"at {t:.2f} s")
            else:
                cells.append(f"{t - before:.2f} s")
            before = t
        kind = {"out": "out (added)", "in": "in (removed)"}.get(ev.kind, ev.kind)
        rows.append(
            (
                ev.replica,
                kind,
                f"{ev.decided_s:.1f} s",
                crossed,
                *cells,
                str(ev.replicas_after),
            )
        )
    return rows


CAPACITY_COLUMNS = ("rate", "outcome", "TTFT p95", "errors", "achieved", "why")


def capacity_rows(journal: RolloutJournal) -> list[tuple[str, ...]]:
    """The capacity search behind a target derived from one replica's capacity: one row per
    step, in the order they ran."""
    if journal.capacity is None:
        return []

    def num(v: float | None, fmt: str) -> str:
        return "-" if v is None else format(v, fmt)

    return [
        (
            f"{s.rate_rps:.4g} req/s",
            s.outcome,
            num(s.ttft_p95_ms, ".0f") + (" ms" if s.ttft_p95_ms is not None else ""),
            num(s.error_rate, ".1%"),
            num(s.achieved_rate_rps, ".3g") + (" req/s" if s.achieved_rate_rps else ""),
            "; ".join(s.reasons[:1]) or "-",
        )
        for s in journal.capacity.steps
    ]


def rollout_facts(journal: RolloutJournal) -> list[str]:
    """What frames where it stopped: the strategy and its steps, the candidate's share at the
    end, and whether the rollout was interrupted (an interrupted one never reached a verdict)."""
    if journal.strategy == "rolling":
        # No share moves: the spec's canary steps and the share at the end say nothing here.
        return [
            "rolling",
            f"{len(journal.moves)} replica{'s' if len(journal.moves) != 1 else ''} taken out "
            "in turn",
            "interrupted before it finished" if journal.interrupted else "not interrupted",
        ]
    if journal.strategy == "scale_out":
        outs = sum(ev.kind == "out" for ev in journal.scale_events)
        ins = sum(ev.kind == "in" for ev in journal.scale_events)
        facts = [
            "scale-out"
            + (
                f", target {journal.target_rps_per_replica:.3g} req/s per replica"
                + (" (from one replica's measured capacity)" if journal.target_basis else "")
                if journal.target_rps_per_replica is not None
                else ""
            ),
            f"{outs} replica{'s' if outs != 1 else ''} added, {ins} removed"
            + (f", {journal.signal[-1].replicas} in rotation at the end" if journal.signal else ""),
        ]
        return [
            *facts,
            "interrupted before it finished" if journal.interrupted else "not interrupted",
        ]
    steps = " -> ".join(_pct(s) for s in journal.steps)
    return [
        journal.strategy.replace("_", "-") + (f", steps {steps}" if steps else ""),
        f"candidate share at the end {_pct(journal.final_share)}",
        *(
            [f"the candidate shared the baseline's {', '.join(journal.shared)}"]
            if journal.shared
            else []
        ),
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
            # A figure reported, not judged, is grey: it decided nothing.
            colour = VERDICT_COLOURS[f.verdict] if f.judged else _IN_FLIGHT_COLOUR
            cells.append(
                f'<td title="{e(f.reason)}">{e(effect)} <small>{e(bounds)}</small><br>'
                f'<small>margin {e(margin)}</small> <span style="color:'
                f'{colour};font-weight:600">{e(verdict)}</span></td>'
            )
        cells.append(
            f'<td title="{e("; ".join(lk.reasons))}" style="color:'
            f'{DECISION_COLOURS[lk.decision]};font-weight:600">{e(lk.decision)}</td>'
        )
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<table><tr>{head}</tr>{''.join(body)}</table>"


def rollout_html(journal: RolloutJournal) -> str:
    """The report's Rollout section: where it stopped, the timeline, the moves, the scale
    events, the looks."""
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
        + (
            f"<h3>Target from capacity</h3><p>{e(journal.target_basis)}</p>"
            f"{_cells(CAPACITY_COLUMNS, capacity_rows(journal))}"
            if journal.target_basis
            else ""
        )
        + (f"<div class=chart>{figure}</div>" if figure else "")
        + (
            f"<h3>Traffic moves</h3>{_cells(move_columns(journal), rows)}"
            if (rows := move_rows(journal))
            else ""
        )
        + (
            "<h3>Scale events</h3><p class=meta>Each step's time after the step before it: "
            "the signal crossing the target, the decision, the replica ready (its first token), "
            f"in every gateway's rotation, serving its first request.</p>"
            f"{_cells(SCALE_COLUMNS, scale)}"
            if (scale := scale_rows(journal))
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
