"""A check's evidence in the reports: each traced request with its lines from each layer (HTML),
and one row per request (Markdown summary); an experiment's request with its phase and the checks
that read it."""

from __future__ import annotations

import html
from collections.abc import Iterator, Sequence

from harness.observe.logs import LogLine, RequestEvidence
from harness.verdict.checks import CheckResult

EVIDENCE_COLUMNS = ("phase", "request id", "what happened", "checks that read it", "log lines")

# Shown first on each line, in this order; the rest follow by name.
_LEADING = (
    "status",
    "error",
    "served_by",
    "fallback_reason",
    "upstream",
    "upstream_status",
    "request_time",
    "latency_ms",
    "exception_type",
    "_msg",
    "msg",
)
_HIDDEN = frozenset({"request_id", "client_request_id", "ts", "logger", "level", "replica"})


def read_by(names: Sequence[str]) -> str:
    """The checks that read a request: the first name in full, the experiment's title left off
    the others that share it."""
    if not names:
        return ""
    title = names[0].split(": ", 1)[0] + ": "
    rest = [n.removeprefix(title) for n in names[1:]]
    return "; ".join([names[0], *rest])


def _line(line: LogLine) -> str:
    e = html.escape
    f = line.fields
    keys = [k for k in _LEADING if k in f] + sorted(k for k in f if k not in _LEADING)
    text = " ".join(f"{k}={f[k]}" for k in keys if k not in _HIDDEN)
    who = line.layer + (f" {f['replica']}" if "replica" in f else "")
    who += " (by time)" if line.by_time else ""
    # "2026-11-30T15:07:35.805651456Z" -> "15:07:35.805651" (the report's header has the date)
    clock = line.time[11:26] if "T" in line.time else line.time
    cells = f'<td title="{e(line.time)}">{e(clock)}</td><td>{e(who)}</td>'
    return f"<tr>{cells}<td><code>{e(text)}</code></td></tr>"


def render_evidence(evidence: list[RequestEvidence]) -> str:
    if not evidence:
        return ""
    e = html.escape
    parts = []
    for ev in evidence:
        layers = ", ".join(ev.layers) or "no line in the log store"
        rows = "".join(_line(x) for x in ev.lines)
        placed = f" &middot; {e(ev.phase)} the fault" if ev.phase else ""
        if ev.checks:
            placed += f" &middot; read by {e(read_by(ev.checks))}"
        parts.append(
            f"<details><summary><code>{e(ev.request_id)}</code> &middot; {e(ev.outcome)}"
            f" &middot; {len(ev.lines)} lines ({e(layers)}){placed}</summary>"
            f"<table class=evidence>{rows}</table></details>"
        )
    return (
        f"<tr><td></td><td colspan=4><b>Evidence: {len(evidence)} failed, degraded or fallback "
        f"requests and their log lines</b> (nginx and gateway lines by request id; model-server "
        f"lines by time: read while the request was in flight or up to 1 s after, so another "
        f"request's may appear){''.join(parts)}</td></tr>"
    )


def evidence_rows(checks: Sequence[CheckResult]) -> Iterator[tuple[str, str, str, str, str]]:
    """One row per request; a load step's (no phase) names the check it sits under."""
    for c in checks:
        for ev in c.evidence:
            layers = ", ".join(
                f"{n} {layer}"
                for layer in ev.layers
                if (n := sum(x.layer == layer for x in ev.lines))
            )
            readers = read_by(ev.checks) or c.name
            yield (
                ev.phase or "-",
                ev.request_id,
                ev.outcome,
                readers,
                layers or "none in the log store",
            )
