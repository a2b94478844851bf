"""What a person reads of a chaos experiment: a timeline of how each second's requests ended,
with the fault window and the alert notifications on it, one row per phase, and the fate of its
requests per phase."""

from __future__ import annotations

import html
import math
from collections.abc import Sequence
from typing import Any

from harness.measure.fates import FATES
from harness.report.experiment_journal import AlertMark, ExperimentJournal

# Outcome -> colour; the order is the stacking order, bottom up.
OUTCOME_COLOURS = {
    "primary": "#0969da",
    "fallback": "#9a6700",
    "cache": "#1a7f37",
    "degraded": "#8250df",
    "error": "#cf222e",
    "other": "#6e7781",
}


def svg_outcome_timeline(
    title: str,
    seconds: Sequence[dict[str, int]],
    fault_s: Sequence[float] | None = None,
    alerts: Sequence[AlertMark] = (),
    width: int = 1000,
    height: int = 240,
) -> str:
    """Stacked bars, one per second (requests by how they ended, by the second they were meant
    for); the fault window shaded; a dashed line per alert notification."""
    if not seconds:
        return ""
    pad_l, pad_r, pad_t, pad_b = 40, 12, 54, 30
    w, h = width - pad_l - pad_r, height - pad_t - pad_b
    # The axis reaches the last alert notification too: a resolve often comes after the load.
    n = max([len(seconds), *(math.ceil(m.t_s) + 1 for m in alerts)])
    top = max(1, max(sum(row.values()) for row in seconds))
    bar = w / n

    def px(t: float) -> float:
        return pad_l + min(max(t, 0.0), float(n)) / n * w

    def py(v: float) -> float:
        return pad_t + h - v / top * h

    e = html.escape
    parts = [
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{width}" height="{height}" role="img" '
        f'aria-label="{e(title)}">',
        f'<text x="{pad_l}" y="15" font-size="13" font-weight="600">{e(title)}</text>',
    ]
    for i, row in enumerate(seconds):
        base = 0.0
        for outcome, colour in OUTCOME_COLOURS.items():
            count = row.get(outcome, 0)
            if count:
                parts.append(
                    f'<rect x="{pad_l + i * bar + 0.5:.1f}" y="{py(base + count):.1f}" '
                    f'width="{max(1.0, bar - 1):.1f}" height="{count / top * h:.1f}" '
                    f'fill="{colour}"><title>{i} s: {count} {outcome}</title></rect>'
                )
                base += count
    if fault_s is not None and len(fault_s) == 2:
        # Over the bars, translucent, so the outcomes inside the window stay readable.
        x0, x1 = px(fault_s[0]), px(fault_s[1])
        parts.append(
            f'<rect x="{x0:.1f}" y="{pad_t}" width="{max(1.0, x1 - x0):.1f}" height="{h + 6}" '
            f'fill="#cf222e" fill-opacity="0.15" stroke="#cf222e" stroke-dasharray="4,2"/>'
            f'<text x="{(x0 + x1) / 2:.1f}" y="{pad_t + h + 16}" font-size="10" fill="#cf222e" '
            f'text-anchor="middle">fault {fault_s[0]:.1f}-{fault_s[1]:.1f} s</text>'
        )
    for mark in alerts:
        x = px(mark.t_s)
        label = f"{mark.alert} {mark.status} at {mark.t_s:.1f} s"
        anchor, dx = ("end", -3) if x > pad_l + 0.7 * w else ("start", 3)
        parts.append(
            f'<line x1="{x:.1f}" y1="{pad_t - 4}" x2="{x:.1f}" y2="{pad_t + h}" stroke="#1f2328" '
            f'stroke-width="1.5" stroke-dasharray="3,3"/><text x="{x + dx:.1f}" y="{pad_t - 6}" '
            f'font-size="10" text-anchor="{anchor}">{e(label)}</text>'
        )
    parts += [
        f'<line x1="{pad_l}" y1="{pad_t + h}" x2="{pad_l + w}" y2="{pad_t + h}" stroke="#999"/>',
        f'<text x="{pad_l - 4}" y="{pad_t + 4}" font-size="10" text-anchor="end">{top}</text>',
        f'<text x="{pad_l - 4}" y="{pad_t + h}" font-size="10" text-anchor="end">0</text>',
        f'<text x="{pad_l}" y="{height - 6}" font-size="10">0 s</text>',
        f'<text x="{pad_l + w}" y="{height - 6}" font-size="10" text-anchor="end">{n} s</text>',
    ]
    used = [o for o in OUTCOME_COLOURS if any(row.get(o) for row in seconds)]
    for j, outcome in enumerate(used):
        parts.append(
            f'<text x="{pad_l + j * 80}" y="32" font-size="11" font-weight="600" '
            f'fill="{OUTCOME_COLOURS[outcome]}">{outcome}</text>'
        )
    parts.append("</svg>")
    return "".join(parts)


def _share(x: Any) -> str:
    return f"{x * 100:.0f}%" if isinstance(x, (int, float)) else "-"


def _ms(x: Any) -> str:
    return f"{x:,.0f}" if isinstance(x, (int, float)) else "-"


PHASE_COLUMNS = ("phase", "requests", "error rate", "primary", "fallback", "degraded", "e2e p95 ms")


def phase_rows(experiment: ExperimentJournal) -> list[tuple[str, ...]]:
    """One row per phase (before / during / after the fault), cells as PHASE_COLUMNS."""
    rows: list[tuple[str, ...]] = []
    for phase in ("before", "during", "after"):
        summary = experiment.phases.get(phase)
        if summary is None:
            continue
        counts, served = summary.counts, summary.served
        e2e = summary.latency.e2e_ms
        rows.append(
            (
                phase,
                str(counts.total),
                _share(counts.error_rate),
                _share(served.primary_share),
                _share(served.fallback_share),
                _share(served.degraded_share),
                _ms(e2e.p95),
            )
        )
    return rows


FATE_COLUMNS = ("requests", "total", *FATES)
_FATE_GROUPS = {
    "before": "before the fault",
    "during": "during",
    "after": "after",
    "in_flight_at_start": "in flight when it started",
    "in_flight_at_end": "in flight when it ended",
    "all": "all",
}


def fate_rows(experiment: ExperimentJournal) -> list[tuple[str, ...]]:
    """One row per group of requests (each phase, those in flight at the fault's start and end,
    all), cells as FATE_COLUMNS; none for a journal written before fates were kept."""
    if experiment.fates is None:
        return []
    rows: list[tuple[str, ...]] = []
    for group, label in _FATE_GROUPS.items():
        counts = experiment.fates.group(group)
        cells = [str(counts.counts.get(f, 0)) for f in FATES]
        refused = counts.counts.get("refused", 0)
        if refused:
            cells[FATES.index("refused")] += f" ({counts.refused_with_retry_after} Retry-After)"
        rows.append((label, str(counts.requests), *cells))
    return rows


RECOVERY_COLUMNS = ("figure", "value", "measured on")


def _s(x: float | None) -> str:
    return "-" if x is None else f"{x:.1f} s"


def recovery_rows(experiment: ExperimentJournal) -> list[tuple[str, str, str]]:
    """Time to fail over, time to recover and goodput lost, each with what it was measured on
    (docs/chaos.md, "Recovery figures"); no rows for a report from before they were kept."""
    r = experiment.recovery
    if r is None:
        return []
    failover = _s(r.failover_s) if r.failover_s is not None else "none"
    if not r.served_by_seen:
        failover = "- (no X-Served-By header)"
    rows = [("time to fail over", failover, "fault start to the first fallback or degraded answer")]
    steady = r.steady
    if steady is None:
        rows += [("time to recover", "-", r.reason), ("goodput lost", "-", r.reason)]
        return rows
    condition = (
        f"no error, first answer within {steady.bound_ms:,.0f} ms; at most "
        f"{steady.allowed_misses} misses in any {r.window} requests"
    )
    if r.recover_s is None:
        recover = f"not recovered within the {r.observed_s:.0f} s observed"
        on = f"{r.after_requests} requests after the fault; {condition}"
    else:
        upper = r.recovered_miss_rate_upper
        recover = _s(r.recover_s)
        on = (
            f"{r.recovered_requests} requests from then to the end, {r.recovered_misses} "
            f"missing"
            + ("" if upper is None else f" (miss rate <= {_share(upper)} at 95%)")
            + f"; {condition}"
        )
    lost = (
        "-" if r.goodput_lost is None else f"{r.goodput_lost:.1f} ({_share(r.goodput_lost_share)})"
    )
    rows += [
        ("time to recover", recover, on),
        (
            "goodput lost",
            lost,
            f"{r.affected_misses} of {r.affected_requests} requests during and after the fault "
            f"missed, {r.expected_misses or 0:.1f} expected",
        ),
        (
            "steady state",
            f"{steady.requests} requests before the fault",
            f"first answer p95 {_ms(steady.first_answer_p95_ms)} ms, {steady.misses} missing "
            f"({_share(steady.miss_rate)})",
        ),
    ]
    return rows


def experiment_figure(experiment: ExperimentJournal) -> str:
    """The timeline chart of one experiment journal, or "" when it has none."""
    t = experiment.timeline
    return svg_outcome_timeline(
        f"{experiment.title}: requests per second by outcome",
        t.seconds,
        t.fault_s or None,
        t.alerts,
    )
